"""Hypothesis properties of IPv4 fragmentation on output (RFC 791 §3.2).

For any payload, MTU (68 to 9000) and options, ``fragment`` yields pieces that fit the MTU,
sit at multiples of 8 with More-Fragments on all but the last, carry all options in the first
and only the copied ones after it, and tile the original payload exactly; and a datagram a
stack sends through such an MTU is reassembled by another stack whatever order the pieces
arrive in.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.net.helpers import host, ip, parse, payload_of
from wipstack.net.fragment import copied_options, fragment
from wipstack.wire.ipv4 import Ipv4Repr

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

option = st.one_of(
    st.just(b"\x01"),  # NOP
    st.just(b"\x94\x04\x00\x00"),  # Router Alert, copied
    st.binary(min_size=0, max_size=6).map(lambda b: bytes([0x07, 2 + len(b)]) + b),  # Record Route, not copied
    st.binary(min_size=0, max_size=6).map(lambda b: bytes([0x82, 2 + len(b)]) + b),  # Security, copied
)
options = st.lists(option, max_size=8).map(b"".join).filter(lambda o: len(o) <= 40)


@SETTINGS
@given(
    size=st.integers(0, 12000),
    mtu=st.integers(68, 9000),
    opts=options,
    more=st.booleans(),
    base=st.integers(0, 2000).map(lambda n: n * 8),
)
def test_fragment_pieces_fit_and_tile_the_payload(size: int, mtu: int, opts: bytes, more: bool, base: int) -> None:
    if more:
        size &= ~7  # this is itself a non-final fragment: a multiple of 8 octets
    data = payload_of(size, size)
    header = Ipv4Repr(ip("10.0.0.1"), ip("10.0.0.2"), 17, 9, 0, 0x1234, False, more, base, opts)
    if header.header_len + size + base > 65535:
        return  # not a datagram the stack could hold
    pieces = fragment(header, data, mtu)
    rebuilt = bytearray()
    padded_copied = copied_options(opts)
    padded_copied += bytes(-len(padded_copied) % 4)
    for index, piece in enumerate(pieces):
        h, payload = Ipv4Repr.parse(piece)
        assert len(piece) <= mtu
        assert h.fragment_offset == base + len(rebuilt)
        last = index == len(pieces) - 1
        assert h.more_fragments == (more or not last)
        if not last:
            assert len(payload) % 8 == 0 and len(payload) > 0
        expected = opts + bytes(-len(opts) % 4) if index == 0 else padded_copied
        assert h.options == expected
        assert (h.identification, h.ttl, h.protocol, h.src, h.dst) == (0x1234, 9, 17, header.src, header.dst)
        rebuilt += payload
    assert rebuilt == data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 30000), mtu=st.integers(68, 9000), seed=st.integers(0, 2**32 - 1))
def test_a_stack_reassembles_what_another_fragments(size: int, mtu: int, seed: int) -> None:
    if (size + 8) // ((mtu - 20) & ~7) >= 120:
        # shuffled, n pieces can need n/2 disjoint ranges: stay under the 64 the reassembler allows
        mtu = 576
    sender, out = host("10.0.0.1", mtu=mtu, seed=seed)
    receiver, into = host("10.0.0.2", mtu=mtu)
    server = receiver.udp_socket()
    server.bind("10.0.0.2", 9)
    data = payload_of(size, seed)
    client = sender.udp_socket()
    client.bind("10.0.0.1", 4000)
    client.sendto(data, "10.0.0.2", 9)
    pieces = out.take_output()
    assert all(len(p) <= mtu for p in pieces)
    assert len({parse(p)[0].identification for p in pieces}) == 1
    random.Random(seed).shuffle(pieces)
    for piece in pieces:
        receiver.receive(into, piece, 0.0)
    assert server.recvfrom() == (data, (ip("10.0.0.1"), 4000))
