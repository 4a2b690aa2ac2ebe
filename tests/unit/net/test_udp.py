"""UDP sockets (RFC 768, RFC 1122 §4.1): binding, ports, connect, checksums, queues, big datagrams."""

from __future__ import annotations

import random

import pytest

from tests.unit.net.helpers import UDP, host, ip, ipv4, join, parse, parse_icmp, payload_of, two_hosts, udp
from wipstack.errors import DropReason, LocalProtocolError
from wipstack.net import Interface, Stack, StackConfig
from wipstack.net.udp import ANY, SocketError
from wipstack.wire.icmp import UnreachableCode

US, PEER = "10.0.0.1", "10.0.0.2"


def errno(call: object, *args: object) -> str:
    with pytest.raises(SocketError) as info:
        call(*args)  # type: ignore[operator]
    return info.value.errno_name


def ones_complement_checksum(data: bytes) -> int:
    """RFC 1071, written out independently of wipstack."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_checksum_ok(src: bytes, dst: bytes, segment: bytes) -> bool:
    pseudo = src + dst + bytes([0, UDP]) + len(segment).to_bytes(2, "big")
    return ones_complement_checksum(pseudo + segment) == 0


# --------------------------------------------------------------------- binding


def test_bind_specific_and_wildcard() -> None:
    stack, _ = host(US)
    a = stack.udp_socket()
    assert a.bind(US, 53) == (ip(US), 53)
    b = stack.udp_socket()
    assert b.bind("0.0.0.0", 54) == (ANY, 54)
    assert a.local == (ip(US), 53) and a.remote is None
    assert repr(a) == "<UdpSocket 10.0.0.1:53 -> *>"


def test_ephemeral_ports_are_random_inside_the_configured_range() -> None:
    def ports(seed: int, n: int = 20) -> list[int]:
        stack, _ = host(US, seed=seed, ephemeral_ports=(40000, 40999))
        return [stack.udp_socket().bind()[1] for _ in range(n)]

    first = ports(1)
    assert first == ports(1)  # seeded: reproducible
    assert first != ports(2)
    assert all(40000 <= p <= 40999 for p in first)
    assert len(set(first)) == 20
    assert first != sorted(first)  # not handed out in sequence


def test_default_ephemeral_range_is_the_rfc_6335_dynamic_range() -> None:
    stack, _ = host(US)
    ports = [stack.udp_socket().bind()[1] for _ in range(50)]
    assert all(49152 <= p <= 65535 for p in ports)


def test_ephemeral_range_exhaustion() -> None:
    stack, _ = host(US, ephemeral_ports=(50000, 50003))
    sockets = [stack.udp_socket() for _ in range(5)]
    assert sorted(s.bind()[1] for s in sockets[:4]) == [50000, 50001, 50002, 50003]
    assert errno(sockets[4].bind) == "EADDRINUSE"
    sockets[2].close()
    assert sockets[4].bind()[1] == sockets[2].local[1]  # type: ignore[index]


def test_ephemeral_allocation_skips_explicitly_bound_ports() -> None:
    stack, _ = host(US, ephemeral_ports=(50000, 50001))
    stack.udp_socket().bind(US, 50000)
    assert stack.udp_socket().bind() == (ANY, 50001)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((US, 53), (US, 53)),
        (("0.0.0.0", 53), (US, 53)),
        ((US, 53), ("0.0.0.0", 53)),
        (("0.0.0.0", 53), ("0.0.0.0", 53)),
    ],
)
def test_eaddrinuse(first: tuple[str, int], second: tuple[str, int]) -> None:
    stack, _ = host(US)
    stack.udp_socket().bind(*first)
    sock = stack.udp_socket()
    assert errno(sock.bind, *second) == "EADDRINUSE"
    assert sock.local is None
    assert sock.bind(US, 54) == (ip(US), 54)  # the failed bind left it usable


def test_same_port_on_two_addresses() -> None:
    stack, eth0 = host(US)
    stack.add_interface(Interface("eth1", ip("192.168.1.1"), prefix_len=24))
    a, b = stack.udp_socket(), stack.udp_socket()
    a.bind(US, 53)
    b.bind("192.168.1.1", 53)
    stack.receive(eth0, udp(PEER, US, 1000, 53, b"to a"), 0.0)
    stack.receive(eth0, udp(PEER, "192.168.1.1", 1000, 53, b"to b"), 0.0)
    assert a.recvfrom() == (b"to a", (ip(PEER), 1000)) and a.recvfrom() is None
    assert b.recvfrom() == (b"to b", (ip(PEER), 1000)) and b.recvfrom() is None


@pytest.mark.parametrize("port", [-1, 65536, 100000])
def test_bind_port_out_of_range(port: int) -> None:
    stack, _ = host(US)
    assert errno(stack.udp_socket().bind, US, port) == "EINVAL"


def test_bind_twice() -> None:
    stack, _ = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    assert errno(sock.bind, US, 54) == "EINVAL"


def test_close_releases_the_port_and_discards_queued_data() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    stack.receive(iface, udp(PEER, US, 1000, 53, b"queued"), 0.0)
    assert sock.pending == 1
    sock.close()
    assert sock.pending == 0 and sock.recvfrom() is None
    sock.close()  # twice is harmless
    for operation, args in ((sock.bind, (US, 1)), (sock.connect, (PEER, 1)), (sock.sendto, (b"x", PEER, 1))):
        with pytest.raises(LocalProtocolError):
            operation(*args)
    again = stack.udp_socket()
    assert again.bind(US, 53) == (ip(US), 53)
    stack.receive(iface, udp(PEER, US, 1000, 53, b"new"), 0.0)
    assert again.recvfrom() == (b"new", (ip(PEER), 1000))


def test_closed_port_answers_unreachable() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    sock.close()
    stack.receive(iface, udp(PEER, US, 1000, 53, b"x"), 0.0)
    [error] = iface.take_output()
    assert parse_icmp(error)[1].code == UnreachableCode.PORT


def test_closing_an_unbound_socket() -> None:
    stack, _ = host(US)
    stack.udp_socket().close()


# --------------------------------------------------------------- send / receive


def test_sendto_and_recvfrom() -> None:
    net, a, _, b, _ = two_hosts()
    server = b.udp_socket()
    server.bind(PEER, 7)
    client = a.udp_socket()
    assert client.sendto(b"ping", PEER, 7) == 4
    assert client.local is not None and client.local[0] == ANY  # implicit bind to an ephemeral port
    assert client.sendto(bytearray(b"two"), ip(PEER), 7) == 3
    assert client.sendto(memoryview(b"three"), PEER, 7) == 5
    net.run_until(0.0)
    got = [server.recvfrom() for _ in range(3)]
    source = (ip(US), client.local[1])
    assert got == [(b"ping", source), (b"two", source), (b"three", source)]
    assert server.recvfrom() is None
    assert server.datagrams_in == 3 and client.datagrams_out == 3
    [segment] = {parse(p)[1][:2] for p in net.sent_by("a0")}
    assert int.from_bytes(segment, "big") == client.local[1]


def test_sendto_errors() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    assert errno(sock.sendto, b"x", PEER, 0) == "EINVAL"
    assert errno(sock.sendto, b"x", PEER, 65536) == "EINVAL"
    assert errno(sock.sendto, bytes(65508), PEER, 9) == "EMSGSIZE"
    assert errno(sock.sendto, b"x", "192.0.2.1", 9) == "ENETUNREACH"
    iface.up = False
    assert errno(sock.sendto, b"x", PEER, 9) == "ENOBUFS"
    assert iface.take_output() == []


def test_send_on_an_unconnected_socket() -> None:
    stack, _ = host(US)
    assert errno(stack.udp_socket().send, b"x") == "EDESTADDRREQ"


def test_connect_binds_to_the_route_source_and_send_goes_there() -> None:
    stack, iface = host(US)
    stack.add_interface(Interface("eth1", ip("192.168.1.1"), prefix_len=24))
    stack.routes.add_default("eth1")
    sock = stack.udp_socket()
    sock.connect("8.8.8.8", 53)
    assert sock.local is not None and sock.local[0] == ip("192.168.1.1")
    assert sock.remote == (ip("8.8.8.8"), 53)
    assert sock.send(b"query") == 5
    [packet] = stack.interfaces["eth1"].take_output()
    header, segment = parse(packet)
    assert (header.src, header.dst) == (ip("192.168.1.1"), ip("8.8.8.8"))
    assert segment[2:4] == (53).to_bytes(2, "big") and segment[8:] == b"query"


def test_connect_errors() -> None:
    stack, _ = host(US)
    sock = stack.udp_socket()
    assert errno(sock.connect, PEER, 0) == "EINVAL"
    assert errno(sock.connect, "192.0.2.1", 53) == "ENETUNREACH"
    assert sock.local is None


def test_connected_socket_filters_other_senders() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 5000)
    sock.connect(PEER, 53)
    stack.receive(iface, udp(PEER, US, 53, 5000, b"from the peer"), 0.0)
    stack.receive(iface, udp(PEER, US, 54, 5000, b"other port"), 0.0)
    stack.receive(iface, udp("10.0.0.3", US, 53, 5000, b"other host"), 0.0)
    assert sock.recvfrom() == (b"from the peer", (ip(PEER), 53))
    assert sock.recvfrom() is None
    assert stack.drops[DropReason.PORT_UNREACHABLE] == 2
    errors = [parse_icmp(p) for p in iface.take_output()]
    assert [(h.dst, i.code) for h, i in errors] == [(ip(PEER), 3), (ip("10.0.0.3"), 3)]


def test_connected_wildcard_socket() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind("0.0.0.0", 5000)
    sock.connect(PEER, 53)
    stack.receive(iface, udp(PEER, US, 53, 5000, b"ok"), 0.0)
    stack.receive(iface, udp("10.0.0.9", US, 53, 5000, b"no"), 0.0)
    assert sock.recvfrom() == (b"ok", (ip(PEER), 53)) and sock.recvfrom() is None


def test_wildcard_socket_receives_broadcasts_specific_one_does_not() -> None:
    stack, iface = host(US)
    wildcard, specific = stack.udp_socket(), stack.udp_socket()
    wildcard.bind("0.0.0.0", 67)
    specific.bind(US, 68)
    stack.receive(iface, udp(PEER, "255.255.255.255", 1, 67, b"a"), 0.0)
    stack.receive(iface, udp(PEER, "255.255.255.255", 1, 68, b"b"), 0.0)
    assert wildcard.recvfrom() == (b"a", (ip(PEER), 1))
    assert specific.recvfrom() is None


def test_on_datagram_callback() -> None:
    stack, iface = host(US, udp_receive_queue=1)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    seen: list[tuple[bytes, tuple[bytes, int], float]] = []
    sock.on_datagram = lambda data, source, now: seen.append((data, source, now))
    for i in range(3):
        stack.receive(iface, udp(PEER, US, 1000 + i, 53, bytes([i])), float(i))
    assert seen == [(bytes([i]), (ip(PEER), 1000 + i), float(i)) for i in range(3)]
    assert sock.pending == 0 and not sock.drops  # the callback bypasses the bounded queue
    assert sock.datagrams_in == 3


def test_receive_queue_is_bounded_by_count() -> None:
    stack, iface = host(US, udp_receive_queue=3)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    for i in range(5):
        stack.receive(iface, udp(PEER, US, 1000, 53, bytes([i])), 0.0)
    assert sock.pending == 3
    assert sock.drops == {DropReason.QUEUE_FULL: 2}
    assert [sock.recvfrom()[0] for _ in range(3)] == [b"\0", b"\1", b"\2"]  # type: ignore[index]
    stack.receive(iface, udp(PEER, US, 1000, 53, b"room again"), 0.0)
    assert sock.recvfrom() == (b"room again", (ip(PEER), 1000))
    assert iface.take_output() == []  # a full queue is not an unreachable port


def test_receive_queue_is_bounded_by_bytes() -> None:
    stack, iface = host(US, udp_receive_bytes=1000)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    for size in (600, 400, 1):
        stack.receive(iface, udp(PEER, US, 1000, 53, bytes(size)), 0.0)
    assert sock.pending == 2 and sock.drops == {DropReason.QUEUE_FULL: 1}
    sock.recvfrom()
    stack.receive(iface, udp(PEER, US, 1000, 53, bytes(600)), 0.0)
    assert sock.pending == 2


def test_empty_datagram() -> None:
    net, a, _, b, _ = two_hosts()
    server = b.udp_socket()
    server.bind(PEER, 9)
    a.udp_socket().sendto(b"", PEER, 9)
    net.run_until(0.0)
    got = server.recvfrom()
    assert got is not None and got[0] == b""


def test_destination_port_zero_is_dropped() -> None:
    stack, iface = host(US)
    stack.receive(iface, udp(PEER, US, 1000, 0, b"x"), 0.0)
    assert stack.drops == {DropReason.BAD_VALUE: 1}
    assert iface.take_output() == []


def test_udp_length_field_bounds_the_data() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    segment = bytes.fromhex("03e8 0035 000a 0000") + b"ok" + b"trailing"  # length 10, no checksum
    stack.receive(iface, ipv4(PEER, US, UDP, segment), 0.0)
    assert sock.recvfrom() == (b"ok", (ip(PEER), 1000))
    stack.receive(iface, ipv4(PEER, US, UDP, bytes.fromhex("03e8 0035 0040 0000") + b"short"), 0.0)
    stack.receive(iface, ipv4(PEER, US, UDP, bytes.fromhex("03e8 0035 0004 0000")), 0.0)
    assert stack.drops == {DropReason.TRUNCATED: 1, DropReason.BAD_LENGTH: 1}


# --------------------------------------------------------------------- checksums


@pytest.mark.parametrize("size", [0, 1, 2, 3, 57, 1472, 5840])
def test_checksum_is_generated(size: int) -> None:
    stack, iface = host(US)
    stack.udp_socket().sendto(payload_of(size, seed=size), PEER, 9)
    header, segment = join(iface.take_output())
    assert segment[6:8] != b"\0\0"
    assert udp_checksum_ok(header.src, header.dst, segment)


def test_checksum_can_be_turned_off() -> None:
    stack, iface = host(US, udp_checksum=False)
    stack.udp_socket().sendto(b"no checksum", PEER, 9)
    [packet] = iface.take_output()
    assert parse(packet)[1][6:8] == b"\0\0"


def test_zero_checksum_is_accepted_on_input() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    packet = udp(PEER, US, 1000, 53, b"unchecked", checksum=False)
    assert parse(packet)[1][6:8] == b"\0\0"
    stack.receive(iface, packet, 0.0)
    assert sock.recvfrom() == (b"unchecked", (ip(PEER), 1000))


def test_computed_zero_checksum_is_sent_as_all_ones() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 4000)
    # find two data octets that make the sum come out as 0xffff: then the checksum computes to 0
    sock.sendto(b"\0\0", PEER, 9)
    [probe] = iface.take_output()
    probe_checksum = parse(probe)[1][6:8]
    sock.sendto(probe_checksum, PEER, 9)
    [packet] = iface.take_output()
    header, segment = parse(packet)
    assert segment[6:8] == b"\xff\xff"
    assert udp_checksum_ok(header.src, header.dst, segment)
    # and the receiver accepts 0xffff as a valid checksum
    receiver, r_iface = host(PEER)
    server = receiver.udp_socket()
    server.bind(PEER, 9)
    receiver.receive(r_iface, packet, 0.0)
    assert server.recvfrom() == (probe_checksum, (ip(US), 4000))


def test_checksum_is_verified_on_input() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 53)
    packet = bytearray(udp(PEER, US, 1000, 53, b"payload"))
    packet[-3] ^= 0x10
    stack.receive(iface, bytes(packet), 0.0)
    # the pseudo-header counts: the same segment claimed by another source fails
    wrong_source = udp(PEER, US, 1000, 53, b"payload")
    forged = ipv4("10.0.0.3", US, UDP, parse(wrong_source)[1])
    stack.receive(iface, forged, 0.0)
    assert sock.recvfrom() is None
    assert stack.drops == {DropReason.BAD_CHECKSUM: 2}
    assert iface.take_output() == []


# ---------------------------------------------------------------- big datagrams


@pytest.mark.parametrize("size", [5840, 65507])
@pytest.mark.parametrize("mtu", [576, 1500])
def test_big_datagrams_cross_through_fragmentation(size: int, mtu: int) -> None:
    net, a, _, b, _ = two_hosts(mtu=mtu)
    server = b.udp_socket()
    server.bind(PEER, 9)
    client = a.udp_socket()
    client.bind(US, 4000)
    data = payload_of(size, seed=mtu)
    client.sendto(data, PEER, 9)
    net.run_until(0.0)
    assert server.recvfrom() == (data, (ip(US), 4000))
    sent = net.sent_by("a0")
    assert len(sent) == -(-(size + 8) // ((mtu - 20) & ~7))
    assert all(len(p) <= mtu for p in sent)
    server.sendto(data[::-1], US, 4000)
    net.run_until(0.0)
    assert client.recvfrom() == (data[::-1], (ip(PEER), 9))
    assert a.counters()["reassembled"] == b.counters()["reassembled"] == 1


def test_big_datagram_to_a_closed_port_gets_one_error() -> None:
    net, a, a_if, b, _ = two_hosts()
    sock = a.udp_socket()
    sock.sendto(bytes(65507), PEER, 9)
    net.run_until(0.0)
    assert len(sock.errors) == 1
    assert b.counters()["icmp_errors_out"] == 1


def test_same_seed_same_socket_behaviour() -> None:
    def run(seed: int) -> list[bytes]:
        stack = Stack(random.Random(seed), StackConfig())
        iface = stack.add_interface(Interface("eth0", ip(US), prefix_len=24))
        for i in range(3):
            stack.udp_socket().sendto(bytes([i]) * 10, PEER, 9)
        return iface.take_output()

    assert run(5) == run(5)
    assert run(5) != run(6)
