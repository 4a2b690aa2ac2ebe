"""Receive batches: in-order data segments of one connection merge into one (like Linux GRO).

The merge must be invisible except in cost: a batch gives the same byte stream, sequence
state and connection state as the same segments one by one, whatever the mix of in-order,
duplicate, out-of-order, FIN-carrying and option-changing segments.
"""

from __future__ import annotations

import random

import pytest

from tests.unit.tcp.helpers import ACK, FIN, PSH, SYN, S, tcp_datagram, tcp_host, tcp_output
from wipstack.net import Interface, Stack
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.events import PeerClosed
from wipstack.wire.tcp import TcpFlags, TcpOptions, TcpRepr

US, PEER = "10.0.0.1", "10.0.0.2"
MASK = 0xFFFFFFFF
IRS = 7_000
SPORT = 40_000


def connected(stack: Stack, iface: Interface, sport: int = SPORT, irs: int = IRS) -> tuple[TcpConnection, int]:
    """An accepted connection from PEER:sport (timestamps on); returns it and our ISS."""
    listener = stack.tcp.listen(80) if (b"\0\0\0\0", 80) not in stack.tcp._listeners else None
    options = TcpOptions(mss=1460, window_scale=7, sack_permitted=True, timestamps=(1, 0))
    stack.receive(iface, tcp_datagram(PEER, US, TcpRepr(sport, 80, irs, 0, SYN, 65535, 0, options)), 0.0)
    [(_, synack, _)] = tcp_output(iface)
    ack = TcpRepr(sport, 80, irs + 1, (synack.seq + 1) & MASK, ACK, 65535, 0, TcpOptions(timestamps=(2, 1)))
    stack.receive(iface, tcp_datagram(PEER, US, ack), 0.0)
    conn = stack.tcp._connections[(iface.address, 80, bytes([10, 0, 0, 2]), sport)]
    del listener
    return conn, synack.seq


def data_segment(sport: int, seq: int, iss: int, payload: bytes, *, ts: int = 5, flags: TcpFlags = ACK | PSH,
                 window: int = 65535) -> bytes:  # fmt: skip
    repr_ = TcpRepr(sport, 80, seq & MASK, (iss + 1) & MASK, flags, window, 0, TcpOptions(timestamps=(ts, 1)))
    return tcp_datagram(PEER, US, repr_, payload)


def count_arrivals(conn: TcpConnection, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the ``segments`` count of every SEGMENT ARRIVES call on ``conn``."""
    calls: list[int] = []
    original = conn.segment_arrives

    def spy(seg: TcpRepr, payload: memoryview, now: float, segments: int = 1) -> None:
        calls.append(segments)
        original(seg, payload, now, segments)

    monkeypatch.setattr(conn, "segment_arrives", spy)
    return calls


def test_in_order_burst_is_one_arrival_and_one_ack(monkeypatch: pytest.MonkeyPatch) -> None:
    stack, iface = tcp_host(US)
    conn, iss = connected(stack, iface)
    calls = count_arrivals(conn, monkeypatch)
    chunks = [bytes([i]) * 1000 for i in range(10)]
    seq = IRS + 1
    batch = []
    for chunk in chunks:
        batch.append(data_segment(SPORT, seq, iss, chunk))
        seq += len(chunk)
    stack.receive_batch(iface, batch, 1.0)
    assert calls == [10]
    assert conn.recv(1 << 20) == b"".join(chunks)
    acks = tcp_output(iface)
    assert len(acks) == 1 and acks[0][1].ack == seq & MASK


def test_a_changed_timestamp_starts_a_new_run(monkeypatch: pytest.MonkeyPatch) -> None:
    stack, iface = tcp_host(US)
    conn, iss = connected(stack, iface)
    calls = count_arrivals(conn, monkeypatch)
    seq = IRS + 1
    batch = []
    for i in range(6):
        batch.append(data_segment(SPORT, seq + 100 * i, iss, bytes(100), ts=5 + i // 3))
    stack.receive_batch(iface, batch, 1.0)
    assert calls == [3, 3]
    assert conn.rcv_nxt == seq + 600


def test_fin_and_out_of_order_segments_go_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    stack, iface = tcp_host(US)
    conn, iss = connected(stack, iface)
    calls = count_arrivals(conn, monkeypatch)
    seq = IRS + 1
    batch = [
        data_segment(SPORT, seq, iss, b"a" * 10),
        data_segment(SPORT, seq + 20, iss, b"c" * 10),  # a hole: held run ends, this one goes alone
        data_segment(SPORT, seq + 10, iss, b"b" * 10),  # fills it
        data_segment(SPORT, seq + 30, iss, b"d" * 10, flags=ACK | FIN),
    ]
    stack.receive_batch(iface, batch, 1.0)
    assert conn.recv(100) == b"a" * 10 + b"b" * 10 + b"c" * 10 + b"d" * 10
    assert conn.state == S.CLOSE_WAIT
    assert any(isinstance(e, PeerClosed) for e in iter(conn.next_event, None))
    assert sum(calls) == 4


def test_runs_of_two_connections_stay_apart() -> None:
    stack, iface = tcp_host(US)
    one, iss_one = connected(stack, iface, SPORT, IRS)
    two, iss_two = connected(stack, iface, SPORT + 1, 90_000)
    batch = []
    for i in range(8):
        batch.append(data_segment(SPORT, IRS + 1 + 50 * i, iss_one, bytes([i]) * 50))
        batch.append(data_segment(SPORT + 1, 90_001 + 30 * i, iss_two, bytes([100 + i]) * 30))
    stack.receive_batch(iface, batch, 1.0)
    assert one.recv(1000) == b"".join(bytes([i]) * 50 for i in range(8))
    assert two.recv(1000) == b"".join(bytes([100 + i]) * 30 for i in range(8))


@pytest.mark.parametrize("seed", range(40))
def test_a_batch_ends_where_the_same_segments_one_by_one_end(seed: int) -> None:
    """Differential: random in-order, duplicate, reordered, window-overrunning and FIN segments."""
    rng = random.Random(seed)
    stream = rng.randbytes(rng.randrange(1, 400_000))
    segments: list[tuple[int, bytes, int, TcpFlags]] = []  # (offset, data, ts, flags)
    offset, ts = 0, 5
    while offset < len(stream):
        size = min(rng.choice((1, 100, 1448, 1448, 1448)), len(stream) - offset)
        ts += rng.random() < 0.2
        last = offset + size == len(stream)
        flags = ACK | FIN if last and rng.random() < 0.5 else ACK | (PSH if rng.random() < 0.3 else TcpFlags(0))
        segments.append((offset, stream[offset : offset + size], ts, flags))
        if rng.random() < 0.05:
            segments.append(segments[-1])  # a duplicate
        offset += size
    for _ in range(len(segments) // 20):
        i = rng.randrange(len(segments) - 1)
        segments[i], segments[i + 1] = segments[i + 1], segments[i]  # reordering

    def run(batched: bool) -> tuple[bytes, int, S]:
        stack, iface = tcp_host(US)
        conn, iss = connected(stack, iface)
        received = bytearray()
        now = 1.0
        packets = [data_segment(SPORT, IRS + 1 + off, iss, chunk, ts=t, flags=f) for off, chunk, t, f in segments]
        for start in range(0, len(packets), 64):
            now += 0.001
            if batched:
                stack.receive_batch(iface, packets[start : start + 64], now)
            else:
                for packet in packets[start : start + 64]:
                    stack.receive(iface, packet, now)
            received += conn.recv(1 << 22)
            stack.tcp.flush(now)  # the reads open the window
            iface.take_output()
        return bytes(received), conn.rcv_nxt, conn.state

    batched, one_by_one = run(True), run(False)
    assert batched == one_by_one
    assert stream.startswith(batched[0])
