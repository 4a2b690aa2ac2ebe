"""Blind attacks and old duplicates (RFC 5961, RFC 7323 §5 PAWS), timestamps (RFC 7323 §4), keep-alive (RFC 1122)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.tcp.helpers import (
    ACK,
    FACTORIES,
    IRS,
    ISS,
    MSS,
    PEER_WINDOW,
    PSH,
    RCV_BUF,
    RST,
    SYN,
    T0,
    S,
    Segment,
    config,
    data,
    established,
    events,
    out,
    recv,
    recv_nothing,
    seg,
    send,
    syn_received,
    tick,
)
from wipstack.errors import DropReason
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.events import Closed, ConnectionFailed
from wipstack.wire.tcp import TcpFlags, TcpOptions

TSVAL0 = int(T0 * 1000)
SYNCHRONIZED = ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"]


def ts_established(**kw: Any) -> TcpConnection:
    """ESTABLISHED with timestamps: the peer's TSvals start at 1000."""
    return established(
        config(timestamps=True, **kw),
        options=TcpOptions(mss=MSS, timestamps=(1000, 0)),
        ack_options=TcpOptions(timestamps=(1001, TSVAL0)),
    )


def ts(tsval: int, tsecr: int = TSVAL0) -> TcpOptions:
    return TcpOptions(timestamps=(tsval, tsecr))


def brief(segments: list[Segment]) -> list[tuple[TcpFlags, int, int, int]]:
    return [(r.flags, r.seq, r.ack, len(p)) for r, p in segments]


# ---------------------------------------------------------------------------- PAWS (RFC 7323 §5)


def test_established_paws_drops_an_old_timestamp_and_acks() -> None:
    conn = ts_established()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1, options=ts(2000)), b"a" * 100)
    recv(conn)
    send(conn, seg(ACK | PSH, IRS + 101, ISS + 1, options=ts(3000)), b"b" * 100)
    [(ack, _)] = recv(conn)
    assert ack.options.timestamps == (TSVAL0, 3000)  # TS.Recent follows the peer
    send(conn, seg(ACK | PSH, IRS + 201, ISS + 1, options=ts(2500)), b"c" * 100, now=T0 + 1)
    assert recv(conn, T0 + 1) == [(out(ACK, ISS + 1, IRS + 201, RCV_BUF - 200, ts(TSVAL0 + 1000, 3000)), b"")]
    assert conn.readable == 200
    assert conn.drops[DropReason.PAWS] == 1


def test_established_paws_compares_modulo_2_32() -> None:
    conn = ts_established()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1, options=ts(1001)), b"x")
    recv(conn)  # (its echo is the subject of the Last.ACK.sent xfail below)
    values = [0x70000000, 0xE0000000, 0xFFFFFFF0, 5]  # each less than 2**31 ahead: newer
    for k, tsval in enumerate(values, 1):
        send(conn, seg(ACK | PSH, IRS + 1 + k, ISS + 1, options=ts(tsval)), b"x")
        [(ack, _)] = recv(conn)
        assert ack.options.timestamps == (TSVAL0, tsval)
    assert conn.readable == 5 and not conn.drops[DropReason.PAWS]
    send(conn, seg(ACK | PSH, IRS + 6, ISS + 1, options=ts(0xFFFFFFFF)), b"x")  # behind 5
    assert conn.readable == 5 and conn.drops[DropReason.PAWS] == 1


def test_established_paws_does_not_apply_to_rst() -> None:
    conn = ts_established()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1, options=ts(5000)), b"a")
    recv(conn)
    send(conn, seg(RST, IRS + 2, 0, options=ts(1)))
    assert conn.state == S.CLOSED


def test_syn_received_first_ack_echoes_the_latest_tsval() -> None:
    conn = syn_received(config(timestamps=True), options=TcpOptions(mss=MSS, timestamps=(1000, 0)))
    send(conn, seg(ACK, IRS + 1, ISS + 1, options=ts(1001)))
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1, options=ts(1005)), b"x" * 10)
    [(ack, _)] = recv(conn)
    assert ack.options.timestamps == (TSVAL0, 1005)


def test_syn_sent_first_ack_echoes_the_syn_ack_tsval() -> None:
    from tests.unit.tcp.helpers import syn_sent

    conn = syn_sent(config(timestamps=True))
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=MSS, timestamps=(4242, TSVAL0))))
    [(ack, _)] = recv(conn)
    assert ack.options.timestamps == (TSVAL0, 4242)
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1, options=ts(4243)), b"x" * 10)
    [(ack, _)] = recv(conn)
    assert ack.options.timestamps == (TSVAL0, 4243)


def test_established_timestamps_on_every_segment_but_rst() -> None:
    conn = ts_established()
    conn.send(data(10))
    [(segment, _)] = recv(conn)
    assert segment.options.timestamps is not None
    conn.abort(T0)
    [(reset, _)] = recv(conn)
    assert reset.flags == RST and reset.options == TcpOptions()


# ---------------------------------------------------------------------------- RFC 5961 RST


@pytest.mark.parametrize("state", SYNCHRONIZED)
def test_synchronized_rst_at_rcv_nxt_resets(state: str) -> None:
    conn = FACTORIES[state]()
    send(conn, seg(RST, conn.rcv_nxt, 0))
    recv_nothing(conn)
    assert conn.state == S.CLOSED
    evts = events(conn)
    assert evts[-1] == Closed()
    failed = [e.errno_name for e in evts if isinstance(e, ConnectionFailed)]
    # CLOSING, LAST-ACK, TIME-WAIT: the user already closed; nothing to report (RFC 9293 §3.10.7.4)
    assert failed == ([] if state in ("CLOSING", "LAST-ACK", "TIME-WAIT") else ["ECONNRESET"])


@pytest.mark.parametrize("state", SYNCHRONIZED)
@pytest.mark.parametrize("offset", [1, 1000, RCV_BUF - 2])
def test_synchronized_rst_in_window_gets_a_challenge_ack(state: str, offset: int) -> None:
    conn = FACTORIES[state]()
    before = conn.state
    send(conn, seg(RST, conn.rcv_nxt + offset, 0))
    assert brief(recv(conn)) == [(ACK, conn.snd_nxt, conn.rcv_nxt, 0)]  # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
    assert conn.state == before and events(conn) == []


@pytest.mark.parametrize("state", SYNCHRONIZED)
@pytest.mark.parametrize("offset", [-1, -1000, RCV_BUF + 10, 1 << 30])
def test_synchronized_rst_out_of_window_is_ignored(state: str, offset: int) -> None:
    conn = FACTORIES[state]()
    before = conn.state
    send(conn, seg(RST | ACK, conn.rcv_nxt + offset, conn.snd_nxt))
    recv_nothing(conn)
    assert conn.state == before and events(conn) == []


# ---------------------------------------------------------------------------- RFC 5961 SYN, ACK


@pytest.mark.parametrize("state", ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK"])
@pytest.mark.parametrize("where", ["in-window", "old", "far"])
def test_synchronized_syn_gets_a_challenge_ack(state: str, where: str) -> None:
    conn = FACTORIES[state]()
    seq = {"in-window": conn.rcv_nxt + 5, "old": IRS, "far": conn.rcv_nxt + (1 << 31) - 1}[where]
    send(conn, seg(SYN, seq, 0, PEER_WINDOW, TcpOptions(mss=MSS)))
    assert brief(recv(conn)) == [(ACK, conn.snd_nxt, conn.rcv_nxt, 0)]
    assert conn.state.value == state and events(conn) == []


def test_established_syn_ack_duplicate_is_acked() -> None:
    conn = established()
    send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=MSS)))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    assert conn.state == S.ESTABLISHED


def test_established_ack_above_snd_nxt_is_acked_and_dropped() -> None:
    conn = established()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 100), b"bogus")
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    assert conn.readable == 0 and conn.snd_una == ISS + 1


def test_established_ack_too_old_gets_a_challenge_ack() -> None:
    conn = established()
    conn.send(data(100))
    recv(conn)
    old = ISS + 1 - PEER_WINDOW - 1  # below SND.UNA - MAX.SND.WND (RFC 5961 §5.2)
    send(conn, seg(ACK | PSH, IRS + 1, old), b"bogus")
    assert recv(conn) == [(out(ACK, ISS + 101, IRS + 1), b"")]
    assert conn.readable == 0


def test_established_old_ack_within_the_window_is_fine() -> None:
    conn = established()
    conn.send(data(100))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 101))
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 51), b"ok")  # an old duplicate ACK with new data
    assert conn.readable == 2


def test_established_segment_without_ack_is_dropped() -> None:
    conn = established()
    send(conn, seg(PSH, IRS + 1, 0), b"no ack")
    recv_nothing(conn)
    assert conn.readable == 0 and conn.drops[DropReason.NO_ACK] == 1


def test_established_out_of_window_data_is_acked() -> None:
    conn = established()
    send(conn, seg(ACK, IRS - 100, ISS + 1), b"old")
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    assert conn.drops[DropReason.OUT_OF_WINDOW] == 1


def test_established_challenge_acks_are_rate_limited() -> None:
    conn = established(config(challenge_ack_limit=2))
    acks = []
    for k in range(5):
        send(conn, seg(RST, IRS + 10 + k, 0), now=T0 + 0.1 * k)
        acks += recv(conn, T0 + 0.1 * k)
    assert len(acks) == 2  # RFC 5961 §7
    send(conn, seg(SYN, IRS + 20, 0), now=T0 + 0.9)
    recv_nothing(conn, T0 + 0.9)
    send(conn, seg(RST, IRS + 30, 0), now=T0 + 1.0)  # a new second
    assert len(recv(conn, T0 + 1.0)) == 1
    assert conn.state == S.ESTABLISHED


# ---------------------------------------------------------------------------- keep-alive (RFC 1122 §4.2.3.6)

KA: dict[str, Any] = {"keepalive": True, "keepalive_idle": 10.0, "keepalive_interval": 2.0, "keepalive_count": 3}


def test_established_keepalive_off_by_default() -> None:
    conn = established()
    send(conn, seg(ACK, IRS + 1, ISS + 1), now=T0 + 1)
    assert conn.next_deadline() is None


@pytest.mark.parametrize("opening", ["passive", "active"])
def test_established_keepalive_armed_by_the_handshake(opening: str) -> None:
    from tests.unit.tcp.helpers import syn_sent

    if opening == "passive":
        conn = established(config(**KA))
    else:
        conn = syn_sent(config(**KA))
        send(conn, seg(SYN | ACK, IRS, ISS + 1, PEER_WINDOW, TcpOptions(mss=MSS)))
        recv(conn)
    assert conn.next_deadline() == T0 + 10.0


def test_established_keepalive_probes_an_idle_peer() -> None:
    conn = established(config(**KA))
    send(conn, seg(ACK, IRS + 1, ISS + 1), now=T0 + 1)
    assert conn.next_deadline() == T0 + 11
    probe = out(ACK, ISS, IRS + 1)  # SEG.SEQ = SND.NXT - 1: the peer must answer
    assert tick(conn, T0 + 11) == [(probe, b"")]
    assert conn.next_deadline() == T0 + 13
    send(conn, seg(ACK, IRS + 1, ISS + 1), now=T0 + 11.5)  # the answer
    recv_nothing(conn, T0 + 11.5)
    assert conn.next_deadline() == T0 + 21.5


def test_established_keepalive_gives_up_after_keepalive_count() -> None:
    conn = established(config(**KA))
    send(conn, seg(ACK, IRS + 1, ISS + 1), now=T0 + 1)
    probes = 0
    while conn.state != S.CLOSED:
        deadline = conn.next_deadline()
        assert deadline is not None
        probes += len(tick(conn, deadline))
    assert probes == 3 and deadline == T0 + 17
    assert [e.errno_name for e in events(conn) if isinstance(e, ConnectionFailed)] == ["ETIMEDOUT"]


def test_established_keepalive_postponed_by_traffic() -> None:
    conn = established(config(**KA))
    for t in range(1, 30, 5):
        send(conn, seg(ACK, IRS + 1, ISS + 1), now=T0 + t)
        assert tick(conn, T0 + t + 4.9) == []
    assert conn.state == S.ESTABLISHED
