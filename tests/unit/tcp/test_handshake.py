"""Opening a connection (RFC 9293 §3.5, §3.10.7.3; RFC 7323, RFC 2018 options; RFC 6298 SYN timers)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.tcp.helpers import (
    ACK,
    CONFIG,
    FIN,
    IRS,
    ISS,
    MSS,
    PEER_SYN_OPTIONS,
    PEER_WINDOW,
    PSH,
    RCV_BUF,
    RST,
    SYN,
    T0,
    S,
    config,
    data,
    events,
    make_conn,
    out,
    peer_syn,
    recv,
    recv_nothing,
    rst,
    seg,
    send,
    syn_received,
    syn_sent,
    tick,
)
from wipstack.errors import LocalProtocolError
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.events import Closed, Connected, ConnectionFailed, DataAvailable, TcpEvent
from wipstack.wire.tcp import TcpOptions

FULL = TcpConfig()  # Linux-like defaults: 256 KiB buffers (window scale 3), timestamps, SACK
TSVAL0 = int(T0 * 1000)  # our TSval at T0 (ts_offset 0)
PEER_FULL_SYN = TcpOptions(mss=1400, window_scale=7, sack_permitted=True, timestamps=(7777, 0))


def errno_names(evts: list[TcpEvent]) -> list[str]:
    return [e.errno_name for e in evts if isinstance(e, ConnectionFailed)]


# ---------------------------------------------------------------------------- CLOSED


def test_closed_open_active_sends_syn() -> None:
    conn = make_conn()
    conn.open_active(T0)
    assert conn.state == S.SYN_SENT
    assert recv(conn) == [(out(SYN, ISS, 0, RCV_BUF, TcpOptions(mss=MSS)), b"")]
    assert conn.next_deadline() == T0 + CONFIG.rto_initial


def test_closed_open_active_syn_carries_every_option_and_an_unscaled_window() -> None:
    conn = make_conn(FULL)
    conn.open_active(T0)
    options = TcpOptions(mss=MSS, window_scale=3, sack_permitted=True, timestamps=(TSVAL0, 0))
    # 256 KiB of buffer: window scale 3, but a SYN's window is never scaled (RFC 7323 §2.2)
    assert recv(conn) == [(out(SYN, ISS, 0, 0xFFFF, options), b"")]


def test_closed_open_active_twice_is_refused() -> None:
    conn = syn_sent()
    with pytest.raises(LocalProtocolError):
        conn.open_active(T0)


def test_closed_segment_is_ignored() -> None:
    conn = make_conn()
    send(conn, seg(ACK, IRS, ISS + 1))
    recv_nothing(conn)
    assert conn.state == S.CLOSED and events(conn) == []


# ---------------------------------------------------------------------------- SYN-SENT


def test_syn_sent_syn_ack_establishes() -> None:
    conn = syn_sent()
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=1200)), now=T0 + 0.05)
    assert conn.state == S.ESTABLISHED
    assert recv(conn, T0 + 0.05) == [(out(ACK, ISS + 1, IRS + 1, RCV_BUF), b"")]
    assert events(conn) == [Connected()]
    assert conn.peer_mss == 1200 and conn.mss == 1200
    assert conn.snd_wnd == PEER_WINDOW
    assert conn.rtt.srtt == pytest.approx(0.05)  # the SYN was timed
    assert conn.next_deadline() is None


def test_syn_sent_syn_ack_negotiates_every_option() -> None:
    conn = syn_sent(FULL)
    options = TcpOptions(mss=1400, window_scale=7, sack_permitted=True, timestamps=(7777, TSVAL0))
    send(conn, seg(SYN | ACK, IRS, ISS + 1, 29200, options), now=T0 + 0.01)
    ack = out(ACK, ISS + 1, IRS + 1, (256 * 1024) >> 3, TcpOptions(timestamps=(TSVAL0 + 10, 7777)))
    assert recv(conn, T0 + 0.01) == [(ack, b"")]
    assert conn.ts_enabled and conn.sack_enabled and conn.wscale_enabled
    assert conn.snd_wnd == 29200  # the SYN,ACK's window is not scaled
    assert conn.mss == 1400 - 12  # timestamps take 12 octets of every segment
    assert conn.rtt.srtt == pytest.approx(0.01)  # RTTM from the echoed timestamp
    send(conn, seg(ACK, IRS + 1, ISS + 1, 100, TcpOptions(timestamps=(7778, TSVAL0 + 10))), now=T0 + 0.02)
    assert conn.snd_wnd == 100 << 7  # every later window is


def test_syn_sent_syn_ack_without_options_negotiates_nothing() -> None:
    conn = syn_sent(FULL)
    send(conn, seg(SYN | ACK, IRS, ISS + 1, 5000))
    # no window scale from the peer: ours is off too and the window is capped at 65535
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1, 0xFFFF), b"")]
    assert not (conn.ts_enabled or conn.sack_enabled or conn.wscale_enabled)
    assert conn.peer_mss == FULL.default_mss == conn.mss  # RFC 9293 §3.7.1: 536 without the option


def test_syn_sent_syn_ack_window_scale_above_14_is_clamped() -> None:
    conn = syn_sent(FULL)
    send(conn, seg(SYN | ACK, IRS, ISS + 1, 1000, TcpOptions(mss=MSS, window_scale=20)))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1, 1))
    assert conn.snd_wnd == 1 << 14  # RFC 7323 §2.3


def test_syn_sent_syn_ack_with_small_mss_option_is_floored() -> None:
    conn = syn_sent()
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=1)))
    assert conn.mss == 64


def test_syn_sent_queued_data_goes_out_with_the_ack() -> None:
    conn = syn_sent()
    assert conn.send(b"hello") == 5
    recv_nothing(conn)
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=MSS)))
    assert recv(conn) == [(out(ACK | PSH, ISS + 1, IRS + 1), b"hello")]


@pytest.mark.parametrize("ack", [ISS, ISS - 1, ISS + 2, ISS + 100_000])
def test_syn_sent_bad_ack_is_answered_with_rst_seq_seg_ack(ack: int) -> None:
    conn = syn_sent()
    send(conn, seg(SYN | ACK, IRS, ack))
    assert recv(conn) == [(rst(ack), b"")]  # <SEQ=SEG.ACK><CTL=RST>
    assert conn.state == S.SYN_SENT and events(conn) == []


def test_syn_sent_bad_ack_with_rst_is_dropped() -> None:
    conn = syn_sent()
    send(conn, seg(RST | ACK, 0, ISS + 7))
    recv_nothing(conn)
    assert conn.state == S.SYN_SENT


def test_syn_sent_rst_with_acceptable_ack_is_refused() -> None:
    conn = syn_sent()
    send(conn, seg(RST | ACK, 0, ISS + 1))
    recv_nothing(conn)
    assert conn.state == S.CLOSED
    evts = events(conn)
    assert errno_names(evts) == ["ECONNREFUSED"] and evts[-1] == Closed()
    assert conn.next_deadline() is None


def test_syn_sent_rst_without_ack_is_ignored() -> None:
    conn = syn_sent()
    send(conn, seg(RST, IRS, 0))
    recv_nothing(conn)
    assert conn.state == S.SYN_SENT and events(conn) == []


def test_syn_sent_ack_without_syn_is_dropped() -> None:
    conn = syn_sent()
    send(conn, seg(ACK, IRS, ISS + 1))
    recv_nothing(conn)
    assert conn.state == S.SYN_SENT


def test_syn_sent_syn_opens_simultaneously() -> None:
    conn = syn_sent()
    send(conn, peer_syn())
    assert conn.state == S.SYN_RECEIVED
    # <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>
    assert recv(conn) == [(out(SYN | ACK, ISS, IRS + 1, RCV_BUF, TcpOptions(mss=MSS)), b"")]
    # the peer's own SYN,ACK is an old SYN (not acceptable): ACK it
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, PEER_SYN_OPTIONS))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    assert conn.state == S.SYN_RECEIVED
    # and its ACK of our SYN,ACK completes the handshake
    send(conn, seg(ACK, IRS + 1, ISS + 1))
    assert conn.state == S.ESTABLISHED
    assert events(conn) == [Connected()]
    recv_nothing(conn)


def test_syn_received_close_sends_fin_after_the_handshake() -> None:
    conn = syn_sent()
    send(conn, peer_syn())
    recv(conn)
    conn.close(T0)
    recv_nothing(conn)  # RFC 9293 §3.10.4: the FIN waits for ESTABLISHED
    send(conn, seg(ACK, IRS + 1, ISS + 1))
    assert events(conn) == [Connected()]
    assert recv(conn) == [(out(FIN | ACK, ISS + 1, IRS + 1), b"")]
    assert conn.state == S.FIN_WAIT_1
    assert conn.cwnd == CONFIG.initial_window * MSS


def test_syn_received_shutdown_with_queued_data_sends_it_at_full_speed() -> None:
    conn = syn_sent()
    send(conn, peer_syn())
    recv(conn)
    conn.send(data(3 * MSS))
    conn.shutdown(T0)
    send(conn, seg(ACK, IRS + 1, ISS + 1))
    segments = recv(conn)
    assert sum(len(p) for _, p in segments) == 3 * MSS


def test_syn_sent_syn_retries_then_etimedout() -> None:
    conn = syn_sent(config(syn_retries=2))
    syn = out(SYN, ISS, 0, RCV_BUF, TcpOptions(mss=MSS))
    assert conn.next_deadline() == T0 + 1.0
    assert tick(conn, T0 + 1.0) == [(syn, b"")]  # RFC 6298 §5.5: back off
    assert conn.next_deadline() == T0 + 3.0
    assert tick(conn, T0 + 3.0) == [(syn, b"")]
    assert conn.next_deadline() == T0 + 7.0
    assert tick(conn, T0 + 7.0) == []
    assert conn.state == S.CLOSED
    evts = events(conn)
    assert errno_names(evts) == ["ETIMEDOUT"] and evts[-1] == Closed()
    assert conn.next_deadline() is None


def test_syn_sent_timer_does_nothing_early() -> None:
    conn = syn_sent()
    assert tick(conn, T0 + 0.999) == []
    assert conn.next_deadline() == T0 + 1.0


def test_syn_sent_syn_ack_after_a_retransmission_is_not_timed() -> None:
    conn = syn_sent()
    tick(conn, T0 + 1.0)
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=MSS)), now=T0 + 1.1)
    assert conn.state == S.ESTABLISHED
    assert conn.rtt.samples == 0 and conn.rtt.srtt is None  # Karn: which SYN was answered?


def test_syn_sent_connect_timeout() -> None:
    conn = syn_sent(config(connect_timeout=5.0))
    now = T0
    while conn.state != S.CLOSED:
        deadline = conn.next_deadline()
        assert deadline is not None and deadline <= T0 + 5.0
        now = deadline
        tick(conn, now)
    assert now == T0 + 5.0
    assert errno_names(events(conn)) == ["ETIMEDOUT"]


def test_syn_sent_connect_timeout_checked_at_a_later_timer() -> None:
    conn = syn_sent(config(connect_timeout=2.0))
    tick(conn, T0 + 1.0)
    tick(conn, T0 + 3.0)
    assert conn.state == S.CLOSED and errno_names(events(conn)) == ["ETIMEDOUT"]


def test_syn_sent_abort_sends_nothing() -> None:
    conn = syn_sent()
    conn.abort(T0)
    recv_nothing(conn)
    assert conn.state == S.CLOSED
    assert errno_names(events(conn)) == ["ECONNABORTED"]


def test_syn_sent_close_forgets_the_connection() -> None:
    conn = syn_sent()
    conn.close(T0)
    recv_nothing(conn)
    assert conn.state == S.CLOSED and events(conn) == [Closed()]
    assert conn.next_deadline() is None


# ---------------------------------------------------------------------------- SYN-RECEIVED


def test_listen_syn_answered_with_syn_ack() -> None:
    conn = make_conn()
    conn.open_passive(peer_syn(), T0)
    assert conn.state == S.SYN_RECEIVED
    assert recv(conn) == [(out(SYN | ACK, ISS, IRS + 1, RCV_BUF, TcpOptions(mss=MSS)), b"")]
    assert conn.next_deadline() == T0 + 1.0


def test_listen_syn_with_every_option_gets_them_all_back() -> None:
    conn = make_conn(FULL)
    conn.open_passive(peer_syn(PEER_FULL_SYN, window=29200), T0)
    options = TcpOptions(mss=MSS, window_scale=3, sack_permitted=True, timestamps=(TSVAL0, 7777))
    assert recv(conn) == [(out(SYN | ACK, ISS, IRS + 1, 0xFFFF, options), b"")]
    assert conn.snd_wnd == 29200 and conn.mss == 1400 - 12


def test_listen_syn_without_options_gets_only_mss() -> None:
    conn = make_conn(FULL)
    conn.open_passive(peer_syn(TcpOptions()), T0)
    assert recv(conn) == [(out(SYN | ACK, ISS, IRS + 1, 0xFFFF, TcpOptions(mss=MSS)), b"")]
    assert conn.peer_mss == 536


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"timestamps": False}, TcpOptions(mss=MSS, window_scale=3, sack_permitted=True)),
        ({"sack": False}, TcpOptions(mss=MSS, window_scale=3, timestamps=(TSVAL0, 7777))),
        ({"window_scaling": False}, TcpOptions(mss=MSS, sack_permitted=True, timestamps=(TSVAL0, 7777))),
    ],
)
def test_listen_syn_options_switched_off_locally_are_not_offered(
    changes: dict[str, bool], expected: TcpOptions
) -> None:
    from dataclasses import replace

    conn = make_conn(replace(FULL, **changes))
    conn.open_passive(peer_syn(PEER_FULL_SYN), T0)
    [(synack, _)] = recv(conn)
    assert synack.options == expected
    assert conn.ts_enabled == changes.get("timestamps", True)
    assert conn.sack_enabled == changes.get("sack", True)
    assert conn.wscale_enabled == changes.get("window_scaling", True)


def test_syn_received_ack_establishes() -> None:
    conn = syn_received()
    send(conn, seg(ACK, IRS + 1, ISS + 1, 1234), now=T0 + 0.03)
    assert conn.state == S.ESTABLISHED
    recv_nothing(conn, T0 + 0.03)
    assert events(conn) == [Connected()]
    assert conn.snd_wnd == 1234 and conn.snd_una == ISS + 1
    assert conn.cwnd == CONFIG.initial_window * MSS
    assert conn.rtt.srtt == pytest.approx(0.03)
    assert conn.next_deadline() is None


def test_syn_received_ack_window_is_scaled() -> None:
    conn = syn_received(FULL, options=TcpOptions(mss=MSS, window_scale=2))
    send(conn, seg(ACK, IRS + 1, ISS + 1, 1000))
    assert conn.snd_wnd == 4000


def test_syn_received_ack_with_data_establishes_and_delivers() -> None:
    conn = syn_received()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1), b"GET /")
    assert conn.state == S.ESTABLISHED
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 6, RCV_BUF - 5), b"")]
    assert events(conn) == [Connected(), DataAvailable()]
    assert conn.recv() == b"GET /"


@pytest.mark.parametrize("ack", [ISS, ISS + 2, ISS - 5000])
def test_syn_received_bad_ack_is_answered_with_rst(ack: int) -> None:
    conn = syn_received()
    send(conn, seg(ACK, IRS + 1, ack))
    assert recv(conn) == [(rst(ack), b"")]
    assert conn.state == S.SYN_RECEIVED


def test_syn_received_rst_refuses() -> None:
    conn = syn_received()
    send(conn, seg(RST, IRS + 1, 0))
    assert conn.state == S.CLOSED
    assert errno_names(events(conn)) == ["ECONNREFUSED"]
    recv_nothing(conn)


def test_syn_received_in_window_rst_not_exact_is_challenged() -> None:
    conn = syn_received()
    send(conn, seg(RST, IRS + 100, 0))
    assert conn.state == S.SYN_RECEIVED
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]


def test_syn_received_in_window_syn_resets() -> None:
    conn = syn_received()
    send(conn, seg(SYN, IRS + 10, 0, PEER_WINDOW, PEER_SYN_OPTIONS))
    assert conn.state == S.CLOSED
    assert errno_names(events(conn)) == ["ECONNRESET"]


def test_syn_received_retransmitted_syn_is_acknowledged() -> None:
    conn = syn_received()
    send(conn, peer_syn())  # an old duplicate: not acceptable, answered <SEQ=SND.NXT><ACK=RCV.NXT>
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    assert conn.state == S.SYN_RECEIVED


def test_syn_received_syn_ack_retransmitted_then_etimedout() -> None:
    conn = syn_received(config(syn_retries=1))
    synack = out(SYN | ACK, ISS, IRS + 1, RCV_BUF, TcpOptions(mss=MSS))
    assert tick(conn, T0 + 1.0) == [(synack, b"")]
    assert conn.next_deadline() == T0 + 3.0
    assert tick(conn, T0 + 3.0) == []
    assert conn.state == S.CLOSED and errno_names(events(conn)) == ["ETIMEDOUT"]


def test_syn_received_syn_ack_retransmission_echoes_the_latest_timestamp() -> None:
    conn = syn_received(FULL, options=PEER_FULL_SYN)
    [(synack, _)] = tick(conn, T0 + 1.0)
    assert synack.options.timestamps == (TSVAL0 + 1000, 7777)


def test_syn_received_data_is_queued_until_established() -> None:
    conn = syn_received()
    assert conn.send(b"early") == 5
    recv_nothing(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1))
    assert recv(conn) == [(out(ACK | PSH, ISS + 1, IRS + 1), b"early")]


def test_syn_received_abort_sends_rst() -> None:
    conn = syn_received()
    conn.abort(T0)
    assert recv(conn) == [(rst(ISS + 1), b"")]
    assert conn.state == S.CLOSED and errno_names(events(conn)) == ["ECONNABORTED"]


# ---------------------------------------------------------------------------- wrap-around


@pytest.mark.parametrize("iss", [0xFFFFFFFF, 0xFFFFFFF0])
def test_syn_received_isn_near_wrap(iss: int) -> None:
    irs = 0xFFFFFFFE
    conn = syn_received(iss=iss, irs=irs)
    send(conn, seg(ACK | PSH, irs + 1, iss + 1), b"abc")
    assert conn.state == S.ESTABLISHED
    assert recv(conn) == [(out(ACK, iss + 1, irs + 4, RCV_BUF - 3), b"")]
    conn.send(b"xyz")
    assert recv(conn) == [(out(ACK | PSH, iss + 1, irs + 4, RCV_BUF - 3), b"xyz")]
    send(conn, seg(ACK, irs + 4, iss + 4))
    assert conn.unsent == 0 and conn.next_deadline() is None


def test_syn_sent_rto_is_3_seconds_after_a_syn_timeout() -> None:
    conn = syn_sent()
    tick(conn, T0 + 1.0)
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=MSS)), now=T0 + 1.1)
    assert conn.rtt.rto == 3.0


# ---------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "changes",
    [
        {"mss": 10},
        {"mss": 70000},
        {"receive_buffer": 100},
        {"send_buffer": (1 << 30) + 1},
        {"delayed_ack": 0.5},
        {"delayed_ack": 0.0},
        {"rto_min": 2.0},
        {"rto_initial": 100.0},
        {"backlog": 0},
        {"max_half_open": 0},
        {"max_connections": 0},
    ],
)
def test_config_rejects_values_the_rfcs_forbid(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TcpConfig(**changes)


@pytest.mark.parametrize(("buffer", "shift"), [(1024, 0), (65535, 0), (65536, 1), (256 * 1024, 3), (1 << 30, 14)])
def test_config_window_scale_for_a_buffer(buffer: int, shift: int) -> None:
    from wipstack.tcp.connection import window_scale_for

    assert window_scale_for(buffer) == shift
    assert buffer >> shift <= 0xFFFF or shift == 14  # RFC 7323 §2.3: 14 at most (1 GiB - 16 KiB offered)
