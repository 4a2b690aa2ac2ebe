"""IPv4 reassembly (RFC 791 §3.2, RFC 1122 §3.3.2) with RFC 5722 overlap handling and hard bounds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.unit.net.helpers import host, ip, ipv4, parse, parse_icmp, payload_of, split, udp
from wipstack.errors import DropReason
from wipstack.net import Interface, Stack, StackConfig
from wipstack.net.reassembly import Reassembler
from wipstack.net.udp import UdpSocket
from wipstack.wire.icmp import IcmpType, TimeExceededCode
from wipstack.wire.ipv4 import Ipv4Repr

US, PEER = "10.0.0.1", "10.0.0.2"
DATA = payload_of(5000, seed=3)


def fragments(
    data: bytes = DATA, chunk: int = 1480, ident: int = 0x4242, port: int = 7000, **kw: object
) -> list[bytes]:
    return split(udp(PEER, US, 5000, port, data, ident=ident, **kw), chunk)  # type: ignore[arg-type]


def listening(**config: Any) -> tuple[Stack, Interface, UdpSocket]:
    stack, iface = host(US, **config)
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    return stack, iface, sock


def feed(stack: Stack, iface: Interface, packets: list[bytes], now: float = 0.0) -> None:
    for packet in packets:
        stack.receive(iface, packet, now)


# ------------------------------------------------------------------ whole datagrams


@pytest.mark.parametrize("order", ["in-order", "reverse", "middle-first", "last-first", "shuffled"])
def test_fragments_in_any_order_reassemble(order: str) -> None:
    pieces = fragments()
    assert len(pieces) == 4
    arranged = {
        "in-order": pieces,
        "reverse": pieces[::-1],
        "middle-first": [pieces[2], pieces[1], pieces[3], pieces[0]],
        "last-first": [pieces[3], *pieces[:3]],
        "shuffled": random.Random(5).sample(pieces, len(pieces)),
    }[order]
    stack, iface, sock = listening()
    feed(stack, iface, arranged)
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))
    assert sock.recvfrom() is None
    counters = stack.counters()
    assert counters["reassembled"] == 1 and counters["delivered"] == 1
    assert not stack.drops and not stack.reassembler.drops
    assert stack.reassembler.datagrams_held == 0 and stack.reassembler.bytes_held == 0
    assert stack.next_deadline() is None


def test_reassembled_header_comes_from_the_first_fragment() -> None:
    reassembler = Reassembler(timeout=30.0, max_datagrams=4, max_bytes=1 << 20, max_fragments=16)
    packet = ipv4(PEER, US, 99, DATA, ttl=7, tos=0x20, ident=9, options=b"\x94\x04\x00\x00")
    pieces = split(packet, 1000)
    result = None
    for piece in pieces[::-1]:
        header, payload = Ipv4Repr.parse(piece)
        result = reassembler.add(header, payload, piece, 0.0)
    assert result is not None
    whole, data = result
    assert data == DATA
    assert whole == Ipv4Repr(ip(PEER), ip(US), 99, 7, 0x20, 9, False, False, 0, b"\x94\x04\x00\x00")
    assert reassembler.completed == 1


def test_exact_duplicates_are_tolerated() -> None:
    pieces = fragments()
    stack, iface, sock = listening()
    feed(stack, iface, [pieces[0], pieces[0], pieces[2], pieces[1], pieces[2], pieces[0], pieces[3]])
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))
    assert sum(stack.reassembler.drops.values()) == 3  # each duplicate dropped, the datagram lives
    assert stack.counters()["reassembled"] == 1


def test_duplicate_of_the_last_fragment_is_tolerated() -> None:
    pieces = fragments()
    stack, iface, sock = listening()
    feed(stack, iface, [pieces[3], pieces[3], pieces[1], pieces[0], pieces[2]])
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))


def test_different_keys_do_not_mix() -> None:
    a = fragments(DATA, ident=1)
    b = fragments(DATA[::-1], ident=2)
    c = split(udp("10.0.0.3", US, 5000, 7000, b"third" * 400, ident=1), 1480)  # same ID, other source
    stack, iface, sock = listening()
    feed(stack, iface, [x for trio in zip(a, b, c + [b"", b""], strict=False) for x in trio if x])
    got = [sock.recvfrom() for _ in range(3)]
    assert sorted(d for d, _ in got) == sorted([DATA, DATA[::-1], b"third" * 400])  # type: ignore[misc]
    assert stack.counters()["reassembled"] == 3


def test_a_fragmented_datagram_may_reuse_its_id_after_completion() -> None:
    stack, iface, sock = listening()
    feed(stack, iface, fragments(ident=7))
    feed(stack, iface, fragments(DATA[:3000], ident=7))
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))
    assert sock.recvfrom() == (DATA[:3000], (ip(PEER), 5000))


# --------------------------------------------------------------------- RFC 5722


def raw_fragment(offset: int, length: int, more: bool, ident: int = 5) -> tuple[Ipv4Repr, memoryview, bytes]:
    raw = Ipv4Repr(ip(PEER), ip(US), 99, identification=ident, more_fragments=more, fragment_offset=offset).emit(
        bytes(length)
    )
    header, payload = Ipv4Repr.parse(raw)
    return header, payload, raw


def test_overlap_kills_the_datagram_and_its_later_fragments() -> None:
    packet = udp(PEER, US, 5000, 7000, DATA, ident=0x99)
    pieces = split(packet, 1480)
    header, payload = parse(packet)
    overlapping = Ipv4Repr(header.src, header.dst, 17, identification=0x99, more_fragments=True, fragment_offset=1000)
    stack, iface, sock = listening(fragment_timeout=30.0)
    feed(stack, iface, [pieces[0], overlapping.emit(payload[1000:1800])], now=1.0)
    assert stack.reassembler.drops[DropReason.REASSEMBLY_OVERLAP] == 1
    assert stack.reassembler.bytes_held == 0  # the data is freed at once
    feed(stack, iface, pieces, now=2.0)  # even every genuine fragment: the key is poisoned
    assert sock.recvfrom() is None
    assert stack.counters()["drop_reassembly_overlap"] == 1 + len(pieces)
    assert stack.counters()["reassembled"] == 0
    # the poisoned key lives until its deadline, then leaves without a Time Exceeded
    assert stack.next_deadline() == 31.0
    stack.on_timer(31.0)
    assert iface.take_output() == []
    assert stack.reassembler.datagrams_held == 0
    assert stack.reassembler.drops[DropReason.REASSEMBLY_TIMEOUT] == 0
    # a fresh copy after that reassembles
    feed(stack, iface, pieces, now=32.0)
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))


@pytest.mark.parametrize(
    "second",
    [
        (0, 8, True),  # a shorter copy of the start
        (0, 16, True),  # a longer copy of the start
        (8, 8, True),  # inside the first
        (8, 16, False),  # straddles the end of the first, then is the last
        (1472, 16, True),  # straddles the boundary between pieces
    ],
)
def test_partial_overlaps_poison(second: tuple[int, int, bool]) -> None:
    reassembler = Reassembler(timeout=30.0, max_datagrams=4, max_bytes=1 << 20, max_fragments=16)

    def add(offset: int, length: int, more: bool) -> object:
        return reassembler.add(*raw_fragment(offset, length, more), 0.0)

    add(0, 1480, True)
    add(1480, 1480, True)
    assert add(*second) is None
    assert reassembler.drops[DropReason.REASSEMBLY_OVERLAP] == 1
    assert reassembler.bytes_held == 0
    assert add(2960, 8, False) is None  # the rest is discarded too
    assert reassembler.drops[DropReason.REASSEMBLY_OVERLAP] == 2
    assert reassembler.completed == 0


@pytest.mark.parametrize(
    "sequence",
    [
        [(16, 8, False), (24, 8, False)],  # two different ends
        [(16, 8, False), (24, 8, True)],  # data past the end
        [(16, 8, True), (0, 8, False)],  # an end before data already received
    ],
    ids=["two-ends", "past-the-end", "end-before-data"],
)
def test_inconsistent_ends_poison(sequence: list[tuple[int, int, bool]]) -> None:
    reassembler = Reassembler(timeout=30.0, max_datagrams=4, max_bytes=1 << 20, max_fragments=16)
    for fragment in sequence:
        assert reassembler.add(*raw_fragment(*fragment), 0.0) is None
    assert reassembler.drops == {DropReason.REASSEMBLY_OVERLAP: 1}
    assert reassembler.add(*raw_fragment(0, 16, True), 0.0) is None
    assert reassembler.drops == {DropReason.REASSEMBLY_OVERLAP: 2}


# ------------------------------------------------------------------------- timeout


def test_timeout_follows_stack_config_and_sends_time_exceeded_when_fragment_zero_arrived() -> None:
    pieces = fragments()
    stack, iface, sock = listening(fragment_timeout=5.0)
    feed(stack, iface, [pieces[0], pieces[2]], now=10.0)
    assert stack.next_deadline() == 15.0
    stack.on_timer(14.999)
    assert iface.take_output() == [] and stack.reassembler.datagrams_held == 1
    stack.on_timer(15.0)
    [error] = iface.take_output()
    header, icmp = parse_icmp(error)
    assert (icmp.type, icmp.code) == (IcmpType.TIME_EXCEEDED, TimeExceededCode.REASSEMBLY_TIMEOUT)
    assert header.src == ip(US) and header.dst == ip(PEER)
    assert icmp.payload == pieces[0][:28]  # the first fragment's header and 8 data octets
    assert stack.reassembler.drops[DropReason.REASSEMBLY_TIMEOUT] == 1
    assert stack.counters()["drop_reassembly_timeout"] == 1
    assert stack.reassembler.datagrams_held == 0 and stack.reassembler.bytes_held == 0
    assert stack.next_deadline() is None
    # the late rest does not resurrect it
    feed(stack, iface, pieces[1:], now=16.0)
    assert sock.recvfrom() is None


def test_timeout_without_fragment_zero_sends_nothing() -> None:
    pieces = fragments()
    stack, iface, _ = listening(fragment_timeout=5.0)
    feed(stack, iface, pieces[1:], now=0.0)
    stack.on_timer(5.0)
    assert iface.take_output() == []
    assert stack.counters()["drop_reassembly_timeout"] == 1


def test_deadline_runs_from_the_first_fragment() -> None:
    pieces = fragments()
    stack, iface, sock = listening(fragment_timeout=5.0)
    stack.receive(iface, pieces[1], 0.0)
    stack.receive(iface, pieces[2], 4.0)  # later fragments do not extend it
    assert stack.next_deadline() == 5.0
    stack.on_timer(5.0)
    feed(stack, iface, [pieces[0], pieces[3]], now=5.5)
    assert sock.recvfrom() is None


def test_default_fragment_timeout_is_sixty_seconds() -> None:
    stack, iface, _ = listening()
    stack.receive(iface, fragments()[0], 100.0)
    assert stack.next_deadline() == 160.0


def test_set_config_changes_the_timeout_of_new_datagrams() -> None:
    stack, iface, _ = listening()
    stack.set_config(StackConfig(fragment_timeout=2.0))
    stack.receive(iface, fragments()[0], 1.0)
    assert stack.next_deadline() == 3.0


def test_time_exceeded_is_rate_limited_like_every_error() -> None:
    stack, iface, _ = listening(fragment_timeout=1.0, icmp_error_burst=2, icmp_error_rate=0.001)
    for ident in range(3):
        stack.receive(iface, fragments(ident=ident)[0], 0.0)
    stack.on_timer(1.0)
    assert len(iface.take_output()) == 2
    assert stack.drops[DropReason.RATE_LIMITED] == 1


# ---------------------------------------------------------------------- hard bounds


def test_datagram_cap_evicts_the_oldest() -> None:
    stack, iface, sock = listening(max_reassembly_datagrams=2, fragment_timeout=30.0)
    for ident in range(5):
        stack.receive(iface, fragments(ident=ident)[0], float(ident))
        assert stack.reassembler.datagrams_held <= 2
    assert stack.reassembler.datagrams_held == 2
    assert stack.counters()["drop_reassembly_limit"] == 3  # datagrams 0, 1 and 2, oldest first
    # the two newest still complete, which frees their slots
    feed(stack, iface, fragments(ident=3)[1:] + fragments(ident=4)[1:], now=5.0)
    assert sock.pending == 2
    assert stack.reassembler.datagrams_held == 0
    # an evicted one lost its first fragment: the rest alone never completes
    feed(stack, iface, fragments(ident=0)[1:], now=6.0)
    assert sock.pending == 2
    feed(stack, iface, fragments(ident=0)[:1], now=6.0)  # until that fragment comes again
    assert sock.pending == 3


def test_poisoned_datagrams_are_evicted_first() -> None:
    reassembler = Reassembler(timeout=30.0, max_datagrams=2, max_bytes=1 << 20, max_fragments=16)
    reassembler.add(*raw_fragment(8, 8, True, ident=1), 0.0)  # the oldest, healthy
    reassembler.add(*raw_fragment(0, 16, True, ident=2), 1.0)
    reassembler.add(*raw_fragment(8, 16, True, ident=2), 1.0)  # overlap: poisoned
    reassembler.add(*raw_fragment(0, 8, True, ident=3), 2.0)  # full: the poisoned one goes
    assert reassembler.drops == {DropReason.REASSEMBLY_OVERLAP: 1, DropReason.REASSEMBLY_LIMIT: 1}
    assert reassembler.add(*raw_fragment(0, 8, True, ident=1), 3.0) is None
    result = reassembler.add(*raw_fragment(16, 8, False, ident=1), 3.0)
    assert result is not None and result[1] == bytes(24)  # the healthy oldest survived


def test_forged_fragments_cannot_block_reassembly() -> None:
    stack, iface, sock = listening(fragment_timeout=60.0)
    for ident in range(100, 100 + 3 * stack.config.max_reassembly_datagrams):
        stack.receive(iface, ipv4("10.0.0.66", US, 17, bytes(8), ident=ident, mf=True, offset=800), 0.0)
    assert stack.reassembler.datagrams_held == stack.config.max_reassembly_datagrams
    feed(stack, iface, fragments(ident=1), now=1.0)
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))


def test_byte_cap_evicts_the_oldest_other_datagram() -> None:
    stack, iface, sock = listening(max_reassembly_bytes=7000)
    first = fragments(ident=1)
    second = fragments(ident=2)
    feed(stack, iface, first[:3], now=0.0)  # 4440 octets spanned
    assert stack.reassembler.bytes_held == 4440
    feed(stack, iface, second[:1], now=1.0)  # 5920: fits
    assert stack.reassembler.bytes_held == 5920
    feed(stack, iface, second[1:2], now=1.0)  # 7400 would pass the cap: the first datagram goes
    assert stack.reassembler.bytes_held == 2960
    assert stack.reassembler.datagrams_held == 1
    assert stack.counters()["drop_reassembly_limit"] == 1
    feed(stack, iface, second[2:], now=1.0)
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))
    feed(stack, iface, first[3:], now=1.0)  # the evicted one's tail alone does not complete
    assert sock.recvfrom() is None
    assert stack.reassembler.bytes_held <= 7000


def test_a_lone_far_fragment_counts_the_whole_span_it_occupies() -> None:
    reassembler = Reassembler(timeout=30.0, max_datagrams=8, max_bytes=65536, max_fragments=64)
    assert reassembler.add(*raw_fragment(60000, 8, True, ident=1), 0.0) is None
    assert reassembler.bytes_held == 60008
    assert reassembler.add(*raw_fragment(60000, 8, True, ident=2), 1.0) is None  # evicts the first
    assert reassembler.drops == {DropReason.REASSEMBLY_LIMIT: 1}
    assert reassembler.bytes_held == 60008 and reassembler.datagrams_held == 1


def test_a_fragment_larger_than_the_byte_cap_evicts_nothing() -> None:
    reassembler = Reassembler(timeout=30.0, max_datagrams=8, max_bytes=20_000, max_fragments=64)
    for ident in range(3):
        reassembler.add(*raw_fragment(0, 1480, True, ident=ident), 0.0)
    assert reassembler.add(*raw_fragment(30_000, 8, True, ident=9), 1.0) is None  # spans 30008 > 20000
    assert reassembler.datagrams_held >= 3  # the three honest datagrams are still there
    assert reassembler.bytes_held == 3 * 1480


@pytest.mark.parametrize("cap", [0, -1])
def test_reassembly_cap_of_zero_or_less_never_raises(cap: int) -> None:
    try:
        config = StackConfig(max_reassembly_datagrams=cap)
    except ValueError:
        return  # refusing the configuration is a fine answer too
    stack = Stack(random.Random(0), config)
    iface = stack.add_interface(Interface("eth0", ip(US), prefix_len=24))
    feed(stack, iface, fragments())  # raised ValueError: min() arg is an empty sequence
    assert stack.reassembler.datagrams_held <= max(cap, 0) + 1


def test_fragment_range_cap() -> None:
    stack, iface, sock = listening(max_fragments_per_datagram=3)
    pieces = split(udp(PEER, US, 5000, 7000, DATA, ident=3), 504)  # 10 pieces
    feed(stack, iface, pieces[0:1] + pieces[2:3] + pieces[4:5])  # three disjoint ranges
    feed(stack, iface, pieces[6:7])  # a fourth would be needed: refused
    assert stack.counters()["drop_reassembly_limit"] == 1
    feed(stack, iface, [p for i, p in enumerate(pieces) if i not in (0, 2, 4, 6)])
    assert sock.recvfrom() is None  # piece 6 was lost
    feed(stack, iface, pieces[6:7])
    assert sock.recvfrom() == (DATA, (ip(PEER), 5000))


def test_fragments_reaching_past_the_largest_datagram_never_complete() -> None:
    # "ping of death": data up to octet 65528 behind a 20-octet header is a 65548-octet datagram
    stack, iface, sock = listening(fragment_timeout=5.0)
    first = ipv4(PEER, US, 17, bytes(1480), ident=66, mf=True)
    last = ipv4(PEER, US, 17, bytes(16), ident=66, offset=65512)
    stack.receive(iface, first, 0.0)
    stack.receive(iface, last, 0.0)
    assert sock.recvfrom() is None
    assert stack.reassembler.bytes_held <= stack.config.max_reassembly_bytes
    stack.on_timer(5.0)
    assert stack.reassembler.datagrams_held == 0


@pytest.mark.parametrize("protocol", [17, 99])
def test_reassembled_datagram_over_65535_octets_is_dropped_without_an_exception(protocol: int) -> None:
    stack, iface = host(US)
    options = b"\x01\x01\x01\x01"  # 4 octets of NOP: the whole datagram would be 65539 octets
    data = bytes(65515)
    if protocol == 17:  # a UDP datagram to a closed port with no checksum, 65515 octets long
        data = (5000).to_bytes(2, "big") + (9).to_bytes(2, "big") + (65515).to_bytes(2, "big") + bytes(65509)
    first = ipv4(PEER, US, protocol, data[:65000], ident=77, mf=True, options=options)
    last = ipv4(PEER, US, protocol, data[65000:], ident=77, offset=65000)
    stack.receive(iface, first, 0.0)
    stack.receive(iface, last, 0.0)  # raised ValueError: IPv4 datagram of 65539 octets exceeds 65535
    assert stack.counters()["delivered"] == 0
    # the key stays poisoned until its timeout (later fragments are discarded) and holds nothing
    assert stack.reassembler.bytes_held == 0
