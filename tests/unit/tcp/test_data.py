"""Data transfer in ESTABLISHED (RFC 9293 §3.8, §3.10.7.4; RFC 1122 §4.2.3; RFC 2018; RFC 7323 §2).

Sending (segmentation, PSH, Nagle, sender SWS avoidance, the peer's window, zero-window
probes), receiving (in and out of order, delayed ACKs, SACK blocks, receiver SWS avoidance,
a window that never shrinks) and the events that tell the user about it.
"""

from __future__ import annotations

import pytest

from tests.unit.tcp.helpers import (
    ACK,
    FIN,
    IRS,
    ISS,
    MSS,
    PSH,
    RCV_BUF,
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
    tick,
)
from wipstack.tcp.events import DataAvailable, SendSpace
from wipstack.wire.tcp import TcpOptions

M = MSS
SACK_PEER = TcpOptions(mss=MSS, sack_permitted=True)
SACK_CONFIG = config(sack=True)


def lengths(segments: list[Segment]) -> list[int]:
    return [len(p) for _, p in segments]


def sack(*blocks: tuple[int, int]) -> TcpOptions:
    """SACK blocks relative to IRS + 1."""
    return TcpOptions(sack_blocks=tuple((IRS + 1 + a, IRS + 1 + b) for a, b in blocks))


# ---------------------------------------------------------------------------- sending


def test_established_send_cuts_mss_segments_and_pushes_the_last() -> None:
    conn = established()
    conn.nagle = False
    payload = data(3000)
    assert conn.send(payload) == 3000
    assert recv(conn) == [
        (out(ACK, ISS + 1), payload[:M]),
        (out(ACK, ISS + 1 + M), payload[M : 2 * M]),
        (out(ACK | PSH, ISS + 1 + 2 * M), payload[2 * M :]),
    ]
    assert conn.next_deadline() == T0 + conn.rtt.rto
    send(conn, seg(ACK, IRS + 1, ISS + 3001))
    assert conn.unsent == 0 and conn.next_deadline() is None


def test_established_nagle_holds_a_small_segment_while_data_is_in_flight() -> None:
    conn = established()
    assert conn.nagle  # the default
    payload = data(3000)
    conn.send(payload)
    assert lengths(recv(conn)) == [M, M]  # the 80-octet tail waits (RFC 9293 §3.7.4)
    send(conn, seg(ACK, IRS + 1, ISS + 1 + M))
    recv_nothing(conn)  # still something in flight
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 2 * M))
    assert recv(conn) == [(out(ACK | PSH, ISS + 1 + 2 * M), payload[2 * M :])]


def test_established_nagle_small_write_goes_at_once_when_idle() -> None:
    conn = established()
    conn.send(b"x")
    assert recv(conn) == [(out(ACK | PSH), b"x")]
    conn.send(b"y")
    recv_nothing(conn)  # Nagle: one small segment in flight at a time
    conn.nagle = False
    assert recv(conn) == [(out(ACK | PSH, ISS + 2), b"y")]


def test_established_send_stops_at_the_peer_window() -> None:
    conn = established(window=3000)
    conn.nagle = False
    conn.send(data(10_000))
    # 3000 octets of window: two full segments and 80 (at least half the largest window? no: held)
    assert lengths(recv(conn)) == [M, M]
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 2 * M, 3000))
    assert lengths(recv(conn)) == [M, M]


def test_established_send_stops_at_cwnd() -> None:
    conn = established(window=65535)
    conn.send(data(20 * M))
    assert lengths(recv(conn)) == [M] * 10  # RFC 6928 initial window
    assert conn.cwnd == 10 * M


def test_established_send_small_window_at_least_half_the_largest_is_used() -> None:
    conn = established(window=1000)  # a peer with a tiny buffer: max window 1000
    conn.send(data(3000))
    assert lengths(recv(conn)) == [1000]  # RFC 9293 §3.8.6.2.1: >= Fs * Max(SND.WND)


def test_established_sender_sws_avoidance_holds_a_small_usable_window() -> None:
    conn = established(window=10_000)
    conn.send(data(6 * M))
    assert lengths(recv(conn)) == [M] * 6
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 6 * M, 700))
    conn.send(data(2000))
    recv_nothing(conn)  # 700 < MSS and < half of the 10000 the peer once offered
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 6 * M, 5000))
    assert lengths(recv(conn)) == [M]  # the 540-octet tail waits for the ACK (Nagle)


def test_established_sender_sws_held_data_has_a_timer() -> None:
    # RFC 9293 §3.8.6.2.1: data held back by SWS avoidance with nothing in flight needs a timer,
    # or a lost window update stalls the connection for good
    conn = established(window=10_000)
    conn.send(data(6 * M))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 6 * M, 700))
    conn.send(data(2000))
    recv_nothing(conn)
    deadline = conn.next_deadline()
    assert deadline is not None and deadline <= T0 + 5.0
    assert tick(conn, deadline) != []  # a probe (or the data)
    following = conn.next_deadline()
    assert following is not None and following > deadline
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 6 * M, 10_000), now=deadline)  # the window update
    assert sum(len(p) for _, p in recv(conn, deadline)) >= M


def test_established_send_buffer_full_then_send_space() -> None:
    conn = established(config(send_buffer=4096))
    payload = data(5000)
    assert conn.send(payload) == 4096
    assert conn.send_space == 0 and conn.send(b"more") == 0
    assert lengths(recv(conn)) == [M, M]
    assert events(conn) == []
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 2 * M))
    assert events(conn) == [SendSpace()]  # half the buffer is free again
    assert conn.send_space == 4096 - (4096 - 2 * M)
    assert recv(conn) == [(out(ACK | PSH, ISS + 1 + 2 * M), payload[2 * M : 4096])]


def test_established_no_send_space_event_without_pressure() -> None:
    conn = established()
    conn.send(b"abc")
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 4))
    assert events(conn) == []


# ---------------------------------------------------------------------------- zero window


def test_established_zero_window_persist_probes_back_off_to_persist_max() -> None:
    conn = established(config(persist_max=1.0))
    conn.send(data(2 * M))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 2 * M, 0))
    assert conn.rtt.rto == pytest.approx(0.2)
    conn.send(b"blocked")
    recv_nothing(conn)
    probe = out(ACK, ISS + 2 * M, IRS + 1)  # SND.UNA - 1: the peer must answer with its window
    expected = [0.2, 0.6, 1.4, 2.4, 3.4, 4.4]  # 0.2, then doubling: 0.4, 0.8, then capped at 1.0
    for at in expected:
        deadline = conn.next_deadline()
        assert deadline == pytest.approx(T0 + at)
        assert deadline is not None
        assert tick(conn, deadline) == [(probe, b"")]
        following = conn.next_deadline()
        assert following is not None and following > deadline  # never spins
        # the peer answers each probe: still no room
        send(conn, seg(ACK, IRS + 1, ISS + 1 + 2 * M, 0), now=deadline)
        recv_nothing(conn, deadline)
    assert conn.state == S.ESTABLISHED  # probes unanswered with a window never time out


def test_established_zero_window_opens_sends_and_stops_probing() -> None:
    conn = established()
    conn.send(data(M))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1 + M, 0))
    conn.send(b"waiting")
    recv_nothing(conn)
    tick(conn, T0 + 0.2)
    send(conn, seg(ACK, IRS + 1, ISS + 1 + M, 100), now=T0 + 0.3)
    assert recv(conn, T0 + 0.3) == [(out(ACK | PSH, ISS + 1 + M), b"waiting")]
    assert conn.next_deadline() == pytest.approx(T0 + 0.3 + conn.rtt.rto)  # the RTO, not the persist timer
    send(conn, seg(ACK, IRS + 1, ISS + 1 + M + 7, 100), now=T0 + 0.35)
    assert conn.next_deadline() is None


def test_established_zero_window_fin_waits_for_room() -> None:
    conn = established()
    send(conn, seg(ACK, IRS + 1, ISS + 1, 0))
    conn.close(T0)
    recv_nothing(conn)
    assert conn.state == S.FIN_WAIT_1
    send(conn, seg(ACK, IRS + 1, ISS + 1, 10))
    assert recv(conn) == [(out(FIN | ACK, ISS + 1), b"")]


def test_established_zero_window_with_data_in_flight_keeps_probing() -> None:
    conn = established(config(data_retries=3))
    conn.send(data(3 * M))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1 + 2 * M, 0))  # the third segment did not fit
    now, probes = T0, 0
    while now < T0 + 600 and conn.state == S.ESTABLISHED:
        deadline = conn.next_deadline()
        assert deadline is not None, "no timer: a lost window update would stall the connection"
        now = deadline
        sent = tick(conn, now)
        if sent:
            probes += 1
            send(conn, seg(ACK, IRS + 1, ISS + 1 + 2 * M, 0), now=now)  # alive, window still closed
            recv(conn, now)
    assert probes >= 4 and conn.state == S.ESTABLISHED


# ---------------------------------------------------------------------------- receiving


def test_established_receive_in_order_with_delayed_ack() -> None:
    conn = established()
    payload = data(M)
    send(conn, seg(ACK, IRS + 1, ISS + 1), payload)
    recv_nothing(conn)
    assert conn.next_deadline() == pytest.approx(T0 + 0.04)  # RFC 1122 §4.2.3.2
    assert events(conn) == [DataAvailable()]
    assert tick(conn, T0 + 0.039) == []
    assert tick(conn, T0 + 0.04) == [(out(ACK, ISS + 1, IRS + 1 + M, RCV_BUF - M), b"")]
    assert conn.next_deadline() is None
    assert conn.recv() == payload


def test_established_every_second_full_segment_is_acked_at_once() -> None:
    conn = established()
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(M))
    recv_nothing(conn)
    send(conn, seg(ACK, IRS + 1 + M, ISS + 1), data(M), now=T0 + 0.01)
    assert recv(conn, T0 + 0.01) == [(out(ACK, ISS + 1, IRS + 1 + 2 * M, RCV_BUF - 2 * M), b"")]
    assert conn.next_deadline() is None  # the delayed-ACK timer went with it
    send(conn, seg(ACK, IRS + 1 + 2 * M, ISS + 1), data(M), now=T0 + 0.02)
    recv_nothing(conn, T0 + 0.02)
    assert conn.next_deadline() == pytest.approx(T0 + 0.06)


def test_established_data_available_is_coalesced() -> None:
    conn = established()
    for i in range(3):
        send(conn, seg(ACK, IRS + 1 + 100 * i, ISS + 1), data(100))
    assert events(conn) == [DataAvailable()]
    assert conn.readable == 300


def test_established_ack_piggybacks_on_data() -> None:
    conn = established()
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(M))
    conn.send(b"reply")
    assert recv(conn) == [(out(ACK | PSH, ISS + 1, IRS + 1 + M, RCV_BUF - M), b"reply")]
    assert conn.next_deadline() == pytest.approx(T0 + conn.rtt.rto)  # no delayed ACK left


def test_established_out_of_order_is_acked_at_once_then_reassembled() -> None:
    conn = established()
    payload = data(3 * M)
    send(conn, seg(ACK, IRS + 1 + M, ISS + 1), payload[M : 2 * M])
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]  # a duplicate ACK (RFC 5681 §4.2)
    assert events(conn) == [] and conn.readable == 0
    send(conn, seg(ACK, IRS + 1 + 2 * M, ISS + 1), payload[2 * M :])
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    send(conn, seg(ACK, IRS + 1, ISS + 1), payload[:M])  # fills the hole
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1 + 3 * M, RCV_BUF - 3 * M), b"")]
    assert events(conn) == [DataAvailable()]
    assert conn.recv() == payload


def test_established_duplicate_data_is_acked_at_once() -> None:
    conn = established()
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(100))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(100))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 101, RCV_BUF - 100), b"")]
    assert conn.readable == 100


def test_established_overlapping_data_is_trimmed() -> None:
    conn = established()
    payload = data(300)
    send(conn, seg(ACK, IRS + 1, ISS + 1), payload[:100])
    send(conn, seg(ACK, IRS + 1 + 50, ISS + 1), payload[50:300])
    assert conn.recv() == payload


def test_established_data_beyond_the_window_is_trimmed() -> None:
    conn = established(config(receive_buffer=2048))
    payload = data(3000)
    send(conn, seg(ACK, IRS + 1, ISS + 1), payload)
    assert conn.readable == 2048
    [(ack, _)] = tick(conn, T0 + 0.04)
    assert (ack.ack, ack.window) == ((IRS + 1 + 2048) & 0xFFFFFFFF, 0)
    assert conn.recv() == payload[:2048]


def test_established_data_entirely_beyond_the_window_is_not_acceptable() -> None:
    conn = established()
    send(conn, seg(ACK, IRS + 1 + RCV_BUF, ISS + 1), b"far")
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    assert conn.readable == 0 and conn.drops


# ---------------------------------------------------------------------------- SACK (RFC 2018)


def test_established_sack_block_reports_out_of_order_data() -> None:
    conn = established(SACK_CONFIG, options=SACK_PEER)
    assert conn.sack_enabled
    send(conn, seg(ACK, IRS + 1 + M, ISS + 1), data(M))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1, RCV_BUF, sack((M, 2 * M))), b"")]


def test_established_sack_blocks_most_recent_first() -> None:
    conn = established(SACK_CONFIG, options=SACK_PEER)
    send(conn, seg(ACK, IRS + 1 + 2 * M, ISS + 1), data(M))
    recv(conn)
    send(conn, seg(ACK, IRS + 1 + 6 * M, ISS + 1), data(M))
    assert recv(conn)[0][0].options == sack((6 * M, 7 * M), (2 * M, 3 * M))
    send(conn, seg(ACK, IRS + 1 + 4 * M, ISS + 1), data(M))
    assert recv(conn)[0][0].options == sack((4 * M, 5 * M), (6 * M, 7 * M), (2 * M, 3 * M))
    # a segment extending a block: that block first, as it grew
    send(conn, seg(ACK, IRS + 1 + 3 * M, ISS + 1), data(M))
    assert recv(conn)[0][0].options == sack((2 * M, 5 * M), (6 * M, 7 * M))
    # the hole below fills: the cumulative ACK moves, the blocks above stay
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(2 * M))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1 + 5 * M, RCV_BUF - 5 * M, sack((6 * M, 7 * M))), b"")]
    send(conn, seg(ACK, IRS + 1 + 5 * M, ISS + 1), data(M))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1 + 7 * M, RCV_BUF - 7 * M), b"")]


def test_established_sack_blocks_repeat_the_most_recently_reported() -> None:
    conn = established(SACK_CONFIG, options=SACK_PEER)
    for offset in (6 * M, 2 * M, 4 * M):  # arrival order
        send(conn, seg(ACK, IRS + 1 + offset, ISS + 1), data(M))
        [(ack, _)] = recv(conn)
    assert ack.options == sack((4 * M, 5 * M), (2 * M, 3 * M), (6 * M, 7 * M))


def test_established_sack_at_most_four_blocks_without_timestamps() -> None:
    conn = established(SACK_CONFIG, options=SACK_PEER)
    for k in range(6):
        send(conn, seg(ACK, IRS + 1 + (2 * k + 1) * 100, ISS + 1), data(100))
        [(ack, _)] = recv(conn)
    assert len(ack.options.sack_blocks) == 4
    assert ack.options.sack_blocks[0] == (IRS + 1 + 1100, IRS + 1 + 1200)


def test_established_sack_at_most_three_blocks_with_timestamps() -> None:
    conn = established(
        config(sack=True, timestamps=True),
        options=TcpOptions(mss=MSS, sack_permitted=True, timestamps=(1, 0)),
        ack_options=TcpOptions(timestamps=(2, 100_000)),
    )
    for k in range(5):
        send(conn, seg(ACK, IRS + 1 + (2 * k + 1) * 100, ISS + 1, options=TcpOptions(timestamps=(3, 0))), data(100))
        [(ack, _)] = recv(conn)
    assert len(ack.options.sack_blocks) == 3 and ack.options.timestamps is not None
    ack.options.emit()  # fits the 40 octets of options


def test_established_no_sack_blocks_when_not_permitted() -> None:
    conn = established(SACK_CONFIG)  # the peer's SYN had no SACK-permitted
    send(conn, seg(ACK, IRS + 1 + M, ISS + 1), data(M))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]


def test_established_in_order_data_is_accepted_when_the_assembler_is_full() -> None:
    conn = established(config(max_out_of_order_ranges=2))
    send(conn, seg(ACK, IRS + 1 + 10 * M, ISS + 1), data(M))
    send(conn, seg(ACK, IRS + 1 + 12 * M, ISS + 1), data(M))
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(M))
    assert conn.readable == M
    assert recv(conn)[0][0].ack == IRS + 1 + M


def test_established_out_of_order_ranges_are_bounded() -> None:
    conn = established(config(max_out_of_order_ranges=2))
    for k in range(5):
        send(conn, seg(ACK, IRS + 1 + (2 * k + 1) * 100, ISS + 1), data(100))
    assert len(conn._ooo.ranges()) == 2
    assert sum(conn.drops.values()) == 3


# ---------------------------------------------------------------------------- our window


def test_established_window_shrinks_only_by_what_arrived() -> None:
    conn = established()
    edges = []
    for k in range(6):
        send(conn, seg(ACK, IRS + 1 + 1001 * k, ISS + 1), data(1001), now=T0 + k)
        for ack, _ in tick(conn, T0 + k + 0.04):
            edges.append(ack.ack + ack.window)
    assert edges and all(edge == IRS + 1 + RCV_BUF for edge in edges)  # the right edge stays put


def test_established_scaled_window_never_shrinks() -> None:
    conn = established(
        config(receive_buffer=256 * 1024, window_scaling=True), options=TcpOptions(mss=MSS, window_scale=0)
    )
    edges = []
    for k in range(6):
        send(conn, seg(ACK, IRS + 1 + 1001 * k, ISS + 1), data(1001), now=T0 + k)
        for ack, _ in tick(conn, T0 + k + 0.04):
            edges.append(ack.ack + (ack.window << 3))
    assert len(edges) >= 3
    assert edges == sorted(edges)


def test_established_receiver_sws_small_read_announces_nothing() -> None:
    conn = established()
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(M))
    send(conn, seg(ACK, IRS + 1 + M, ISS + 1), data(M))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1 + 2 * M, RCV_BUF - 2 * M), b"")]
    conn.recv(1000)
    recv_nothing(conn)  # 1000 octets is not a useful window update
    conn.recv()
    # now 2*MSS freed: announce it (RFC 9293 §3.8.6.2.2)
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1 + 2 * M, RCV_BUF), b"")]


def test_established_zero_window_then_read_reopens() -> None:
    conn = established(config(receive_buffer=4096))
    payload = data(4096)
    for start in range(0, 4096, M):
        send(conn, seg(ACK, IRS + 1 + start, ISS + 1), payload[start : start + M])
    [(ack, _)] = tick(conn, T0 + 0.04)
    assert (ack.ack, ack.window) == (IRS + 1 + 4096, 0)
    # the peer's data beyond a zero window is not acceptable: ACK, drop
    send(conn, seg(ACK, IRS + 1 + 4096, ISS + 1), b"more", now=T0 + 0.1)
    assert recv(conn, T0 + 0.1) == [(out(ACK, ISS + 1, IRS + 1 + 4096, 0), b"")]
    assert conn.recv() == payload
    assert recv(conn, T0 + 0.1) == [(out(ACK, ISS + 1, IRS + 1 + 4096, 4096), b"")]


def test_established_zero_receive_window_still_takes_the_ack_of_a_probe() -> None:
    conn = established(config(receive_buffer=2048))
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(M))
    send(conn, seg(ACK, IRS + 1 + M, ISS + 1), data(2048 - M))
    assert recv(conn)[0][0].window == 0
    conn.send(data(100))
    recv(conn)
    send(conn, seg(ACK | PSH, IRS + 1 + 2048, ISS + 101), b"p")  # the probe acknowledges our 100 octets
    assert recv(conn) == [(out(ACK, ISS + 101, IRS + 1 + 2048, 0), b"")]  # its octet is not taken...
    assert conn.unsent == 0  # ...but its ACK is


def test_established_receiver_sws_zero_window_does_not_open_by_a_few_octets() -> None:
    conn = established(config(receive_buffer=4096))
    for start in range(0, 4096, M):
        send(conn, seg(ACK, IRS + 1 + start, ISS + 1), data(min(M, 4096 - start)))
    tick(conn, T0 + 0.04)
    conn.recv(10)
    recv_nothing(conn, T0 + 0.1)
    send(conn, seg(ACK, IRS + 4096, ISS + 1), now=T0 + 0.2)  # a zero-window probe
    assert recv(conn, T0 + 0.2) == [(out(ACK, ISS + 1, IRS + 1 + 4096, 0), b"")]
