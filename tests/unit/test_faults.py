"""The seeded fault injector (wipstack.drivers.faults): statistics, rate limiting, determinism, the port."""

from __future__ import annotations

import math
import os
import random
import socket
import time

import pytest

from tests.unit.net.helpers import echo, host, parse_icmp
from wipstack.drivers.faults import (
    MAX_REORDER_HOLD,
    FaultConfig,
    FaultInjector,
    FaultyTunPort,
    GilbertElliott,
    parse_faults,
)
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.pcap import Direction
from wipstack.drivers.ports import TunPort
from wipstack.wire.icmp import IcmpRepr, IcmpType

N = 20_000


def packets(n: int, seed: int = 0) -> list[bytes]:
    """``n`` distinct datagrams of varied sizes (the index in the first 4 octets)."""
    rng = random.Random(seed)
    return [i.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 200)) for i in range(n)]


def index(packet: bytes) -> int:
    return int.from_bytes(packet[:4], "big")


def run(config: FaultConfig, sent: list[bytes], *, seed: int = 1, spacing: float = 0.001) -> list[tuple[float, bytes]]:
    """Push ``sent`` every ``spacing`` seconds; return (delivery time, datagram), all drained."""
    injector = FaultInjector(config, random.Random(seed))
    out: list[tuple[float, bytes]] = []
    now = 0.0
    for packet in sent:
        out += [(now, p) for p in injector.pop_ready(now)]
        injector.push(packet, now)
        out += [(now, p) for p in injector.pop_ready(now)]
        now += spacing
    while (deadline := injector.next_deadline()) is not None:
        out += [(deadline, p) for p in injector.pop_ready(deadline)]
    assert injector.in_flight == 0
    return out


def within(measured: float, expected: float, n: int, sigmas: float = 5.0) -> bool:
    """``measured`` share is within ``sigmas`` binomial standard deviations of ``expected``."""
    return abs(measured - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n) + 1e-12


# --------------------------------------------------------------------------- a clean wire


def test_zero_config_passes_everything_unchanged_in_order_at_once() -> None:
    injector = FaultInjector(FaultConfig(), random.Random(7))
    sent = packets(2000)
    now = 0.0
    for packet in sent:
        injector.push(packet, now)
        [out] = injector.pop_ready(now)
        assert out is packet
        assert injector.next_deadline() is None
        now += 0.0001
    assert FaultConfig().is_clean
    assert injector.counters["pushed"] == injector.counters["passed"] == injector.counters["delivered"] == 2000
    assert all(injector.counters[k] == 0 for k in ("lost", "queue_drops", "duplicated", "reordered", "corrupted"))


def test_zero_config_in_a_burst_keeps_order() -> None:
    injector = FaultInjector(FaultConfig(), random.Random(7))
    sent = packets(500)
    for packet in sent:
        injector.push(packet, 1.0)
    assert injector.pop_ready(1.0) == sent


def test_zero_config_draws_no_randomness() -> None:
    rng = random.Random(3)
    state = rng.getstate()
    injector = FaultInjector(FaultConfig(), rng)
    for packet in packets(100):
        injector.push(packet, 0.0)
    assert rng.getstate() == state


# --------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("p", [0.01, 0.05, 0.3])
def test_loss_rate_matches(p: float) -> None:
    out = run(FaultConfig(loss=p), packets(N))
    lost = N - len(out)
    assert within(lost / N, p, N)
    assert [index(x) for _, x in out] == sorted(index(x) for _, x in out)  # loss never reorders


def test_duplicate_rate_matches_and_copies_follow_the_original() -> None:
    config = FaultConfig(duplicate=0.05)
    injector = FaultInjector(config, random.Random(2))
    delivered: list[bytes] = []
    for packet in packets(N):
        injector.push(packet, 0.0)
        delivered += injector.pop_ready(0.0)
    extra = len(delivered) - N
    assert extra == injector.counters["duplicated"]
    assert within(extra / N, 0.05, N)
    indices = [index(p) for p in delivered]
    assert indices == sorted(indices)  # a copy is delivered right behind its original
    assert sorted(set(indices)) == list(range(N))


def test_corrupt_rate_matches_and_flips_exactly_one_bit() -> None:
    sent = [bytes(64) for _ in range(N)]
    out = run(FaultConfig(corrupt=0.1), sent)
    assert len(out) == N
    damaged = [p for _, p in out if p != bytes(64)]
    assert within(len(damaged) / N, 0.1, N)
    assert all(len(p) == 64 and sum(bin(b).count("1") for b in p) == 1 for p in damaged)
    positions = {next(i for i, b in enumerate(p) if b) for p in damaged}
    assert len(positions) > 50  # the bit is anywhere in the datagram


def test_corrupt_leaves_the_pushed_object_alone() -> None:
    injector = FaultInjector(FaultConfig(corrupt=1.0), random.Random(1))
    original = bytes(range(40))
    injector.push(original, 0.0)
    [out] = injector.pop_ready(0.0)
    assert original == bytes(range(40)) and out != original
    assert injector.counters["corrupted"] == 1


def test_reorder_rate_and_each_held_packet_comes_after_its_successor() -> None:
    sent = packets(N)
    out = run(FaultConfig(reorder=0.05), sent, seed=4)
    assert sorted(index(p) for _, p in out) == list(range(N))  # nothing lost
    order = [index(p) for _, p in out]
    late = sum(1 for i in range(1, len(order)) if order[i] < order[i - 1])  # descents: held packets
    assert within(late / N, 0.05 * 0.95, N)  # consecutive held packets form one descent
    position = {v: i for i, v in enumerate(order)}
    displaced = [v for v in range(N - 1) if position[v] > position[v + 1]]
    assert displaced and all(position[v] - position[v + 1] <= 8 for v in displaced)  # shallow: behind the next


def test_reorder_with_a_delay_holds_back_by_that_delay() -> None:
    injector = FaultInjector(FaultConfig(reorder=1.0, reorder_delay=0.25, delay=0.01), random.Random(1))
    injector.push(b"late", 1.0)
    assert injector.next_deadline() == pytest.approx(1.26)
    assert injector.pop_ready(1.25) == []
    assert injector.pop_ready(1.26) == [b"late"]
    assert injector.counters["reordered"] == 1


def test_a_held_packet_without_successor_is_released_after_the_hold() -> None:
    injector = FaultInjector(FaultConfig(reorder=1.0), random.Random(1))
    injector.push(b"alone", 2.0)
    assert injector.pop_ready(2.0) == []
    assert injector.next_deadline() == pytest.approx(2.0 + MAX_REORDER_HOLD)
    assert injector.pop_ready(2.0 + MAX_REORDER_HOLD) == [b"alone"]
    assert injector.next_deadline() is None


def test_gilbert_elliott_burst_loss_statistics() -> None:
    burst = GilbertElliott(p_good_to_bad=0.02, p_bad_to_good=0.25, loss_in_bad=1.0)
    n = 100_000
    injector = FaultInjector(FaultConfig(burst_loss=burst), random.Random(9))
    outcome = []
    for i in range(n):
        before = injector.counters["lost"]
        injector.push(i.to_bytes(4, "big"), 0.0)
        outcome.append(injector.counters["lost"] > before)
    injector.pop_ready(0.0)
    rate = sum(outcome) / n
    assert rate == pytest.approx(burst.bad_share, rel=0.15)
    runs: list[int] = []
    length = 0
    for lost in outcome:
        if lost:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    assert sum(runs) / len(runs) == pytest.approx(1 / burst.p_bad_to_good, rel=0.15)  # mean burst 4


def test_gilbert_elliott_good_state_uses_loss() -> None:
    config = FaultConfig(loss=0.1, burst_loss=GilbertElliott(0.0, 1.0))  # never bad
    out = run(config, packets(N))
    assert within((N - len(out)) / N, 0.1, N)


# --------------------------------------------------------------------------- delay, jitter, rate


def test_fixed_delay() -> None:
    injector = FaultInjector(FaultConfig(delay=0.05), random.Random(1))
    injector.push(b"a", 1.0)
    injector.push(b"b", 1.01)
    assert injector.next_deadline() == pytest.approx(1.05)
    assert injector.pop_ready(1.049) == []
    assert injector.pop_ready(1.05) == [b"a"]
    assert injector.pop_ready(2.0) == [b"b"]


def test_jitter_spreads_delays_but_never_reorders() -> None:
    sent = packets(5000)
    spacing = 0.001
    out = run(FaultConfig(delay=0.02, jitter=0.01), sent, spacing=spacing)
    assert [index(p) for _, p in out] == list(range(5000))
    delays = []
    injector = FaultInjector(FaultConfig(delay=0.02, jitter=0.01), random.Random(5))
    for i, packet in enumerate(sent):
        injector.push(packet, i * 1.0)  # far apart: no clamping
        deadline = injector.next_deadline()
        assert deadline is not None
        delays.append(deadline - i * 1.0)
        assert injector.pop_ready(deadline) == [packet]
    assert min(delays) >= 0.02 and max(delays) < 0.03
    assert max(delays) - min(delays) > 0.009  # the whole range is used


def test_rate_limit_serialises_by_size() -> None:
    rate = 80_000.0  # 10 000 octets per second
    injector = FaultInjector(FaultConfig(rate_bps=rate, delay=0.5), random.Random(1))
    for i in range(10):
        injector.push(bytes([i]) * 1000, 0.0)  # 0.1 s each on the wire
    due = []
    while (deadline := injector.next_deadline()) is not None:
        got = injector.pop_ready(deadline)
        due += [(deadline, p[0]) for p in got]
    assert [i for _, i in due] == list(range(10))
    for k, (t, _) in enumerate(due):
        assert t == pytest.approx(0.5 + (k + 1) * 1000 * 8 / rate)


def test_rate_limit_after_an_idle_gap_starts_afresh() -> None:
    injector = FaultInjector(FaultConfig(rate_bps=8000.0), random.Random(1))
    injector.push(b"x" * 100, 0.0)  # 0.1 s
    injector.push(b"y" * 50, 10.0)  # link idle: leaves at 10.05
    assert injector.pop_ready(0.1) == [b"x" * 100]
    assert injector.next_deadline() == pytest.approx(10.05)


def test_queue_limit_tail_drops_and_counts() -> None:
    injector = FaultInjector(FaultConfig(rate_bps=8000.0, queue_limit=5), random.Random(1))
    for _ in range(12):
        injector.push(b"z" * 100, 0.0)  # 0.1 s each
    assert injector.counters["queue_drops"] == 7
    assert injector.counters["passed"] == 5
    assert injector.queued == 5
    # two have left by t=0.2: two more fit
    for _ in range(3):
        injector.push(b"z" * 100, 0.2)
    assert injector.counters["passed"] == 7 and injector.counters["queue_drops"] == 8
    delivered = []
    while (deadline := injector.next_deadline()) is not None:
        delivered += injector.pop_ready(deadline)
    assert len(delivered) == 7
    assert deadline is None


def test_rate_and_queue_hold_throughput_to_the_rate() -> None:
    rate = 1_000_000.0
    injector = FaultInjector(FaultConfig(rate_bps=rate, queue_limit=50), random.Random(1))
    size, now, total = 1000, 0.0, 0
    for _ in range(20_000):  # offered at 2 Mbit/s
        injector.push(bytes(size), now)
        total += len(injector.pop_ready(now)) * size
        now += size * 8 / (2 * rate)
    achieved = total * 8 / now
    assert achieved == pytest.approx(rate, rel=0.01)
    assert injector.counters["queue_drops"] == pytest.approx(10_000, rel=0.02)


# --------------------------------------------------------------------------- determinism


ALL = FaultConfig(
    loss=0.05, duplicate=0.02, reorder=0.05, corrupt=0.02, delay=0.01, jitter=0.005, rate_bps=2e6, queue_limit=20
)


def test_same_seed_same_everything() -> None:
    sent = packets(3000)
    first = run(ALL, sent, seed=11, spacing=0.0005)
    second = run(ALL, sent, seed=11, spacing=0.0005)
    assert first == second
    third = run(ALL, sent, seed=12, spacing=0.0005)
    assert third != first


def test_counters_add_up() -> None:
    injector = FaultInjector(ALL, random.Random(3))
    now = 0.0
    for packet in packets(5000):
        injector.push(packet, now)
        injector.pop_ready(now)
        now += 0.0002  # ~4 Mbit/s offered to a 2 Mbit/s link
    while (deadline := injector.next_deadline()) is not None:
        injector.pop_ready(deadline)
    c = injector.counters
    assert c["pushed"] == c["passed"] + c["lost"] + c["queue_drops"]
    assert c["delivered"] == c["passed"] + c["duplicated"]
    assert all(c[k] > 0 for k in ("lost", "queue_drops", "duplicated", "reordered", "corrupted"))


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": -0.1},
        {"loss": 1.5},
        {"duplicate": math.nan},
        {"delay": -1.0},
        {"jitter": math.inf},
        {"rate_bps": -5.0},
        {"queue_limit": 0},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_burst_config_is_refused() -> None:
    with pytest.raises(ValueError):
        GilbertElliott(0.1, 0.0)
    with pytest.raises(ValueError):
        GilbertElliott(0.1, 0.5, 2.0)


def test_parse_faults_example() -> None:
    config = parse_faults("loss=0.05,dup=0.01,reorder=0.02,corrupt=0.01,delay=0.05,rate=80000")
    assert config == FaultConfig(loss=0.05, duplicate=0.01, reorder=0.02, corrupt=0.01, delay=0.05, rate_bps=80000)


def test_parse_faults_units_and_burst() -> None:
    config = parse_faults(" loss=5% , delay=50ms, jitter=500us, rate=2M, queue=64, burst=0.01:0.25:0.9 ")
    assert config.loss == pytest.approx(0.05)
    assert config.delay == pytest.approx(0.05) and config.jitter == pytest.approx(0.0005)
    assert config.rate_bps == 2e6 and config.queue_limit == 64
    assert config.burst_loss == GilbertElliott(0.01, 0.25, 0.9)
    assert parse_faults("rate=80kbit").rate_bps == 80_000
    assert parse_faults("reorder=0.1,reorder_delay=0.2s").reorder_delay == pytest.approx(0.2)


@pytest.mark.parametrize("spec", ["", "none", "off"])
def test_parse_faults_clean(spec: str) -> None:
    assert parse_faults(spec) == FaultConfig()
    assert parse_faults(spec).is_clean


@pytest.mark.parametrize(
    "spec",
    [
        "loss",
        "bogus=1",
        "loss=abc",
        "loss=2",
        "delay=5 parsecs",
        "loss=0.1,loss=0.2",
        "queue=1.5",
        "burst=0.1",
        "rate=-5",
    ],
)
def test_parse_faults_errors(spec: str) -> None:
    with pytest.raises(ValueError, match="--faults"):
        parse_faults(spec)


def test_describe_round_trips() -> None:
    config = FaultConfig(loss=0.05, duplicate=0.01, delay=0.02, rate_bps=1e6, queue_limit=64,
                         burst_loss=GilbertElliott(0.01, 0.3, 0.8))  # fmt: skip
    assert parse_faults(config.describe()) == config
    assert FaultConfig().describe() == "none"
    assert not config.is_clean


# --------------------------------------------------------------------------- the loop's port


class FakeDevice:
    """What TunPort uses of a TunDevice: datagrams in a list both ways."""

    def __init__(self) -> None:
        self.incoming: list[bytes] = []
        self.written: list[bytes] = []
        self.closed = False

    def fileno(self) -> int:
        return 99

    def read_packet(self) -> bytes | None:
        return self.incoming.pop(0) if self.incoming else None

    def write_packet(self, packet: bytes) -> bool:
        self.written.append(packet)
        return True

    def close(self) -> None:
        self.closed = True


def faulty_port(
    inbound: FaultConfig, outbound: FaultConfig
) -> tuple[FaultyTunPort, FakeDevice, list[tuple[Direction, bytes]]]:
    stack, iface = host("10.0.0.1", peer="10.0.0.2", prefix_len=32)
    device = FakeDevice()
    captured: list[tuple[Direction, bytes]] = []
    tun = TunPort(stack, iface, device, tap=lambda d, p: captured.append((d, bytes(p))))  # type: ignore[arg-type]
    port = FaultyTunPort.wrap(tun, inbound, outbound, seed=1)
    return port, device, captured


def test_port_delays_both_directions_and_delivers_inbound_at_the_timer() -> None:
    port, device, captured = faulty_port(FaultConfig(delay=0.1), FaultConfig(delay=0.2))
    request = echo("10.0.0.2", "10.0.0.1", 0x1234, 1, b"hello")
    device.incoming.append(request)
    port.on_readable(99, 1.0)
    assert port.port.stack.datagrams_in == 0  # still on the wire
    assert port.next_deadline() == pytest.approx(1.1)
    port.on_timer(1.1)
    assert port.port.stack.datagrams_in == 1
    port.flush(1.1)  # the loop flushes after timers: the reply enters the outbound injector
    assert device.written == []
    assert port.next_deadline() == pytest.approx(1.3)
    port.on_timer(1.3)
    [reply] = device.written
    _, icmp = parse_icmp(reply)
    assert icmp == IcmpRepr.echo(0x1234, 1, b"hello", reply=True)
    assert captured == [(Direction.INBOUND, request), (Direction.OUTBOUND, reply)]  # the wire side
    assert port.next_deadline() is None
    port.close()
    assert device.closed


def test_port_loses_inbound_and_outbound() -> None:
    port, device, _ = faulty_port(FaultConfig(loss=1.0), FaultConfig())
    device.incoming.append(echo("10.0.0.2", "10.0.0.1", 1, 1))
    port.on_readable(99, 0.0)
    port.on_timer(0.0)
    assert port.port.stack.datagrams_in == 0 and port.inbound.counters["lost"] == 1

    port, device, _ = faulty_port(FaultConfig(), FaultConfig(loss=1.0))
    device.incoming.append(echo("10.0.0.2", "10.0.0.1", 1, 1))
    port.on_readable(99, 0.0)
    port.flush(0.0)
    assert port.port.stack.datagrams_in == 1 and device.written == []
    assert port.outbound.counters["lost"] == 1


def test_port_clean_is_transparent() -> None:
    port, device, _ = faulty_port(FaultConfig(), FaultConfig())
    for seq in range(5):
        device.incoming.append(echo("10.0.0.2", "10.0.0.1", 7, seq))
    port.on_readable(99, 0.0)
    port.flush(0.0)
    assert [parse_icmp(p)[1].rest & 0xFFFF for p in device.written] == list(range(5))
    assert port.next_deadline() is None


class DatagramDevice:
    """A TunDevice stand-in over a SOCK_DGRAM socketpair (one datagram per read/write)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_packet(self) -> bytes | None:
        try:
            return self.sock.recv(65535)
        except BlockingIOError:
            return None

    def write_packet(self, packet: bytes) -> bool:
        self.sock.send(packet)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


@pytest.mark.skipif(not hasattr(socket, "socketpair") or os.name != "posix", reason="needs AF_UNIX socketpair")
def test_port_in_a_real_netloop_honours_the_delay() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    theirs.settimeout(5.0)
    stack, iface = host("10.0.0.1", peer="10.0.0.2", prefix_len=32)
    device = DatagramDevice(ours)
    port = FaultyTunPort.wrap(TunPort(stack, iface, device), FaultConfig(delay=0.05), FaultConfig(delay=0.05))  # type: ignore[arg-type]
    with NetLoop(stack) as loop:
        loop.add_port(port)
        loop.start()
        started = time.monotonic()
        theirs.send(echo("10.0.0.2", "10.0.0.1", 0x4242, 9, b"ping"))
        reply = theirs.recv(65535)
        elapsed = time.monotonic() - started
    theirs.close()
    header, icmp = parse_icmp(reply)
    assert icmp.type == IcmpType.ECHO_REPLY and icmp.rest == (0x4242 << 16) | 9
    assert 0.1 <= elapsed < 2.0
