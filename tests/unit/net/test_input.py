"""IPv4 input validation (RFC 791 §3.1, RFC 1122 §3.2.1): every drop counted with its reason."""

from __future__ import annotations

import pytest

from tests.unit.net.helpers import echo, host, ip, ipv4, parse_icmp, udp
from wipstack.errors import DropReason
from wipstack.net import Interface, Stack
from wipstack.wire.icmp import IcmpType

PEER = "10.0.0.2"
US = "10.0.0.1"


def checksum_fixed(packet: bytearray) -> bytes:
    """Recompute the header checksum of a (deliberately damaged) header."""
    hlen = (packet[0] & 0x0F) * 4
    packet[10:12] = b"\0\0"
    total = sum(int.from_bytes(packet[i : i + 2], "big") for i in range(0, hlen, 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    packet[10:12] = (~total & 0xFFFF).to_bytes(2, "big")
    return bytes(packet)


def receive_bound(stack: Stack, iface: Interface, packet: bytes) -> tuple[object, list[bytes]]:
    """Deliver ``packet`` with a socket bound to port 7000; what it received and what was sent."""
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    stack.receive(iface, packet, 0.0)
    return sock.recvfrom(), iface.take_output()


def good() -> bytes:
    return udp(PEER, US, 5000, 7000, b"hello")


def damaged(edit: str) -> bytes:
    packet = bytearray(good())
    if edit == "version6":
        packet[0] = 0x65
        return checksum_fixed(packet)
    if edit == "version0":
        packet[0] = 0x05
        return checksum_fixed(packet)
    if edit == "ihl4":
        packet[0] = 0x44
        return bytes(packet)  # the checksum cannot even be located: IHL is checked first
    if edit == "ihl0":
        packet[0] = 0x40
        return bytes(packet)
    if edit == "total_below_header":
        packet[2:4] = (19).to_bytes(2, "big")
        return checksum_fixed(packet)
    if edit == "total_above_received":
        packet[2:4] = (len(packet) + 1).to_bytes(2, "big")
        return checksum_fixed(packet)
    if edit == "checksum":
        packet[10] ^= 0x01
        return bytes(packet)
    if edit == "header_bit_flip":
        packet[8] ^= 0x40  # TTL changed, checksum not updated
        return bytes(packet)
    if edit == "truncated_header":
        return bytes(packet[:19])
    if edit == "empty":
        return b""
    if edit == "multicast_source":
        packet[12:16] = ip("224.0.0.5")
        return checksum_fixed(packet)
    if edit == "broadcast_source":
        packet[12:16] = ip("255.255.255.255")
        return checksum_fixed(packet)
    raise AssertionError(edit)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ("version6", DropReason.BAD_VERSION),
        ("version0", DropReason.BAD_VERSION),
        ("ihl4", DropReason.BAD_HEADER_LENGTH),
        ("ihl0", DropReason.BAD_HEADER_LENGTH),
        ("total_below_header", DropReason.BAD_LENGTH),
        ("total_above_received", DropReason.TRUNCATED),
        ("checksum", DropReason.BAD_CHECKSUM),
        ("header_bit_flip", DropReason.BAD_CHECKSUM),
        ("truncated_header", DropReason.TRUNCATED),
        ("empty", DropReason.TRUNCATED),
        ("multicast_source", DropReason.BAD_VALUE),
        ("broadcast_source", DropReason.BAD_VALUE),
    ],
)
def test_invalid_header_is_dropped_and_counted_with_its_reason(edit: str, reason: DropReason) -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    stack.receive(iface, damaged(edit), 0.0)
    assert sock.recvfrom() is None
    assert iface.take_output() == []  # no ICMP error about a datagram we could not trust
    assert stack.drops[reason] == 1
    assert iface.counters.drops[reason] == 1
    counters = stack.counters()
    assert counters[f"drop_{reason.name.lower()}"] == 1
    assert counters["datagrams_in"] == 1 and counters["delivered"] == 0
    assert sum(stack.drops.values()) == 1  # exactly one reason counted
    assert iface.counters.packets_in == 1


def test_a_valid_datagram_is_delivered_and_counted() -> None:
    stack, iface = host(US)
    got, out = receive_bound(stack, iface, good())
    assert got == (b"hello", (ip(PEER), 5000))
    assert out == []
    assert stack.counters()["delivered"] == 1
    assert not stack.drops
    assert iface.counters.bytes_in == len(good())


@pytest.mark.parametrize(
    "options",
    [
        b"\x01\x01\x01\x00",  # NOP NOP NOP EOL
        b"\x94\x04\x00\x00",  # Router Alert (RFC 2113)
        b"\x07\x07\x04\x00\x00\x00\x00\x00",  # Record Route with one empty slot
        b"\x44\x0c\x05\x00" + bytes(8),  # Timestamp
        bytes(40),  # 40 octets of End-of-Option-List
        b"\x82\x0b" + bytes(9) + b"\x00",  # Security (copied), 11 octets + EOL
        b"\xfe\x28" + bytes(38),  # an unknown option spanning all 40 octets
        b"\x07\x00\x00\x00",  # malformed: option length 0 (never interpreted, so harmless)
        b"\x07\xff\x00\x00",  # malformed: option length past the header
    ],
    ids=["nop", "router-alert", "record-route", "timestamp", "eol40", "security", "unknown40", "len0", "len255"],
)
def test_datagram_with_options_is_still_delivered(options: bytes) -> None:
    stack, iface = host(US)
    got, out = receive_bound(stack, iface, udp(PEER, US, 5000, 7000, b"with options", options=options))
    assert got == (b"with options", (ip(PEER), 5000))
    assert out == []
    assert not stack.drops


def test_echo_request_with_options_is_answered() -> None:
    stack, iface = host(US)
    stack.receive(iface, echo(PEER, US, 9, 3, b"opt", options=b"\x94\x04\x00\x00"), 0.0)
    [reply] = iface.take_output()
    header, icmp = parse_icmp(reply)
    assert icmp.type == IcmpType.ECHO_REPLY and icmp.payload == b"opt"
    assert header.dst == ip(PEER)


@pytest.mark.parametrize("padding", [b"\0", bytes(17), b"\xff" * 30, b"junk-after-total-length"])
def test_link_padding_after_total_length_is_ignored(padding: bytes) -> None:
    stack, iface = host(US)
    got, _ = receive_bound(stack, iface, good() + padding)
    assert got == (b"hello", (ip(PEER), 5000))
    assert not stack.drops


def test_padding_is_not_echoed_back() -> None:
    stack, iface = host(US)
    stack.receive(iface, echo(PEER, US, 1, 1, b"abc") + bytes(20), 0.0)
    [reply] = iface.take_output()
    assert parse_icmp(reply)[1].payload == b"abc"


def test_padding_is_not_quoted_in_icmp_errors() -> None:
    stack, iface = host(US)
    packet = udp(PEER, US, 5000, 9, b"")  # 28 octets, nothing listening on 9
    stack.receive(iface, packet + b"\xee" * 16, 0.0)
    [error] = iface.take_output()
    _, icmp = parse_icmp(error)
    assert icmp.payload == packet


@pytest.mark.parametrize("dst", ["10.0.0.7", "192.0.2.1", "10.0.1.1", "224.0.0.1", "239.255.255.250"])
def test_datagram_not_for_us_is_dropped_when_not_forwarding(dst: str) -> None:
    stack, iface = host(US)
    stack.routes.add_default("eth0")
    stack.receive(iface, udp(PEER, dst, 5000, 7000, b"x"), 0.0)
    assert stack.drops == {DropReason.NOT_FOR_US: 1}
    assert stack.counters()["drop_not_for_us"] == 1
    assert iface.take_output() == []
    assert stack.counters()["forwarded"] == 0


@pytest.mark.parametrize("dst", ["255.255.255.255", "10.0.0.255"])
def test_broadcast_datagrams_are_for_us(dst: str) -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind("0.0.0.0", 7000)
    stack.receive(iface, udp(PEER, dst, 5000, 7000, b"to all"), 0.0)
    assert sock.recvfrom() == (b"to all", (ip(PEER), 5000))


def test_directed_broadcast_of_a_point_to_point_link_does_not_exist() -> None:
    stack, iface = host(US, prefix_len=32, peer=PEER, name="ppp0")
    assert iface.broadcast is None
    stack.receive(iface, udp(PEER, "10.0.0.255", 5000, 7000, b"x"), 0.0)
    assert stack.drops[DropReason.NOT_FOR_US] == 1


def test_datagram_for_our_other_interface_address_is_delivered() -> None:
    stack, iface = host(US)
    stack.add_interface(Interface("eth1", ip("192.168.5.1"), prefix_len=24))
    sock = stack.udp_socket()
    sock.bind("192.168.5.1", 53)
    stack.receive(iface, udp(PEER, "192.168.5.1", 5000, 53, b"q"), 0.0)  # arrives on eth0
    assert sock.recvfrom() == (b"q", (ip(PEER), 5000))


@pytest.mark.parametrize("ttl", [0, 1])
def test_low_ttl_is_no_reason_to_drop_a_datagram_for_us(ttl: int) -> None:
    # RFC 1122 §3.2.1.7: a host MUST NOT discard a datagram just because its TTL is below 2
    stack, iface = host(US)
    got, _ = receive_bound(stack, iface, udp(PEER, US, 5000, 7000, b"t", ttl=ttl))
    assert got == (b"t", (ip(PEER), 5000))


def test_reserved_flag_is_ignored_on_input() -> None:
    packet = bytearray(good())
    packet[6] |= 0x80
    stack, iface = host(US)
    got, _ = receive_bound(stack, iface, checksum_fixed(packet))
    assert got is not None


def test_receive_accepts_bytearray_and_memoryview_and_an_interface_name() -> None:
    stack, iface = host(US)
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    stack.receive("eth0", bytearray(good()), 0.0)
    stack.receive(iface, memoryview(good()), 0.0)
    assert sock.pending == 2


def test_bad_transport_checksums_are_counted() -> None:
    stack, iface = host(US)
    bad_udp = bytearray(udp(PEER, US, 5000, 7000, b"hello"))
    bad_udp[-1] ^= 0xFF
    bad_icmp = bytearray(echo(PEER, US, 1, 1, b"ping"))
    bad_icmp[-1] ^= 0xFF
    sock = stack.udp_socket()
    sock.bind(US, 7000)
    stack.receive(iface, bytes(bad_udp), 0.0)
    stack.receive(iface, bytes(bad_icmp), 0.0)
    assert stack.drops[DropReason.BAD_CHECKSUM] == 2
    assert sock.recvfrom() is None
    assert iface.take_output() == []


def test_truncated_transport_headers_are_counted() -> None:
    stack, iface = host(US)
    stack.receive(iface, ipv4(PEER, US, 17, b"\x13\x88\x1b"), 0.0)  # 3 octets of UDP
    stack.receive(iface, ipv4(PEER, US, 1, b"\x08\x00\xf7"), 0.0)  # 3 octets of ICMP
    assert stack.drops[DropReason.TRUNCATED] == 2
    assert iface.take_output() == []
