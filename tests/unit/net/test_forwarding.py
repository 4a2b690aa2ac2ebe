"""Forwarding (RFC 1812 §5.2-5.3): TTL, routing errors, fragmentation on the way out, martians."""

from __future__ import annotations

import random

import pytest

from tests.unit.net.helpers import (
    ICMP,
    echo,
    icmp_messages,
    ip,
    ipv4,
    join,
    parse,
    parse_icmp,
    payload_of,
    routed,
    split,
    udp,
)
from wipstack.errors import DropReason
from wipstack.net import Interface, Stack, StackConfig
from wipstack.wire.icmp import IcmpRepr, IcmpType, TimeExceededCode, UnreachableCode
from wipstack.wire.ipv4 import Ipv4Repr

A, B = "10.0.1.2", "10.0.2.2"
RA, RB = "10.0.1.1", "10.0.2.1"


def router(mtu_b: int = 1500, **config: object) -> tuple[Stack, Interface, Interface]:
    r = Stack(random.Random(3), StackConfig(forwarding=True, **config))  # type: ignore[arg-type]
    ra = r.add_interface(Interface("ra", ip(RA), prefix_len=24))
    rb = r.add_interface(Interface("rb", ip(RB), prefix_len=24, mtu=mtu_b))
    return r, ra, rb


def test_forwarded_datagram_has_ttl_decremented_and_a_valid_checksum() -> None:
    r, ra, rb = router()
    packet = udp(A, B, 5000, 53, b"query", ttl=9, tos=0x28, ident=0x1357, df=True, options=b"\x94\x04\x00\x00")
    r.receive(ra, packet, 0.0)
    [out] = rb.take_output()
    header, payload = parse(out)  # verifies the recomputed header checksum
    original, original_payload = parse(packet)
    assert header.ttl == 8
    assert header == Ipv4Repr(
        original.src, original.dst, original.protocol, 8, 0x28, 0x1357, True, False, 0, original.options
    )
    assert payload == original_payload  # the UDP checksum still holds: nothing above IP changed
    assert out[:8] == packet[:8] and out[9] == packet[9] and out[12:] == packet[12:]
    assert ra.take_output() == []
    assert r.counters()["forwarded"] == 1 and r.counters()["delivered"] == 0


def test_end_to_end_through_the_router() -> None:
    topo = routed()
    server = topo.b.udp_socket()
    server.bind(B, 53)
    client = topo.a.udp_socket()
    client.sendto(b"question", B, 53)
    topo.net.run_until(1.0)
    data, (src, port) = server.recvfrom()  # type: ignore[misc]
    assert data == b"question" and src == ip(A)
    server.sendto(b"answer", src, port)
    topo.net.run_until(2.0)
    assert client.recvfrom() == (b"answer", (ip(B), 53))
    [arrived] = topo.net.sent_by("rb")
    assert parse(arrived)[0].ttl == 63
    assert topo.r.counters()["forwarded"] == 2


@pytest.mark.parametrize("ttl", [0, 1])
def test_ttl_expiring_sends_time_exceeded_to_the_source(ttl: int) -> None:
    r, ra, rb = router()
    packet = udp(A, B, 5000, 53, b"trace", ttl=ttl)
    r.receive(ra, packet, 0.0)
    assert rb.take_output() == []
    [error] = ra.take_output()
    header, icmp = parse_icmp(error)
    assert (icmp.type, icmp.code) == (IcmpType.TIME_EXCEEDED, TimeExceededCode.TTL_EXCEEDED)
    assert header.src == ip(RA) and header.dst == ip(A)
    assert icmp.payload == packet[:28]
    assert r.drops == {DropReason.TTL_EXPIRED: 1}
    assert r.counters()["icmp_errors_out"] == 1


def test_ttl_2_is_forwarded_with_ttl_1() -> None:
    r, ra, rb = router()
    r.receive(ra, udp(A, B, 5000, 53, b"x", ttl=2), 0.0)
    [out] = rb.take_output()
    assert parse(out)[0].ttl == 1


def test_udp_socket_learns_about_ttl_exceeded_through_the_router() -> None:
    topo = routed()
    sock = topo.a.udp_socket()
    sock.ttl = 1
    sock.sendto(b"hop", B, 33434)
    topo.net.run_until(1.0)
    [error] = sock.errors
    assert (error.type, error.code) == (IcmpType.TIME_EXCEEDED, TimeExceededCode.TTL_EXCEEDED)
    assert error.reporter == ip(RA)
    assert error.destination == (ip(B), 33434)
    assert error.description == "time to live exceeded from 10.0.1.1"


def test_no_route_sends_net_unreachable() -> None:
    r, ra, rb = router()
    packet = udp(A, "192.0.2.9", 5000, 53, b"lost")
    r.receive(ra, packet, 0.0)
    assert rb.take_output() == []
    [error] = ra.take_output()
    header, icmp = parse_icmp(error)
    assert (icmp.type, icmp.code) == (IcmpType.DEST_UNREACHABLE, UnreachableCode.NET)
    assert header.dst == ip(A) and icmp.payload == packet[:28]
    assert r.drops == {DropReason.NO_ROUTE: 1}


def test_outbound_interface_down_is_no_route() -> None:
    r, ra, rb = router()
    rb.up = False
    r.receive(ra, udp(A, B, 5000, 53, b"x"), 0.0)
    assert rb.take_output() == []
    [error] = ra.take_output()
    assert parse_icmp(error)[1].code == UnreachableCode.NET
    assert r.drops == {DropReason.NO_ROUTE: 1}


def test_dont_fragment_and_too_big_sends_fragmentation_needed_with_the_next_hop_mtu() -> None:
    r, ra, rb = router(mtu_b=576)
    fits = udp(A, B, 5000, 53, bytes(548), df=True)  # exactly 576 octets
    r.receive(ra, fits, 0.0)
    assert len(rb.take_output()) == 1
    packet = udp(A, B, 5000, 53, bytes(549), df=True)
    r.receive(ra, packet, 0.0)
    assert rb.take_output() == []
    [error] = ra.take_output()
    header, icmp = parse_icmp(error)
    assert (icmp.type, icmp.code) == (IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED)
    assert icmp.next_hop_mtu == 576  # RFC 1191 §4
    assert icmp.rest == 576  # the unused high half is zero
    assert header.dst == ip(A) and icmp.payload == packet[:28]
    assert r.drops == {DropReason.NEEDS_FRAGMENTATION: 1}


def test_path_mtu_error_reaches_the_udp_socket() -> None:
    topo = routed(mtu_b=576)
    sock = topo.a.udp_socket()
    sock.bind(A, 4444)
    payload = bytes(1000)
    # A's own link is 1500, so A sends one DF datagram the router cannot pass on
    assert topo.a.send_datagram(ip(A), ip(B), 17, udp(A, B, 4444, 53, payload)[20:], dont_fragment=True)
    topo.net.run_until(1.0)
    [error] = sock.errors
    assert (error.type, error.code) == (IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED)
    assert error.description == "fragmentation needed from 10.0.1.1"


@pytest.mark.parametrize("size", [1000, 1472, 5000])
def test_too_big_without_dont_fragment_is_fragmented_on_the_way_out(size: int) -> None:
    r, ra, rb = router(mtu_b=576)
    data = payload_of(size)
    packet = udp(A, B, 5000, 53, data, ttl=30, ident=0xABCD)
    for piece in split(packet, 1480) if len(packet) > 1500 else [packet]:
        r.receive(ra, piece, 0.0)
    out = rb.take_output()
    assert len(out) > 1
    for piece in out:
        header, _ = parse(piece)
        assert len(piece) <= 576
        assert header.ttl == 29 and header.identification == 0xABCD
        assert header.fragment_offset % 8 == 0
    header, segment = join(out)
    assert segment == parse(packet)[1]
    assert r.counters()["fragments_out"] == len(out)
    assert ra.take_output() == []


def test_fragmented_through_the_router_and_reassembled_by_the_host() -> None:
    topo = routed(mtu_b=296)
    server = topo.b.udp_socket()
    server.bind(B, 9)
    data = payload_of(5840, seed=1)
    client = topo.a.udp_socket()
    client.bind(A, 40000)
    client.sendto(data, B, 9)
    topo.net.run_until(1.0)
    assert server.recvfrom() == (data, (ip(A), 40000))
    assert all(len(p) <= 296 for p in topo.net.sent_by("rb"))
    assert topo.b.counters()["reassembled"] == 1
    assert topo.r.counters()["reassembled"] == 0  # a router does not reassemble transit traffic


@pytest.mark.parametrize("src", ["127.0.0.1", "0.0.0.0", "0.1.2.3", "240.0.0.1", "254.1.1.1"])
def test_martian_sources_are_never_forwarded(src: str) -> None:
    r, ra, rb = router()
    r.receive(ra, udp(src, B, 5000, 53, b"spoof"), 0.0)
    assert rb.take_output() == [] and ra.take_output() == []
    assert r.drops == {DropReason.BAD_VALUE: 1}
    assert r.counters()["forwarded"] == 0


@pytest.mark.parametrize("dst", ["224.0.0.1", "224.0.0.251", "239.1.2.3"])
def test_multicast_is_never_forwarded(dst: str) -> None:
    r, ra, rb = router()
    r.routes.add("224.0.0.0", 4, "rb")  # even with a route for it
    r.receive(ra, udp(A, dst, 5000, 5353, b"mdns"), 0.0)
    assert rb.take_output() == [] and ra.take_output() == []
    assert r.counters()["forwarded"] == 0
    assert r.drops == {DropReason.NOT_FOR_US: 1}


def test_unspecified_destination_is_never_forwarded() -> None:
    r, ra, rb = router()
    r.routes.add_default("rb")
    r.receive(ra, udp(A, "0.0.0.0", 5000, 53, b"x"), 0.0)
    assert rb.take_output() == [] and ra.take_output() == []
    assert r.drops == {DropReason.BAD_VALUE: 1}


@pytest.mark.parametrize("dst", ["127.0.0.1", "0.1.2.3", "240.0.0.9"])
def test_martian_destinations_are_never_forwarded(dst: str) -> None:
    # RFC 1812 §5.3.7: a router SHOULD NOT forward to 0/8, 127/8 or class E destinations
    r, ra, rb = router()
    r.routes.add_default("rb")
    r.receive(ra, udp(A, dst, 5000, 53, b"x"), 0.0)
    assert rb.take_output() == []
    assert r.counters()["forwarded"] == 0


@pytest.mark.parametrize("dst", ["255.255.255.255", "10.0.1.255"])
def test_broadcasts_are_delivered_not_forwarded(dst: str) -> None:
    r, ra, rb = router()
    r.routes.add_default("rb")
    sock = r.udp_socket()
    sock.bind("0.0.0.0", 67)
    r.receive(ra, udp(A, dst, 68, 67, b"dhcp"), 0.0)
    assert rb.take_output() == []
    assert sock.recvfrom() == (b"dhcp", (ip(A), 68))
    assert r.counters()["forwarded"] == 0


def test_directed_broadcast_to_another_attached_subnet_is_not_forwarded() -> None:
    # RFC 2644 (updating RFC 1812 §5.3.5.2): forwarding directed broadcasts MUST default to off
    r, ra, rb = router()
    r.receive(ra, udp(A, "10.0.2.255", 5000, 7, b"smurf"), 0.0)
    assert rb.take_output() == []
    assert r.counters()["forwarded"] == 0


def test_datagram_for_the_routers_far_address_is_delivered_locally() -> None:
    r, ra, rb = router()
    r.receive(ra, echo(A, RB, 1, 1, b"ping", ttl=1), 0.0)
    assert rb.take_output() == []
    [reply] = ra.take_output()
    header, icmp = parse_icmp(reply)
    assert icmp.type == IcmpType.ECHO_REPLY and header.src == ip(RB) and header.dst == ip(A)


def test_a_host_with_two_interfaces_does_not_forward() -> None:
    r, ra, rb = router()
    r.set_config(StackConfig(forwarding=False))
    r.receive(ra, udp(A, B, 5000, 53, b"x"), 0.0)
    assert rb.take_output() == [] and ra.take_output() == []
    assert r.drops == {DropReason.NOT_FOR_US: 1}


def test_no_error_about_a_non_first_fragment() -> None:
    r, ra, rb = router(mtu_b=576)
    pieces = split(udp(A, B, 5000, 53, bytes(3000), ttl=1), 1480)
    r.receive(ra, pieces[1], 0.0)  # TTL 1, not the first fragment
    r.receive(ra, ipv4(A, "192.0.2.1", 17, bytes(16), offset=8, mf=True), 0.0)  # no route, not first
    r.receive(ra, ipv4(A, B, 17, bytes(1200), offset=8, df=True), 0.0)  # too big with DF, not first
    assert ra.take_output() == [] and rb.take_output() == []
    assert r.drops == {DropReason.TTL_EXPIRED: 1, DropReason.NO_ROUTE: 1, DropReason.NEEDS_FRAGMENTATION: 1}
    r.receive(ra, pieces[0], 0.0)  # the first fragment does get one
    [error] = ra.take_output()
    assert parse_icmp(error)[1].type == IcmpType.TIME_EXCEEDED


@pytest.mark.parametrize(
    "message",
    [
        IcmpRepr(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, 0, udp(B, A, 53, 5000, b"x")[:28]),
        IcmpRepr(IcmpType.TIME_EXCEEDED, 0, 0, udp(B, A, 53, 5000, b"x")[:28]),
        IcmpRepr(IcmpType.PARAMETER_PROBLEM, 0, 0, udp(B, A, 53, 5000, b"x")[:28]),
        IcmpRepr(IcmpType.REDIRECT, 0, 0, udp(B, A, 53, 5000, b"x")[:28]),
        IcmpRepr(IcmpType.SOURCE_QUENCH, 0, 0, udp(B, A, 53, 5000, b"x")[:28]),
    ],
    ids=["unreachable", "time-exceeded", "parameter-problem", "redirect", "source-quench"],
)
def test_no_error_about_an_icmp_error(message: IcmpRepr) -> None:
    r, ra, rb = router()
    r.receive(ra, ipv4(A, B, ICMP, message.emit(), ttl=1), 0.0)  # TTL exceeded
    r.receive(ra, ipv4(A, "192.0.2.1", ICMP, message.emit()), 0.0)  # no route
    assert ra.take_output() == [] and rb.take_output() == []
    assert r.drops == {DropReason.TTL_EXPIRED: 1, DropReason.NO_ROUTE: 1}


def test_echo_requests_and_replies_do_get_errors() -> None:
    r, ra, rb = router()
    r.receive(ra, echo(A, B, 1, 1, b"x", ttl=1), 0.0)
    r.receive(ra, ipv4(A, B, ICMP, IcmpRepr.echo(1, 1, b"x", reply=True).emit(), ttl=1), 0.0)
    assert [icmp.type for _, icmp in icmp_messages(ra.take_output())] == [IcmpType.TIME_EXCEEDED] * 2


def test_forwarding_errors_are_rate_limited() -> None:
    r, ra, rb = router(icmp_error_burst=2, icmp_error_rate=1.0)
    for i in range(5):
        r.receive(ra, udp(A, B, 5000, 53, bytes([i]), ttl=1), 0.0)
    assert len(ra.take_output()) == 2
    assert r.drops[DropReason.RATE_LIMITED] == 3
    assert r.drops[DropReason.TTL_EXPIRED] == 5
