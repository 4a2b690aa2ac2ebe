"""ICMP (RFC 792, RFC 1122 §3.2.2): echo, ping sessions, errors we send and errors we receive."""

from __future__ import annotations

import random

import pytest

from tests.unit.net.helpers import (
    ICMP,
    echo,
    host,
    icmp_messages,
    ip,
    ipv4,
    join,
    parse,
    parse_icmp,
    routed,
    split,
    two_hosts,
    udp,
)
from wipstack.errors import DropReason
from wipstack.net.icmp import PingConfig, PingReply, PingSession, TokenBucket
from wipstack.net.stack import describe_icmp_error
from wipstack.net.udp import SocketError
from wipstack.wire.icmp import IcmpRepr, IcmpType, TimeExceededCode, UnreachableCode
from wipstack.wire.ipv4 import Ipv4Repr

US, PEER = "10.0.0.1", "10.0.0.2"

# ---------------------------------------------------------------------------- echo


def test_echo_request_is_answered() -> None:
    stack, iface = host(US)
    stack.receive(iface, echo(PEER, US, 0xBEEF, 7, b"abcdefgh", tos=0x10, ttl=3), 0.0)
    [reply] = iface.take_output()
    header, icmp = parse_icmp(reply)
    assert (header.src, header.dst) == (ip(US), ip(PEER))
    assert header.ttl == 64 and header.tos == 0x10
    assert icmp == IcmpRepr.echo(0xBEEF, 7, b"abcdefgh", reply=True)
    assert stack.counters()["echo_replies_out"] == 1
    assert stack.counters()["icmp_errors_out"] == 0


@pytest.mark.parametrize("size", [0, 56, 1472, 4000, 65000])
def test_ping_between_two_stacks_fragmented_both_ways(size: int) -> None:
    net, a, a_if, b, b_if = two_hosts(latency=0.005)
    session = a.ping(PEER, PingConfig(count=1, size=size, timeout=2.0), 0.0)
    net.run_until(5.0)
    [result] = session.results
    assert result is not None and result.error is None
    assert result.sequence == 0 and result.size == size
    assert result.rtt == pytest.approx(0.01)
    assert result.ttl == 64
    requests, replies = net.sent_by("a0"), net.sent_by("b0")
    fragmented = 28 + size > 1500
    assert (len(requests) > 1) == fragmented and (len(replies) > 1) == fragmented
    assert all(len(p) <= 1500 for p in requests + replies)
    assert b.counters()["echo_replies_out"] == 1
    assert b.counters()["reassembled"] == a.counters()["reassembled"] == int(fragmented)
    assert session.done and a.next_deadline() is None


def test_ping_of_the_largest_size() -> None:
    net, a, _, _, _ = two_hosts()
    session = a.ping(PEER, PingConfig(count=1, size=65507), 0.0)
    net.run_until(1.0)
    assert session.results[0] is not None and session.results[0].rtt == 0.0


@pytest.mark.parametrize("dst", ["255.255.255.255", "10.0.0.255"])
def test_echo_to_a_broadcast_address_is_not_answered(dst: str) -> None:
    stack, iface = host(US)
    stack.receive(iface, echo(PEER, dst, 1, 1, b"smurf"), 0.0)
    assert iface.take_output() == []
    assert stack.counters()["echo_replies_out"] == 0


def test_echo_reply_and_unknown_types_are_not_answered() -> None:
    stack, iface = host(US)
    stack.receive(iface, ipv4(PEER, US, ICMP, IcmpRepr.echo(1, 1, reply=True).emit()), 0.0)
    stack.receive(iface, ipv4(PEER, US, ICMP, IcmpRepr(42, 0, 0, b"??").emit()), 0.0)
    stack.receive(iface, ipv4(PEER, US, ICMP, IcmpRepr(IcmpType.TIMESTAMP, 0, 0, bytes(12)).emit()), 0.0)
    assert iface.take_output() == []


def test_fragmented_echo_request_reply_quotes_everything() -> None:
    stack, iface = host(US)
    data = bytes(range(256)) * 10
    for piece in split(echo(PEER, US, 5, 6, data), 1480)[::-1]:
        stack.receive(iface, piece, 0.0)
    replies = iface.take_output()
    assert len(replies) == 2
    header, payload = join(replies)
    assert IcmpRepr.parse(payload) == IcmpRepr.echo(5, 6, data, reply=True)


# ------------------------------------------------------------------------- ping


def test_ping_session_count_interval_and_rtt_from_the_injected_times() -> None:
    net, a, _, _, _ = two_hosts(latency=0.005)
    session = a.ping(PEER, PingConfig(count=4, interval=1.0, timeout=0.5, size=56), 100.0)
    net.now = 100.0
    net.run_until(110.0)
    results = session.results
    assert [r.sequence for r in results if r] == [0, 1, 2, 3]
    assert [r.sent_at for r in results if r] == [100.0, 101.0, 102.0, 103.0]
    for r in results:
        assert r is not None and r.rtt == pytest.approx(0.01) and r.ttl == 64 and r.size == 56
        assert not r.timed_out and r.error is None
    order = []
    while (reply := session.next_reply()) is not None:
        order.append(reply.sequence)
    assert order == [0, 1, 2, 3]
    requests = [parse_icmp(p)[1] for p in net.sent_by("a0")]
    assert [r.echo_seq for r in requests] == [0, 1, 2, 3]
    assert {r.echo_ident for r in requests} == {session.identifier}
    assert all(r.payload == session.payload and len(r.payload) == 56 for r in requests)


def test_ping_interval_zero_sends_everything_at_once() -> None:
    stack, iface = host(US)
    stack.ping(PEER, PingConfig(count=3, interval=0.0), 0.0)
    assert len(iface.take_output()) == 3


def test_ping_timeouts_are_reported_with_rtt_none() -> None:
    net, a, _, _, _ = two_hosts(latency=0.001)
    net.drop = lambda sender, packet: sender == "b0" and parse_icmp(packet)[1].echo_seq == 1
    session = a.ping(PEER, PingConfig(count=3, interval=1.0, timeout=0.5), 0.0)
    net.run_until(1.2)
    assert session.results[1] is None  # not yet: its timeout is at 1.5
    net.run_until(1.5)
    lost = session.results[1]
    assert lost is not None
    assert lost == PingReply(1, 1.0, None)
    assert lost.timed_out and lost.error is None
    net.run_until(10.0)
    assert [r is not None and r.timed_out for r in session.results] == [False, True, False]


def test_ping_reply_after_the_timeout_is_ignored() -> None:
    net, a, _, _, _ = two_hosts(latency=0.6)
    session = a.ping(PEER, PingConfig(count=1, timeout=1.0), 0.0)
    net.run_until(5.0)
    assert session.results == [PingReply(0, 0.0, None)]


def test_ping_next_deadline() -> None:
    stack, _ = host(US)
    session = stack.ping(PEER, PingConfig(count=2, interval=2.0, timeout=0.5), 10.0)
    assert session.next_deadline() == 10.5
    assert stack.next_deadline() == 10.5
    stack.on_timer(10.5)
    assert session.results[0] == PingReply(0, 10.0, None)
    assert stack.next_deadline() == 12.0
    stack.on_timer(12.0)
    assert stack.next_deadline() == 12.5
    stack.on_timer(12.5)
    assert session.done
    assert stack.next_deadline() is None and stack.pings == []


def test_ping_ttl_exceeded_is_reported_as_an_error() -> None:
    topo = routed()
    session = topo.a.ping("10.0.2.2", PingConfig(count=2, interval=1.0, ttl=1), 0.0)
    topo.net.run_until(5.0)
    [request, _] = topo.net.sent_by("a0")
    assert parse(request)[0].ttl == 1
    for r in session.results:
        assert r is not None and r.rtt is None and r.timed_out
        assert r.error == "time to live exceeded from 10.0.1.1"
    assert topo.b.counters()["echo_replies_out"] == 0


def test_ping_ttl_just_enough_arrives_with_the_routers_decrement() -> None:
    topo = routed(latency=0.001)
    session = topo.a.ping("10.0.2.2", PingConfig(count=1, ttl=2), 0.0)
    topo.net.run_until(5.0)
    result = session.results[0]
    assert result is not None and result.rtt == pytest.approx(0.004)
    assert result.ttl == 63  # B answers with TTL 64, the router takes one


def test_ping_unreachable_is_reported_as_an_error() -> None:
    topo = routed()
    session = topo.a.ping("192.0.2.9", PingConfig(count=1), 0.0)
    topo.net.run_until(5.0)
    assert session.results == [PingReply(0, 0.0, None, None, 0, "network unreachable from 10.0.1.1")]


def test_ping_without_a_route_is_refused() -> None:
    stack, _ = host(US)
    with pytest.raises(SocketError) as info:
        stack.ping("192.0.2.1", PingConfig(), 0.0)
    assert info.value.errno_name == "ENETUNREACH"


def test_ping_that_cannot_be_sent_reports_no_route() -> None:
    stack, iface = host(US)
    session = stack.ping(PEER, PingConfig(count=2, interval=1.0), 0.0)
    iface.up = False
    stack.on_timer(1.0)
    assert session.results[1] == PingReply(1, 1.0, None, None, 0, "no route to host")


def test_ping_ignores_replies_that_are_not_its_own() -> None:
    stack, iface = host(US)
    session = stack.ping(PEER, PingConfig(count=1, size=8, timeout=5.0), 0.0)
    [request] = iface.take_output()
    ident = parse_icmp(request)[1].echo_ident
    assert ident == session.identifier
    wrong = [
        IcmpRepr.echo(ident ^ 1, 0, session.payload, reply=True),  # another identifier
        IcmpRepr.echo(ident, 1, session.payload, reply=True),  # a sequence never sent
        IcmpRepr.echo(ident, 0, b"\0" * 8, reply=True),  # corrupted data
    ]  # fmt: skip
    for message in wrong:
        stack.receive(iface, ipv4(PEER, US, ICMP, message.emit()), 0.5)
    stack.receive(iface, ipv4("10.0.0.3", US, ICMP, IcmpRepr.echo(ident, 0, session.payload, reply=True).emit()), 0.5)
    assert session.results == [None]
    stack.receive(iface, ipv4(PEER, US, ICMP, IcmpRepr.echo(ident, 0, session.payload, reply=True).emit(), ttl=9), 0.75)
    assert session.results == [PingReply(0, 0.0, 0.75, 9, 8)]
    stack.receive(iface, ipv4(PEER, US, ICMP, IcmpRepr.echo(ident, 0, session.payload, reply=True).emit()), 0.8)
    assert session.next_reply() == PingReply(0, 0.0, 0.75, 9, 8) and session.next_reply() is None


@pytest.mark.parametrize(
    "kwargs",
    [{"count": 0}, {"interval": -1.0}, {"timeout": 0.0}, {"size": -1}, {"size": 65508}, {"ttl": 0}, {"ttl": 256}],
)
def test_ping_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PingConfig(**kwargs)  # type: ignore[arg-type]


def test_ping_session_identifier_from_the_rng() -> None:
    one = PingSession(ip(PEER), PingConfig(), random.Random(4), 0.0)
    two = PingSession(ip(PEER), PingConfig(), random.Random(4), 0.0)
    assert one.identifier == two.identifier == random.Random(4).getrandbits(16)


# ---------------------------------------------------------------- errors we send


def test_port_unreachable_for_a_closed_udp_port() -> None:
    stack, iface = host(US)
    packet = udp(PEER, US, 5000, 9, b"anyone there?")
    stack.receive(iface, packet, 0.0)
    [error] = iface.take_output()
    header, icmp = parse_icmp(error)
    assert (icmp.type, icmp.code) == (IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT)
    assert (header.src, header.dst) == (ip(US), ip(PEER))
    assert icmp.rest == 0
    assert icmp.payload == packet[:28]  # RFC 792: the header and the first 64 data bits
    assert stack.drops == {DropReason.PORT_UNREACHABLE: 1}
    assert stack.counters()["icmp_errors_out"] == 1


def test_port_unreachable_quotes_a_reassembled_datagram_as_one() -> None:
    stack, iface = host(US)
    packet = udp(PEER, US, 5000, 9, bytes(3000), ident=0x77)
    for piece in split(packet, 1480):
        stack.receive(iface, piece, 0.0)
    [error] = iface.take_output()
    quoted = parse_icmp(error)[1].payload
    assert quoted[4:6] == packet[4:6]  # the identification
    assert quoted[20:28] == packet[20:28]  # the UDP header
    assert quoted[6:8] == b"\0\0"  # the whole datagram, not a fragment


def test_protocol_unreachable_for_an_unknown_protocol() -> None:
    stack, iface = host(US)
    packet = ipv4(PEER, US, 99, b"what is this")
    stack.receive(iface, packet, 0.0)
    [error] = iface.take_output()
    header, icmp = parse_icmp(error)
    assert (icmp.type, icmp.code) == (IcmpType.DEST_UNREACHABLE, UnreachableCode.PROTOCOL)
    assert header.dst == ip(PEER) and icmp.payload == packet[:28]
    assert stack.drops == {DropReason.PROTOCOL_UNREACHABLE: 1}


class Handler:
    """A transport plugged into the stack (what TCP will be)."""

    def __init__(self) -> None:
        self.received: list[tuple[Ipv4Repr, bytes, float]] = []
        self.errors: list[tuple[IcmpRepr, Ipv4Repr, bytes]] = []
        self.deadline: float | None = 5.0
        self.timers: list[float] = []

    def receive(self, header: Ipv4Repr, payload: memoryview, now: float) -> bool:
        self.received.append((header, bytes(payload), now))
        return True

    def icmp_error(self, error: IcmpRepr, original: Ipv4Repr, original_payload: bytes, now: float) -> None:
        self.errors.append((error, original, original_payload))

    def next_deadline(self) -> float | None:
        return self.deadline

    def on_timer(self, now: float) -> None:
        self.timers.append(now)
        self.deadline = None


def test_registered_transport_gets_its_datagrams_errors_and_timers() -> None:
    stack, iface = host(US)
    handler = Handler()
    stack.register_transport(6, handler)
    stack.receive(iface, ipv4(PEER, US, 6, b"segment"), 1.0)
    assert [(h.protocol, d, t) for h, d, t in handler.received] == [(6, b"segment", 1.0)]
    assert iface.take_output() == []
    original = ipv4(US, PEER, 6, b"\x01\x02\x03\x04\x05\x06\x07\x08\x09")
    error = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, original)
    stack.receive(iface, ipv4(PEER, US, ICMP, error.emit()), 2.0)
    [(got, quoted_header, quoted_data)] = handler.errors
    assert got == error and quoted_header.dst == ip(PEER) and quoted_data == original[20:28]
    assert stack.next_deadline() == 5.0
    stack.on_timer(4.0)
    assert handler.timers == []
    stack.on_timer(5.0)
    assert handler.timers == [5.0]


@pytest.mark.parametrize("dst", ["255.255.255.255", "10.0.0.255"])
def test_no_port_unreachable_for_a_broadcast(dst: str) -> None:
    stack, iface = host(US)
    stack.receive(iface, udp(PEER, dst, 5000, 9, b"x"), 0.0)
    assert iface.take_output() == []
    assert stack.drops == {DropReason.PORT_UNREACHABLE: 1}


def test_no_protocol_unreachable_for_the_limited_broadcast() -> None:
    stack, iface = host(US)
    stack.receive(iface, ipv4(PEER, "255.255.255.255", 99, b"x"), 0.0)
    assert iface.take_output() == []


def test_no_protocol_unreachable_for_a_directed_broadcast() -> None:
    # RFC 1122 §3.2.2: an ICMP error MUST NOT be sent about a datagram destined to a broadcast address
    stack, iface = host(US)
    stack.receive(iface, ipv4(PEER, "10.0.0.255", 99, b"x"), 0.0)
    assert iface.take_output() == []


def test_no_time_exceeded_for_a_fragment_to_the_limited_broadcast() -> None:
    stack, iface = host(US, fragment_timeout=1.0)
    stack.receive(iface, split(udp(PEER, "255.255.255.255", 1, 2, bytes(100)), 48)[0], 0.0)
    stack.on_timer(1.0)
    assert iface.take_output() == []
    assert stack.counters()["drop_reassembly_timeout"] == 1


def test_no_time_exceeded_for_a_fragment_to_a_directed_broadcast() -> None:
    stack, iface = host(US, fragment_timeout=1.0)
    stack.receive(iface, split(udp(PEER, "10.0.0.255", 1, 2, bytes(100)), 48)[0], 0.0)
    stack.on_timer(1.0)
    assert iface.take_output() == []


@pytest.mark.parametrize("src", ["0.0.0.0", "127.0.0.1", "240.0.0.1"])
def test_no_error_to_a_martian_source(src: str) -> None:
    stack, iface = host(US)
    stack.routes.add_default("eth0")
    stack.receive(iface, udp(src, US, 5000, 9, b"x"), 0.0)
    stack.receive(iface, ipv4(src, US, 99, b"x"), 0.0)
    assert iface.take_output() == []


@pytest.mark.parametrize(
    ("icmp_type", "code"),
    [(IcmpType.DEST_UNREACHABLE, 3), (IcmpType.TIME_EXCEEDED, 0), (IcmpType.PARAMETER_PROBLEM, 0)],
)
def test_no_time_exceeded_about_a_fragmented_icmp_error(icmp_type: int, code: int) -> None:
    message = IcmpRepr(icmp_type, code, 0, udp(US, PEER, 1, 2, bytes(100))).emit()
    stack, iface = host(US, fragment_timeout=1.0)
    stack.receive(iface, split(ipv4(PEER, US, ICMP, message), 64)[0], 0.0)
    stack.on_timer(1.0)
    assert iface.take_output() == []
    assert stack.counters()["drop_reassembly_timeout"] == 1


def test_time_exceeded_about_a_fragmented_echo_request() -> None:
    stack, iface = host(US, fragment_timeout=1.0)
    stack.receive(iface, split(echo(PEER, US, 1, 1, bytes(100)), 64)[0], 0.0)
    stack.on_timer(1.0)
    [(header, icmp)] = icmp_messages(iface.take_output())
    assert (icmp.type, icmp.code) == (IcmpType.TIME_EXCEEDED, TimeExceededCode.REASSEMBLY_TIMEOUT)


def test_rate_limit_allows_a_burst_then_one_per_interval() -> None:
    stack, iface = host(US, icmp_error_rate=2.0, icmp_error_burst=3)

    def provoke(now: float, n: int = 1) -> int:
        for _ in range(n):
            stack.receive(iface, udp(PEER, US, 5000, 9, b"x"), now)
        return len(iface.take_output())

    assert provoke(0.0, 5) == 3
    assert stack.drops[DropReason.RATE_LIMITED] == 2
    assert provoke(0.25) == 0  # half a token
    assert provoke(0.5) == 1  # one token every 1/rate = 0.5 s
    assert provoke(0.5) == 0
    assert provoke(1.0, 2) == 1
    assert provoke(100.0, 5) == 3  # the bucket refills only up to the burst
    assert stack.drops[DropReason.RATE_LIMITED] == 2 + 1 + 1 + 1 + 2
    assert stack.counters()["drop_rate_limited"] == 7
    assert stack.counters()["icmp_errors_out"] == 3 + 1 + 1 + 3
    assert stack.drops[DropReason.PORT_UNREACHABLE] == 15


def test_echo_replies_are_not_rate_limited() -> None:
    stack, iface = host(US, icmp_error_rate=1.0, icmp_error_burst=1)
    for seq in range(10):
        stack.receive(iface, echo(PEER, US, 1, seq, b"x"), 0.0)
    assert len(iface.take_output()) == 10


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10.0, burst=2)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.05) is False
    assert bucket.take(0.1) is True
    assert [bucket.take(1000.0) for _ in range(3)] == [True, True, False]


# ------------------------------------------------------------- errors we receive


def test_port_unreachable_is_delivered_to_the_udp_socket() -> None:
    net, a, _, _, _ = two_hosts()
    sock = a.udp_socket()
    sock.bind(US, 40000)
    other = a.udp_socket()
    other.bind(US, 40001)
    sock.sendto(b"hello?", PEER, 9)
    net.run_until(1.0)
    [error] = sock.errors
    assert (error.type, error.code) == (IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT)
    assert error.reporter == ip(PEER) and error.destination == (ip(PEER), 9)
    assert error.description == "port unreachable from 10.0.0.2"
    assert list(other.errors) == []


def test_icmp_error_reaches_a_wildcard_bound_socket() -> None:
    net, a, _, _, _ = two_hosts()
    sock = a.udp_socket()
    sock.bind("0.0.0.0", 40000)
    sock.sendto(b"x", PEER, 9)
    net.run_until(1.0)
    assert len(sock.errors) == 1


def test_icmp_error_about_someone_elses_datagram_is_dropped() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 40000)
    original = udp("10.0.0.7", PEER, 40000, 9, b"x")
    error = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, original)
    stack.receive(iface, ipv4(PEER, US, ICMP, error.emit()), 0.0)
    assert list(sock.errors) == []
    assert stack.drops == {DropReason.NOT_FOR_US: 1}


def test_icmp_error_with_a_broken_quote_is_dropped() -> None:
    stack, iface = host(US)
    for quote in (bytes(20), b"\x45" + bytes(19), b"\x4f" + bytes(27)):
        stack.receive(iface, ipv4(PEER, US, ICMP, IcmpRepr(IcmpType.DEST_UNREACHABLE, 3, 0, quote).emit()), 0.0)
    assert sum(stack.drops.values()) == 3
    assert iface.take_output() == []


def test_socket_error_queue_is_bounded() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 40000)
    original = udp(US, PEER, 40000, 9, b"x")
    for code in range(40):
        error = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, code % 16, original)
        stack.receive(iface, ipv4(PEER, US, ICMP, error.emit()), 0.0)
    assert len(sock.errors) == 16


@pytest.mark.parametrize(
    ("icmp_type", "code", "text"),
    [
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.NET, "network unreachable from 192.0.2.1"),
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.HOST, "host unreachable from 192.0.2.1"),
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.PROTOCOL, "protocol unreachable from 192.0.2.1"),
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, "port unreachable from 192.0.2.1"),
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED, "fragmentation needed from 192.0.2.1"),
        (IcmpType.TIME_EXCEEDED, 0, "time to live exceeded from 192.0.2.1"),
        (IcmpType.TIME_EXCEEDED, 1, "fragment reassembly time exceeded from 192.0.2.1"),
        (IcmpType.PARAMETER_PROBLEM, 0, "ICMP type 12 code 0 from 192.0.2.1"),
    ],
)
def test_describe_icmp_error(icmp_type: int, code: int, text: str) -> None:
    assert describe_icmp_error(IcmpRepr(icmp_type, code), ip("192.0.2.1")) == text


def test_no_reply_or_error_to_a_directed_broadcast_source() -> None:
    # RFC 1122 §3.2.1.3: a broadcast source address is invalid and the datagram silently discarded;
    # §3.2.2: never an ICMP error about a datagram whose source is a broadcast address
    stack, iface = host(US)
    stack.receive(iface, udp("10.0.0.255", US, 5000, 9, b"x"), 0.0)  # closed port
    stack.receive(iface, echo("10.0.0.255", US, 1, 1, b"x"), 0.0)
    assert iface.take_output() == []
