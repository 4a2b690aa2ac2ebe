"""Hypothesis properties of IPv4 reassembly.

* Any order of the fragments of any UDP datagram (0 to 65507 data octets, MTU 576 to 9000),
  with exact duplicates sprinkled in, reassembles to the original exactly once.
* Under a flood of random fragments (thousands, random keys, offsets, lengths, flags and
  clock jumps) the reassembler never holds more datagrams or octets than its caps, at every
  step, and its octet accounting covers every buffer it really holds.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.net.helpers import host, ip, payload_of, split, udp
from wipstack.errors import MalformedPacket
from wipstack.net.reassembly import Reassembler
from wipstack.wire.ipv4 import Ipv4Repr

US, PEER = "10.0.0.1", "10.0.0.2"
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.one_of(st.integers(0, 3000), st.integers(3000, 65507), st.sampled_from([65507, 65506, 1472, 1473]))
mtus = st.one_of(st.sampled_from([576, 1006, 1280, 1500, 4352, 9000]), st.integers(576, 9000))


@SETTINGS
@given(size=sizes, mtu=mtus, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_any_order_with_duplicates_reassembles_once(size: int, mtu: int, seed: int, data: st.DataObject) -> None:
    payload = payload_of(size, seed)
    chunk = (mtu - 20) & ~7
    pieces = split(udp(PEER, US, 5000, 7000, payload, ident=seed & 0xFFFF), chunk)
    order = data.draw(st.permutations(range(len(pieces))), label="order")
    arrival = [pieces[i] for i in order]
    if len(arrival) > 1:
        # exact duplicates of anything but the completing fragment, all before it
        duplicates = data.draw(st.lists(st.integers(0, len(arrival) - 2), max_size=8), label="duplicates")
        for index in duplicates:
            position = data.draw(st.integers(index + 1, len(arrival) - 1), label="position")
            arrival.insert(position, arrival[index])
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    for packet in arrival:
        stack.receive(iface, packet, 0.0)
    assert sock.recvfrom() == (payload, (ip(PEER), 5000))
    assert sock.recvfrom() is None
    assert stack.counters()["reassembled"] == (1 if len(pieces) > 1 else 0)
    assert sum(stack.reassembler.drops.values()) == len(arrival) - len(pieces)
    assert not stack.drops
    assert stack.reassembler.datagrams_held == 0 and stack.reassembler.bytes_held == 0


@pytest.mark.parametrize("seed", range(3))
def test_largest_datagram_in_the_smallest_fragments_any_order(seed: int) -> None:
    # 65507 octets at MTU 576: 119 fragments, up to 60 disjoint ranges before the last one lands
    payload = payload_of(65507, seed)
    pieces = split(udp(PEER, US, 5000, 7000, payload, ident=seed), 552)
    assert len(pieces) == 119
    order = pieces[::-1] if seed == 0 else random.Random(seed).sample(pieces, len(pieces))
    if seed == 2:  # odd pieces first, then even: the most ranges held at once
        order = pieces[1::2] + pieces[0::2]
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    for packet in order:
        stack.receive(iface, packet, 0.0)
    assert sock.recvfrom() == (payload, (ip(PEER), 5000))


def random_fragment(rng: random.Random, keys: int) -> bytes:
    """A fragment of one of ``keys`` datagrams, with plausible or wild fields."""
    ident = rng.randrange(keys)
    protocol = rng.choice([17, 17, 1, 99])
    kind = rng.random()
    if kind < 0.4:  # a plausible piece of a 1480-octet-chunked datagram
        offset = rng.randrange(0, 45) * 1480
        length = 1480 if rng.random() < 0.8 else rng.randrange(0, 1481) & ~7
    elif kind < 0.7:  # anywhere
        offset = rng.randrange(0, 8192) * 8
        length = rng.randrange(0, 2000) & ~7
    else:  # small and dense: many ranges
        offset = rng.randrange(0, 512) * 8
        length = rng.choice([0, 8, 16, 24])
    length = max(0, min(length, 65535 - offset)) & ~7
    more = rng.random() < 0.8
    if not more and rng.random() < 0.5:
        length = min(length + rng.randrange(1, 8), 65535 - offset)  # the last may be odd-sized
    src = ip(rng.choice([PEER, "10.0.0.3"]))
    header = Ipv4Repr(src, ip(US), protocol, identification=ident, more_fragments=more, fragment_offset=offset)
    return header.emit(bytes([ident & 0xFF]) * length)


def assert_bounded(reassembler: Reassembler) -> None:
    assert reassembler.datagrams_held <= reassembler.max_datagrams
    assert reassembler.bytes_held <= reassembler.max_bytes
    pending = reassembler._pending  # private: checking the accounting against the buffers
    assert reassembler.bytes_held == sum(p.extent for p in pending.values())
    for p in pending.values():
        ranges = p.assembler.ranges()
        assert not ranges or ranges[-1][1] <= p.extent
        assert len(ranges) <= reassembler.max_fragments


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    max_datagrams=st.integers(1, 8),
    max_bytes=st.sampled_from([1500, 20_000, 70_000, 256 * 1024]),
    max_fragments=st.integers(1, 64),
    keys=st.integers(1, 40),
)
def test_flood_never_exceeds_the_caps(
    seed: int, max_datagrams: int, max_bytes: int, max_fragments: int, keys: int
) -> None:
    rng = random.Random(seed)
    reassembler = Reassembler(
        timeout=30.0, max_datagrams=max_datagrams, max_bytes=max_bytes, max_fragments=max_fragments
    )
    now = 0.0
    for _ in range(2000):
        packet = random_fragment(rng, keys)
        try:
            header, payload = Ipv4Repr.parse(packet)
        except MalformedPacket:
            continue
        result = reassembler.add(header, payload, packet, now)
        if result is not None:
            whole, data = result
            assert not whole.more_fragments and whole.fragment_offset == 0
            assert len(data) <= 65515
        assert_bounded(reassembler)
        if rng.random() < 0.02:
            now += rng.choice([1.0, 10.0, 29.0, 31.0])
            reassembler.expire(now)
            assert_bounded(reassembler)
            deadline = reassembler.next_deadline()
            assert deadline is None or deadline > now


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_flood_through_the_stack_stays_bounded(seed: int) -> None:
    rng = random.Random(seed)
    stack, iface = host(US, max_reassembly_datagrams=4, max_reassembly_bytes=100_000, fragment_timeout=5.0)
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    now = 0.0
    for step in range(3000):
        stack.receive(iface, random_fragment(rng, 16), now)
        assert stack.reassembler.datagrams_held <= 4
        assert stack.reassembler.bytes_held <= 100_000
        if step % 100 == 99:
            now += 1.0
            stack.on_timer(now)
        assert len(iface.output) <= iface.max_queue
        iface.take_output()
    assert sock.pending <= stack.config.udp_receive_queue
