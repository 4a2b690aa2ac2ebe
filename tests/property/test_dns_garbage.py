"""Hypothesis properties of the DNS codec and resolver on hostile input.

* ``parse_response`` given random octets, pointer-heavy junk or mutated valid responses
  returns a message or raises ``MalformedPacket``, never anything else, and every name it
  returns fits RFC 1035's limits.
* ``Resolver.receive_datagram`` given the same (from the right server and port, with the
  right ID patched in, or not) never raises: each datagram is counted as a drop or ends the
  lookup with a well-formed result, and the resolver stays consistent.
* Random sequences of lookups, timer ticks and responses keep the resolver's invariants.
"""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack.dns import DnsError, LookupResult, Resolver, ResolverConfig
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.dns import DnsMessage, encode_name, parse_response

S1 = bytes([10, 0, 0, 53])
S2 = bytes([10, 0, 0, 54])

# a compressed response for www.example.com: CNAME example.com, two A records (see test_dns_wire)
VALID = bytes.fromhex(
    "1234 8180 0001 0003 0000 0000"
    "03 777777 07 6578616d706c65 03 636f6d 00 0001 0001"
    "c00c 0005 0001 0000012c 0002 c010"
    "c02d 0001 0001 0000003c 0004 5db8d822"
    "c010 0001 0001 0000003c 0004 0a000001"
)
# NXDOMAIN with an SOA in the authority section
NEGATIVE = bytes.fromhex(
    "1234 8183 0001 0000 0001 0000"
    "03 777777 07 6578616d706c65 03 636f6d 00 0001 0001"
    "c010 0006 0001 00000384 0020 026e73 c010 0561646d696e c010"
    "00000001 00001c20 00000384 00015180 0000003c"
)
SEEDS = [VALID, NEGATIVE]

# octets that mean something in names: pointers, label lengths at the limits, the root label
interesting = st.sampled_from([0x00, 0x01, 0x03, 0x0C, 0x10, 0x3F, 0x40, 0x80, 0xBF, 0xC0, 0xC1, 0xFF])
junk = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(interesting, st.integers(0, 255)), max_size=300).map(bytes),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[position] = draw(st.one_of(interesting, st.integers(0, 255)))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[position:]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


anything = st.one_of(junk, mutated())


def check_name(name: str) -> None:
    if name == ".":
        return
    assert all(0x21 <= ord(c) <= 0x7E for c in name)
    labels = name.split(".")
    assert all(labels)
    # each \DDD escape stands for one octet
    octets = sum(len(label) - 3 * label.count("\\") for label in labels) + len(labels) + 1
    assert octets <= 255


def check_message(message: DnsMessage) -> None:
    for question in message.questions:
        check_name(question.name)
    for record in (*message.answers, *message.authority, *message.additional):
        check_name(record.name)
        assert 0 <= record.ttl <= 0xFFFFFFFF
        if record.rtype == 5:
            assert isinstance(record.data, str)
            check_name(record.data)
        elif record.rtype == 1 and record.rclass == 1:
            assert isinstance(record.data, bytes) and len(record.data) == 4


@settings(max_examples=1000)
@given(anything)
def test_parse_response_only_raises_malformed(data: bytes) -> None:
    try:
        message = parse_response(data)
    except MalformedPacket as exc:
        assert isinstance(exc.reason, DropReason)
        return
    check_message(message)


def check_result(result: LookupResult) -> None:
    if result.error is None:
        assert result.addresses and all(len(a) == 4 for a in result.addresses)
    else:
        assert isinstance(result.error, DnsError) and result.addresses == ()
    assert 0.0 <= result.ttl <= 3600.0


def patch_id(payload: bytes, query: bytes) -> bytes:
    return query[:2] + payload[2:] if len(payload) >= 2 else payload


@settings(max_examples=500)
@given(
    st.lists(st.tuples(anything, st.booleans(), st.sampled_from([S1, S2]), st.sampled_from([53, 53, 1053])), max_size=8)
)
def test_receive_datagram_never_raises(datagrams: list[tuple[bytes, bool, bytes, int]]) -> None:
    resolver = Resolver(random.Random(0), ResolverConfig(), [S1, S2])
    handle = resolver.lookup("www.example.com", 0.0)
    [(_, _, query)] = resolver.datagrams_to_send()
    for count, (payload, right_id, src, port) in enumerate(datagrams, start=1):
        before = sum(resolver.drops.values())
        resolver.receive_datagram(src, port, patch_id(payload, query) if right_id else payload, 0.1)
        done = resolver.result(handle)
        # each datagram is either dropped and counted, or moves the lookup on
        assert sum(resolver.drops.values()) <= before + 1
        assert sum(resolver.drops.values()) + (done is not None) + len(resolver.datagrams_to_send()) >= 1
        if done is not None:
            check_result(done)
            assert resolver.pending == 0 and resolver.next_deadline() is None
        assert sum(resolver.drops.values()) <= count


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.just("lookup"), st.sampled_from(["a.example", "B.example", "www.example.com", "1.2.3.4", "x..y"])
            ),
            st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
            st.tuples(st.just("answer"), st.integers(0, 7), anything),
            st.tuples(st.just("reply"), st.integers(0, 7), st.sampled_from([0, 2, 3, 5]), st.booleans()),
        ),
        max_size=30,
    )
)
def test_random_event_sequences_keep_invariants(events: list[tuple[object, ...]]) -> None:
    resolver = Resolver(random.Random(3), ResolverConfig(max_pending=3, cache_size=2), [S1, S2])
    now = 0.0
    in_flight: list[tuple[bytes, bytes]] = []
    handles: set[int] = set()
    finished: set[int] = set()
    for event in events:
        kind = event[0]
        if kind == "lookup":
            assert isinstance(event[1], str)
            handles.add(resolver.lookup(event[1], now))
        elif kind == "tick":
            assert isinstance(event[1], float)
            now += event[1]
            resolver.on_timer(now)
        elif in_flight:
            index = event[1]
            assert isinstance(index, int)
            server, query = in_flight[index % len(in_flight)]
            if kind == "answer":
                assert isinstance(event[2], bytes)
                resolver.receive_datagram(server, 53, patch_id(event[2], query), now)
            else:
                rcode, with_answer = event[2], event[3]
                assert isinstance(rcode, int)
                resolver.receive_datagram(server, 53, reply(query, rcode, bool(with_answer)), now)
        for server, port, payload in resolver.datagrams_to_send():
            assert port == 53 and server in (S1, S2)
            check_message(parse_response(payload))
            in_flight.append((server, payload))
        while (result := resolver.next_result()) is not None:
            check_result(result)
            assert result.handle in handles and result.handle not in finished
            finished.add(result.handle)
        deadline = resolver.next_deadline()
        assert (deadline is None) == (resolver.pending == 0)
        if deadline is not None:
            assert deadline > now
        assert resolver.pending <= 3
    # with time running on, every lookup ends
    for _ in range(20):
        deadline = resolver.next_deadline()
        if deadline is None:
            break
        resolver.on_timer(deadline)
    while (result := resolver.next_result()) is not None:
        finished.add(result.handle)
    assert finished == handles


def reply(query: bytes, rcode: int, with_answer: bool) -> bytes:
    """A well-formed response to ``query``: an A record, or a CNAME to a name in the test set."""
    question = query[12:]
    name_end = question.index(b"\0") + 1 if b"\0" in question else len(question)
    owner = question[:name_end]
    if with_answer:
        rdata = bytes([192, 0, 2, 7])
        answer = owner + struct.pack("!HHIH", 1, 1, 60, 4) + rdata
    else:
        target = encode_name("a.example")
        answer = owner + struct.pack("!HHIH", 5, 1, 60, len(target)) + target
    flags = 0x8180 | rcode
    return query[:2] + struct.pack("!HHHHH", flags, 1, 1, 0, 0) + question + answer
