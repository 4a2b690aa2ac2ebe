"""Retransmission and congestion control (RFC 6298, RFC 5681, RFC 6582, RFC 6675, RFC 2018, RFC 1122 R2)."""

from __future__ import annotations

import pytest

from tests.unit.tcp.helpers import (
    ACK,
    IRS,
    ISS,
    MSS,
    NO_OPTIONS,
    PSH,
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
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.events import Closed, ConnectionFailed
from wipstack.tcp.rtt import RttEstimator
from wipstack.wire.tcp import TcpOptions, TcpRepr

M = MSS
BIG = 65535  # the peer's window in these tests: cwnd is the limit


def starts(segments: list[Segment]) -> list[int]:
    """Offsets (from ISS + 1) of the segments sent."""
    return [(r.seq - ISS - 1) & 0xFFFFFFFF for r, _ in segments]


def ack_of(conn_offset: int, window: int = BIG, options: TcpOptions = NO_OPTIONS) -> TcpRepr:
    return seg(ACK, IRS + 1, ISS + 1 + conn_offset, window, options)


def next_tick(conn: TcpConnection) -> tuple[float, list[Segment]]:
    """Run the next timer."""
    deadline = conn.next_deadline()
    assert deadline is not None
    return deadline, tick(conn, deadline)


# ---------------------------------------------------------------------------- RTT estimator (RFC 6298 §2)


def test_rtt_estimator_first_and_later_samples() -> None:
    rtt = RttEstimator(1.0, 0.2, 60.0)
    assert rtt.rto == 1.0 and rtt.srtt is None
    rtt.sample(0.5)
    assert (rtt.srtt, rtt.rttvar, rtt.rto) == (0.5, 0.25, 1.5)  # SRTT + 4 RTTVAR
    rtt.sample(0.1)
    assert rtt.rttvar == pytest.approx(0.75 * 0.25 + 0.25 * 0.4)
    assert rtt.srtt == pytest.approx(0.875 * 0.5 + 0.125 * 0.1)
    assert rtt.rto == pytest.approx(rtt.srtt + 4 * rtt.rttvar)


def test_rtt_estimator_bounds_and_back_off() -> None:
    rtt = RttEstimator(1.0, 0.2, 3.0)
    rtt.sample(0.001)
    assert rtt.rto == 0.2  # rto_min
    for expected in (0.4, 0.8, 1.6, 3.0, 3.0):
        rtt.back_off()
        assert rtt.rto == pytest.approx(expected)
    assert rtt.backoff == 5
    rtt.sample(0.001)
    assert rtt.backoff == 0 and rtt.rto == 0.2


# ---------------------------------------------------------------------------- RTO


def test_established_rto_retransmits_the_first_segment_and_backs_off() -> None:
    conn = established()
    payload = data(3 * M)
    conn.send(payload)
    recv(conn)
    assert conn.rtt.rto == pytest.approx(0.2)
    first = [(out(ACK, ISS + 1), payload[:M])]
    deadline, segments = next_tick(conn)
    assert deadline == pytest.approx(T0 + 0.2)
    assert segments == first  # cwnd is one segment after an RTO (RFC 5681 §3.1)
    assert (conn.cwnd, conn.ssthresh) == (M, 2 * M)  # ssthresh = max(FlightSize / 2, 2 * SMSS)
    assert conn.rtt.rto == pytest.approx(0.4)  # RFC 6298 §5.5
    deadline, segments = next_tick(conn)
    assert deadline == pytest.approx(T0 + 0.6) and segments == first
    deadline, segments = next_tick(conn)
    assert deadline == pytest.approx(T0 + 1.4) and segments == first
    assert conn.timeouts == 3 and conn.retransmitted_segments == 3
    # the ACK of the retransmission: slow start resends the rest, go-back-N
    send(conn, ack_of(M, 16384), now=T0 + 1.5)
    assert recv(conn, T0 + 1.5) == [
        (out(ACK, ISS + 1 + M), payload[M : 2 * M]),
        (out(ACK | PSH, ISS + 1 + 2 * M), payload[2 * M :]),
    ]


def test_established_rto_is_capped_at_rto_max() -> None:
    conn = established(config(rto_max=1.0))
    conn.send(b"x")
    recv(conn)
    gaps = []
    previous = T0
    for _ in range(6):
        deadline, segments = next_tick(conn)
        assert segments == [(out(ACK | PSH, ISS + 1), b"x")]
        gaps.append(round(deadline - previous, 6))
        previous = deadline
    assert gaps == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_established_ack_restarts_the_rto() -> None:
    conn = established()
    conn.send(data(2 * M))
    recv(conn)
    send(conn, ack_of(M), now=T0 + 0.15)
    assert conn.next_deadline() == pytest.approx(T0 + 0.15 + conn.rtt.rto)  # RFC 6298 §5.3
    send(conn, ack_of(2 * M), now=T0 + 0.16)
    assert conn.next_deadline() is None  # §5.2: everything acknowledged


def test_established_karn_no_rtt_sample_from_a_retransmission() -> None:
    conn = established()
    conn.send(data(M))
    recv(conn)
    samples = conn.rtt.samples
    next_tick(conn)
    send(conn, ack_of(M), now=T0 + 0.5)  # answers the original or the retransmission?
    assert conn.rtt.samples == samples
    assert conn.rtt.backoff == 1 and conn.rtt.rto == pytest.approx(0.4)  # kept until a valid sample
    conn.send(data(M))
    recv(conn, T0 + 0.5)
    send(conn, ack_of(2 * M), now=T0 + 0.55)
    assert conn.rtt.samples == samples + 1 and conn.rtt.backoff == 0


def test_established_timestamps_time_retransmissions_too() -> None:
    conn = established(
        config(timestamps=True),
        options=TcpOptions(mss=MSS, timestamps=(1, 0)),
        ack_options=TcpOptions(timestamps=(2, 100_000)),
    )
    conn.send(data(100))
    [(first, _)] = recv(conn)
    deadline, [(again, _)] = next_tick(conn)
    assert again.options.timestamps is not None and first.options.timestamps is not None
    assert again.options.timestamps[0] == first.options.timestamps[0] + 200  # a fresh TSval
    samples = conn.rtt.samples
    # the echo says which copy is acknowledged (RFC 7323 §4): a valid sample
    send(conn, seg(ACK, IRS + 1, ISS + 101, options=TcpOptions(timestamps=(3, again.options.timestamps[0]))),
         now=deadline + 0.05)  # fmt: skip
    assert conn.rtt.samples == samples + 1
    assert conn.rtt.srtt is not None and conn.rtt.srtt < 0.1


def test_established_data_retries_then_etimedout() -> None:
    conn = established(config(data_retries=2))
    conn.send(b"lost")
    recv(conn)
    next_tick(conn)
    next_tick(conn)
    _, segments = next_tick(conn)
    assert segments == []  # no RST: the peer is unreachable anyway
    assert conn.state == S.CLOSED
    evts = events(conn)
    assert [type(e) for e in evts] == [ConnectionFailed, Closed]
    assert isinstance(evts[0], ConnectionFailed) and evts[0].errno_name == "ETIMEDOUT"
    assert conn.next_deadline() is None


def test_established_data_retries_count_consecutive_expirations_only() -> None:
    conn = established(config(data_retries=2))
    conn.send(data(2 * M))
    recv(conn)
    deadline, _ = next_tick(conn)
    deadline, _ = next_tick(conn)
    send(conn, ack_of(M), now=deadline + 0.01)  # progress resets the count
    recv(conn, deadline + 0.01)
    next_tick(conn)
    next_tick(conn)
    assert conn.state == S.ESTABLISHED


def test_established_data_timeout() -> None:
    conn = established(config(data_timeout=1.0, data_retries=100))
    conn.send(b"lost")
    recv(conn)
    while conn.state != S.CLOSED:
        deadline, _ = next_tick(conn)
    assert deadline == pytest.approx(T0 + 1.4)  # the first expiry more than 1 s after the data left
    assert [e.errno_name for e in events(conn) if isinstance(e, ConnectionFailed)] == ["ETIMEDOUT"]


# ---------------------------------------------------------------------------- fast retransmit, NewReno


def newreno(n: int = 6) -> tuple[TcpConnection, bytes]:
    conn = established(window=BIG)
    payload = data(n * M)
    conn.send(payload)
    assert len(recv(conn)) == n
    send(conn, ack_of(M))  # the first segment arrived; the second was lost
    recv_nothing(conn)
    return conn, payload


def test_established_fast_retransmit_on_the_third_dupack() -> None:
    conn, payload = newreno()
    send(conn, ack_of(M))
    send(conn, ack_of(M))
    recv_nothing(conn)
    send(conn, ack_of(M))
    assert recv(conn) == [(out(ACK, ISS + 1 + M), payload[M : 2 * M])]
    assert conn.fast_recoveries == 1
    flight = 5 * M
    assert conn.ssthresh == flight // 2
    assert conn.cwnd == flight // 2 + 3 * M  # RFC 6582 §3.2 step 2
    assert conn.next_deadline() == pytest.approx(T0 + conn.rtt.rto)


def test_established_dupack_with_a_new_window_is_not_a_duplicate() -> None:
    conn, _ = newreno()
    for window in (BIG - 1, BIG - 2, BIG - 3):
        send(conn, ack_of(M, window))
    recv_nothing(conn)
    assert conn.fast_recoveries == 0


def test_established_data_segments_are_not_dupacks() -> None:
    conn = established()
    conn.send(data(3 * M))
    recv(conn)
    for k in range(3):
        send(conn, seg(ACK | PSH, IRS + 1 + 100 * k, ISS + 1), data(100))
        for reply, payload in recv(conn):
            assert not payload, "retransmitted while nothing was lost"
            assert reply.ack == IRS + 101 + 100 * k
    assert conn.fast_recoveries == 0


def test_established_newreno_dupacks_inflate_cwnd_and_send_new_data() -> None:
    conn, _ = newreno()
    for _ in range(3):
        send(conn, ack_of(M))
    recv(conn)
    conn.send(data(3 * M, 9))
    # cwnd = 2.5 + 3 = 5.5 MSS, flight 5 MSS: no room for a full segment yet
    recv_nothing(conn)
    send(conn, ack_of(M))  # cwnd 6.5 MSS: one new segment
    assert starts(recv(conn)) == [6 * M]
    send(conn, ack_of(M))
    assert starts(recv(conn)) == [7 * M]


def test_established_newreno_partial_ack_retransmits_the_next_hole() -> None:
    conn, payload = newreno()  # segments 1 and 3 lost
    for _ in range(3):
        send(conn, ack_of(M))
    assert starts(recv(conn)) == [M]
    cwnd = conn.cwnd
    send(conn, ack_of(3 * M))  # partial: 1 and 2 acknowledged, 3 missing
    assert recv(conn) == [(out(ACK, ISS + 1 + 3 * M), payload[3 * M : 4 * M])]  # RFC 6582 §3.2 step 4
    assert conn.cwnd == cwnd - 2 * M + M  # deflated by the amount acknowledged, plus one segment
    assert conn.fast_recoveries == 1
    send(conn, ack_of(6 * M))  # full acknowledgment
    recv_nothing(conn)
    assert conn.unsent == 0 and conn.next_deadline() is None
    send(conn, ack_of(6 * M))
    send(conn, ack_of(6 * M))
    send(conn, ack_of(6 * M))
    assert conn.fast_recoveries == 1  # nothing outstanding: no more dupacks


def test_established_newreno_full_ack_leaves_two_segments_of_cwnd() -> None:
    conn, _ = newreno()
    for _ in range(3):
        send(conn, ack_of(M))
    recv(conn)
    send(conn, ack_of(6 * M))
    assert conn.cwnd == min(conn.ssthresh, max(0, M) + M)


def test_established_no_second_fast_retransmit_for_the_same_window() -> None:
    conn, _ = newreno()
    for _ in range(3):
        send(conn, ack_of(M))
    recv(conn)
    for _ in range(6):
        send(conn, ack_of(M))
    assert conn.fast_recoveries == 1 and conn.retransmitted_segments == 1


def test_established_after_an_rto_dupacks_do_not_fast_retransmit_old_data() -> None:
    conn, _ = newreno()
    next_tick(conn)  # RTO: recover = SND.MAX (RFC 6582 §4.1)
    for _ in range(4):
        send(conn, ack_of(M))
    assert conn.fast_recoveries == 0


# ---------------------------------------------------------------------------- SACK recovery


def sack_blocks(*blocks: tuple[int, int]) -> TcpOptions:
    return TcpOptions(sack_blocks=tuple((ISS + 1 + a * M, ISS + 1 + b * M) for a, b in blocks))


def test_established_sack_recovery_retransmits_holes_only() -> None:
    conn = established(config(sack=True), options=TcpOptions(mss=MSS, sack_permitted=True), window=BIG)
    payload = data(10 * M)
    conn.send(payload)
    assert starts(recv(conn)) == [k * M for k in range(10)]
    send(conn, ack_of(M))  # segments 1 and 5 are lost
    sent: list[int] = []
    for blocks in [
        ((2, 3),),
        ((2, 4),),
        ((2, 5),),
        ((6, 7), (2, 5)),
        ((6, 8), (2, 5)),
        ((6, 9), (2, 5)),
        ((6, 10), (2, 5)),
    ]:
        send(conn, ack_of(M, options=sack_blocks(*blocks)))
        for r, p in recv(conn):
            offset = (r.seq - ISS - 1) & 0xFFFFFFFF
            assert p == payload[offset : offset + len(p)]
            sent.append(offset)
    assert sent == [M, 5 * M]  # each hole once, never a SACKed segment, no RTO needed
    assert conn.fast_recoveries == 1
    send(conn, ack_of(10 * M))
    assert conn.unsent == 0 and conn.next_deadline() is None


def test_established_sack_blocks_outside_the_window_are_ignored() -> None:
    conn = established(config(sack=True), options=TcpOptions(mss=MSS, sack_permitted=True), window=BIG)
    conn.send(data(4 * M))
    recv(conn)
    bogus = TcpOptions(sack_blocks=((ISS + 1 + 10 * M, ISS + 1 + 20 * M), (ISS - 5000, ISS)))
    send(conn, ack_of(0, options=bogus))
    assert not conn.scoreboard


def test_established_rto_skips_sacked_segments() -> None:
    # the RTO path itself: without the tail loss probe that would otherwise fire first
    conn = established(config(sack=True, tail_loss_probe=False), options=TcpOptions(mss=MSS, sack_permitted=True),
                       window=BIG)  # fmt: skip
    conn.send(data(4 * M))
    recv(conn)
    send(conn, ack_of(0, options=sack_blocks((1, 3))))
    _, segments = next_tick(conn)
    assert starts(segments) == [0]
    send(conn, ack_of(M), now=T0 + 1)
    assert starts(recv(conn, T0 + 1)) == [3 * M]  # 1 and 2 are held by the peer


def test_established_tail_loss_probe_resends_the_last_segment_before_the_rto() -> None:
    # RFC 8985 §7: the last segments are lost, no dupacks can come: after 2 SRTT the last segment
    # is resent (drawing a SACK that starts recovery), long before the RTO
    conn = established(config(sack=True), options=TcpOptions(mss=MSS, sack_permitted=True), window=BIG)
    conn.rtt.sample(0.01)  # SRTT 10 ms
    conn.send(data(4 * M))
    recv(conn)
    deadline = conn.next_deadline()
    assert deadline is not None and deadline < T0 + conn.rtt.rto
    assert starts(tick(conn, deadline)) == [3 * M]
    assert conn.tail_loss_probes == 1 and conn.timeouts == 0


# ---------------------------------------------------------------------------- congestion window


def test_established_slow_start_grows_cwnd_by_one_segment_per_ack() -> None:
    conn = established(window=BIG)
    conn.send(data(40 * M))
    assert len(recv(conn)) == 10
    send(conn, ack_of(M))
    assert conn.cwnd == 11 * M
    assert starts(recv(conn)) == [10 * M, 11 * M]  # one freed, one grown
    send(conn, ack_of(3 * M))  # two segments at once: still one MSS (RFC 5681 §3.1, L = 1)
    assert conn.cwnd == 12 * M
    assert len(recv(conn)) == 3


def test_established_congestion_avoidance_grows_about_one_segment_per_rtt() -> None:
    conn = established(window=BIG)
    conn.send(data(40 * M))
    recv(conn)
    conn.ssthresh = conn.cwnd
    cwnd = conn.cwnd
    send(conn, ack_of(M))
    assert conn.cwnd == cwnd + M * M // cwnd  # RFC 5681 (3)
    for k in range(2, 11):
        send(conn, ack_of(k * M))
    assert cwnd + M - 200 < conn.cwnd < cwnd + M + 1


def test_established_cwnd_not_grown_by_duplicate_acks() -> None:
    conn = established(window=BIG)
    conn.send(data(4 * M))
    recv(conn)
    cwnd = conn.cwnd
    send(conn, ack_of(0))
    send(conn, ack_of(0))
    assert conn.cwnd == cwnd
