"""IPv4 header: golden-bytes quartet (deconstruct / construct / parse / emit) and edge cases."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from construct import Container

from tests.helpers.construct_common import common
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.ipv4 import (
    IPV4_FLAGS_FRAGMENT,
    IPV4_HEADER,
    IPV4_VERSION_IHL,
    IpProtocol,
    Ipv4Repr,
    address,
)

SRC = bytes([192, 168, 1, 1])
DST = bytes([192, 168, 1, 2])

# a UDP datagram from 192.168.1.1 to 192.168.1.2, DF set, id 0x1234 (checksum cross-checked
# with a naive RFC 1071 sum; Wikipedia's 0xb861 example is test_known_checksum below)
HEADER_BYTES = bytes.fromhex("45000024123440004011a541c0a80101c0a80102")
PAYLOAD_BYTES = bytes.fromhex("c00000350010fc9a776970737461636b")
PACKET_BYTES = HEADER_BYTES + PAYLOAD_BYTES
PACKET_REPR = Ipv4Repr(SRC, DST, IpProtocol.UDP, ttl=64, identification=0x1234, dont_fragment=True)

# IHL 6 with a Router Alert option (RFC 2113), TOS 0xc0, TTL 1, protocol 2 (IGMP, not in IpProtocol)
OPTIONS_PACKET_BYTES = bytes.fromhex("46c000200000000001028258c0a80101e0000016940400000001020304050607")
OPTIONS_REPR = Ipv4Repr(SRC, bytes([224, 0, 0, 22]), 2, ttl=1, tos=0xC0, options=b"\x94\x04\x00\x00")

HEADER_CONTAINER = Container(
    version_ihl=Container(version=4, ihl=5),
    tos=0,
    total_length=36,
    identification=0x1234,
    flags_fragment=Container(reserved=False, dont_fragment=True, more_fragments=False, fragment_offset=0),
    ttl=64,
    protocol="UDP",
    checksum=0xA541,
    src=SRC,
    dst=DST,
    options=b"",
)


def with_checksum(header: bytes) -> bytes:
    """Recompute the header checksum of a hand-edited header (naive RFC 1071)."""
    header = header[:10] + b"\x00\x00" + header[12:]
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return header[:10] + (~total & 0xFFFF).to_bytes(2, "big") + header[12:]


def reason(packet: bytes, **kwargs: bool) -> DropReason:
    with pytest.raises(MalformedPacket) as info:
        Ipv4Repr.parse(packet, **kwargs)
    return info.value.reason


# ---- quartet ----


def test_deconstruct() -> None:
    header = IPV4_HEADER.parse(PACKET_BYTES)
    assert header.version_ihl.version == 4
    assert header.version_ihl.ihl == 5
    assert header.total_length == len(PACKET_BYTES)
    assert header.identification == 0x1234
    assert header.flags_fragment.dont_fragment
    assert not header.flags_fragment.more_fragments
    assert header.flags_fragment.fragment_offset == 0
    assert header.ttl == 64
    assert header.protocol == "UDP" and int(header.protocol) == IpProtocol.UDP
    assert header.checksum == 0xA541
    assert header.src == SRC and header.dst == DST
    assert header.options == b""


def test_construct() -> None:
    assert IPV4_HEADER.build(HEADER_CONTAINER) == HEADER_BYTES


def test_parse() -> None:
    repr_, payload = Ipv4Repr.parse(PACKET_BYTES)
    assert repr_ == PACKET_REPR
    assert payload == PAYLOAD_BYTES


def test_emit() -> None:
    # the payload is a slice of a 0xa5-filled buffer: only the slice may be copied
    buffer = bytearray(b"\xa5" * 64)
    buffer[8 : 8 + len(PAYLOAD_BYTES)] = PAYLOAD_BYTES
    assert PACKET_REPR.emit(memoryview(buffer)[8 : 8 + len(PAYLOAD_BYTES)]) == PACKET_BYTES


def test_declaration_common() -> None:
    common(IPV4_HEADER, HEADER_BYTES, HEADER_CONTAINER)
    common(IPV4_VERSION_IHL, b"\x46", Container(version=4, ihl=6), 1)
    flags = Container(reserved=False, dont_fragment=False, more_fragments=True, fragment_offset=185)
    common(IPV4_FLAGS_FRAGMENT, b"\x20\xb9", flags, 2)


def test_options_quartet() -> None:
    header = IPV4_HEADER.parse(OPTIONS_PACKET_BYTES)
    assert header.version_ihl.ihl == 6
    assert header.options == b"\x94\x04\x00\x00"
    assert int(header.protocol) == 2
    repr_, payload = Ipv4Repr.parse(OPTIONS_PACKET_BYTES)
    assert repr_ == OPTIONS_REPR
    assert payload == bytes(range(8))
    assert OPTIONS_REPR.emit(bytes(range(8))) == OPTIONS_PACKET_BYTES


def test_known_checksum() -> None:
    # the worked example of the IPv4 header checksum on Wikipedia
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    repr_, _ = Ipv4Repr.parse(header + bytes(0x73 - 20), verify_checksum=False)
    assert repr_.emit(bytes(0x73 - 20))[10:12] == b"\xb8\x61"


# ---- parse: accepted inputs ----


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_parse_buffer_kinds(kind: type) -> None:
    repr_, payload = Ipv4Repr.parse(kind(PACKET_BYTES))
    assert repr_ == PACKET_REPR
    assert isinstance(payload, memoryview)
    assert payload == PAYLOAD_BYTES


def test_parse_payload_is_a_view() -> None:
    packet = bytearray(PACKET_BYTES)
    _, payload = Ipv4Repr.parse(packet)
    packet[20] = 0x99
    assert payload[0] == 0x99


def test_parse_ignores_link_padding() -> None:
    repr_, payload = Ipv4Repr.parse(PACKET_BYTES + b"\xa5" * 10)
    assert repr_ == PACKET_REPR
    assert payload == PAYLOAD_BYTES


def test_parse_non_byte_memoryview() -> None:
    repr_, payload = Ipv4Repr.parse(memoryview(PACKET_BYTES).cast("H"))
    assert repr_ == PACKET_REPR
    assert payload == PAYLOAD_BYTES


def test_parse_unknown_protocol_is_an_int() -> None:
    repr_, _ = Ipv4Repr.parse(OPTIONS_PACKET_BYTES)
    assert repr_.protocol == 2
    assert not isinstance(repr_.protocol, IpProtocol)


def test_parse_known_protocol_is_the_enum() -> None:
    repr_, _ = Ipv4Repr.parse(PACKET_BYTES)
    assert repr_.protocol is IpProtocol.UDP


def test_parse_options_are_never_interpreted() -> None:
    # an option with a bogus length (0) and a lone kind octet: kept verbatim, not validated
    options = b"\x07\x00\x83\x01"
    header = with_checksum(b"\x46" + HEADER_BYTES[1:2] + (40).to_bytes(2, "big") + HEADER_BYTES[4:] + options)
    repr_, payload = Ipv4Repr.parse(header + PAYLOAD_BYTES)
    assert repr_.options == options
    assert payload == PAYLOAD_BYTES


def test_parse_reserved_flag_is_ignored() -> None:
    header = with_checksum(HEADER_BYTES[:6] + b"\xc0" + HEADER_BYTES[7:])
    repr_, _ = Ipv4Repr.parse(header + PAYLOAD_BYTES)
    assert repr_ == PACKET_REPR


def test_parse_fragment_fields() -> None:
    # MF set, offset 185 units = 1480 octets, 16 data octets (a multiple of 8)
    header = with_checksum(HEADER_BYTES[:6] + b"\x20\xb9" + HEADER_BYTES[8:])
    repr_, _ = Ipv4Repr.parse(header + PAYLOAD_BYTES)
    assert repr_.more_fragments and not repr_.dont_fragment
    assert repr_.fragment_offset == 1480


def test_parse_ttl_zero_is_accepted() -> None:
    # RFC 1122 §3.2.1.7: a host must not discard a datagram just because its TTL is below 2
    header = with_checksum(HEADER_BYTES[:8] + b"\x00" + HEADER_BYTES[9:])
    repr_, _ = Ipv4Repr.parse(header + PAYLOAD_BYTES)
    assert repr_.ttl == 0


def test_parse_without_checksum_verification() -> None:
    corrupt = HEADER_BYTES[:10] + b"\x00\x00" + HEADER_BYTES[12:] + PAYLOAD_BYTES
    assert reason(corrupt) is DropReason.BAD_CHECKSUM
    repr_, _ = Ipv4Repr.parse(corrupt, verify_checksum=False)
    assert repr_ == PACKET_REPR


# ---- parse: integrity ----


@pytest.mark.parametrize("length", [0, 1, 19])
def test_parse_truncated_header(length: int) -> None:
    assert reason(PACKET_BYTES[:length]) is DropReason.TRUNCATED


def test_parse_bad_version() -> None:
    assert reason(with_checksum(b"\x65" + HEADER_BYTES[1:]) + PAYLOAD_BYTES) is DropReason.BAD_VERSION


@pytest.mark.parametrize("ihl", [0, 4])
def test_parse_ihl_too_small(ihl: int) -> None:
    packet = with_checksum(bytes([0x40 | ihl]) + HEADER_BYTES[1:]) + PAYLOAD_BYTES
    assert reason(packet) is DropReason.BAD_HEADER_LENGTH


def test_parse_ihl_past_total_length() -> None:
    header = with_checksum(HEADER_BYTES[:2] + (20).to_bytes(2, "big") + HEADER_BYTES[4:])
    packet = with_checksum(b"\x46" + header[1:]) + PAYLOAD_BYTES
    assert reason(packet) is DropReason.BAD_LENGTH


def test_parse_total_length_below_header() -> None:
    packet = with_checksum(HEADER_BYTES[:2] + (19).to_bytes(2, "big") + HEADER_BYTES[4:]) + PAYLOAD_BYTES
    assert reason(packet) is DropReason.BAD_LENGTH


def test_parse_total_length_past_buffer() -> None:
    assert reason(PACKET_BYTES[:-1]) is DropReason.TRUNCATED


def test_parse_ihl_past_buffer() -> None:
    # IHL 15 and Total Length 60 on a 36-octet buffer
    packet = with_checksum(b"\x4f" + HEADER_BYTES[1:2] + (60).to_bytes(2, "big") + HEADER_BYTES[4:]) + PAYLOAD_BYTES
    assert reason(packet) is DropReason.TRUNCATED


def test_parse_bad_checksum_in_options() -> None:
    corrupt = bytearray(OPTIONS_PACKET_BYTES)
    corrupt[21] ^= 0x01
    assert reason(bytes(corrupt)) is DropReason.BAD_CHECKSUM


def test_parse_payload_is_not_covered_by_the_checksum() -> None:
    corrupt = bytearray(PACKET_BYTES)
    corrupt[-1] ^= 0xFF
    repr_, _ = Ipv4Repr.parse(corrupt)
    assert repr_ == PACKET_REPR


# ---- parse: sanity ----


def test_parse_non_final_fragment_not_multiple_of_8() -> None:
    packet = with_checksum(
        HEADER_BYTES[:2] + (35).to_bytes(2, "big") + HEADER_BYTES[4:6] + b"\x20\x00" + HEADER_BYTES[8:]
    )
    assert reason(packet + PAYLOAD_BYTES[:15]) is DropReason.BAD_VALUE


def test_parse_final_fragment_any_length() -> None:
    header = with_checksum(
        HEADER_BYTES[:2] + (35).to_bytes(2, "big") + HEADER_BYTES[4:6] + b"\x00\x01" + HEADER_BYTES[8:]
    )
    repr_, payload = Ipv4Repr.parse(header + PAYLOAD_BYTES[:15])
    assert repr_.fragment_offset == 8 and len(payload) == 15


def test_parse_fragment_past_65535() -> None:
    # offset 8191 units = 65528 octets + 16 data octets > 65535 ("ping of death")
    packet = with_checksum(HEADER_BYTES[:6] + b"\x1f\xff" + HEADER_BYTES[8:])
    assert reason(packet + PAYLOAD_BYTES) is DropReason.BAD_VALUE


@pytest.mark.parametrize("source", ["224.0.0.1", "239.255.255.255", "255.255.255.255"])
def test_parse_multicast_or_broadcast_source(source: str) -> None:
    packet = with_checksum(HEADER_BYTES[:12] + address(source) + HEADER_BYTES[16:]) + PAYLOAD_BYTES
    assert reason(packet) is DropReason.BAD_VALUE


def test_parse_multicast_destination_is_accepted() -> None:
    repr_, _ = Ipv4Repr.parse(OPTIONS_PACKET_BYTES)
    assert repr_.dst_address == IPv4Address("224.0.0.22")


# ---- emit ----


def test_emit_pads_options_with_zeros() -> None:
    repr_ = Ipv4Repr(SRC, DST, IpProtocol.UDP, options=b"\x01\x94\x04\x00\x00")
    assert repr_.header_len == 28
    packet = repr_.emit(b"xy")
    assert packet[0] == 0x47
    assert packet[20:28] == b"\x01\x94\x04\x00\x00\x00\x00\x00"
    parsed, payload = Ipv4Repr.parse(packet)
    assert parsed.options == b"\x01\x94\x04\x00\x00\x00\x00\x00"
    assert bytes(payload) == b"xy"


def test_emit_fragment_offset_in_units_of_8() -> None:
    packet = Ipv4Repr(SRC, DST, IpProtocol.UDP, more_fragments=True, fragment_offset=1480).emit(bytes(8))
    assert packet[6:8] == b"\x20\xb9"


def test_emit_header_len() -> None:
    assert PACKET_REPR.header_len == 20
    assert OPTIONS_REPR.header_len == 24


def test_emit_largest_datagram() -> None:
    packet = PACKET_REPR.emit(bytes(65535 - 20))
    assert len(packet) == 65535
    assert Ipv4Repr.parse(packet)[0] == PACKET_REPR


def test_emit_too_long() -> None:
    with pytest.raises(ValueError):
        PACKET_REPR.emit(bytes(65535 - 19))


@pytest.mark.parametrize("offset", [1, 4, -8, 65536])
def test_emit_bad_fragment_offset(offset: int) -> None:
    with pytest.raises(ValueError):
        Ipv4Repr(SRC, DST, IpProtocol.UDP, fragment_offset=offset).emit()


def test_emit_options_too_long() -> None:
    with pytest.raises(ValueError):
        Ipv4Repr(SRC, DST, IpProtocol.UDP, options=bytes(41)).emit()


@pytest.mark.parametrize(
    "field", [{"ttl": 256}, {"ttl": -1}, {"protocol": 256}, {"tos": 256}, {"identification": 65536}]
)
def test_emit_field_out_of_range(field: dict[str, int]) -> None:
    kwargs: dict[str, object] = {"protocol": IpProtocol.UDP, **field}
    with pytest.raises(ValueError):
        Ipv4Repr(SRC, DST, **kwargs).emit()  # type: ignore[arg-type]


@pytest.mark.parametrize("src", [b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_emit_bad_address_length(src: bytes) -> None:
    with pytest.raises(ValueError):
        Ipv4Repr(src, DST, IpProtocol.UDP).emit()


# ---- addresses ----


@pytest.mark.parametrize(
    "value", ["192.168.1.1", IPv4Address("192.168.1.1"), 0xC0A80101, SRC, bytearray(SRC), memoryview(SRC)]
)
def test_address_forms(value: str | int | IPv4Address | bytes) -> None:
    assert address(value) == SRC
    assert type(address(value)) is bytes


def test_address_wrong_length() -> None:
    with pytest.raises(ValueError):
        address(b"\x01\x02")


def test_address_properties() -> None:
    assert PACKET_REPR.src_address == IPv4Address("192.168.1.1")
    assert PACKET_REPR.dst_address == IPv4Address("192.168.1.2")


def test_repr_is_frozen_and_hashable() -> None:
    with pytest.raises(AttributeError):
        PACKET_REPR.ttl = 1  # type: ignore[misc]
    assert hash(PACKET_REPR) == hash(Ipv4Repr.parse(PACKET_BYTES)[0])
