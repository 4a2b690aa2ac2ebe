"""UDP: golden-bytes quartet and the RFC 768 checksum and length edge cases."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from construct import Container

from tests.helpers.construct_common import common
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.udp import UDP_HEADER, UdpRepr

SRC = bytes([192, 168, 1, 1])
DST = bytes([192, 168, 1, 2])

PAYLOAD_BYTES = b"wipstack"
PACKET_BYTES = bytes.fromhex("c00000350010fc9a") + PAYLOAD_BYTES
PACKET_REPR = UdpRepr(49152, 53)
HEADER_CONTAINER = Container(src_port=49152, dst_port=53, length=16, checksum=0xFC9A)

# a payload for which the checksum computes to zero, so 0xffff is sent (RFC 768)
ZERO_SUM_PAYLOAD = b"\xbc\x50"
ZERO_SUM_BYTES = bytes.fromhex("c0000035000affff") + ZERO_SUM_PAYLOAD


def reason(datagram: bytes, **kwargs: bool) -> DropReason:
    with pytest.raises(MalformedPacket) as info:
        UdpRepr.parse(datagram, src=SRC, dst=DST, **kwargs)
    return info.value.reason


# ---- quartet ----


def test_deconstruct() -> None:
    header = UDP_HEADER.parse(PACKET_BYTES)
    assert header.src_port == 49152
    assert header.dst_port == 53
    assert header.length == 16
    assert header.checksum == 0xFC9A


def test_construct() -> None:
    assert UDP_HEADER.build(HEADER_CONTAINER) + PAYLOAD_BYTES == PACKET_BYTES


def test_parse() -> None:
    repr_, payload = UdpRepr.parse(PACKET_BYTES, src=SRC, dst=DST)
    assert repr_ == PACKET_REPR
    assert payload == PAYLOAD_BYTES


def test_emit() -> None:
    buffer = bytearray(b"\xa5" * 32)
    buffer[4:12] = PAYLOAD_BYTES
    assert PACKET_REPR.emit(memoryview(buffer)[4:12], src=SRC, dst=DST) == PACKET_BYTES


def test_declaration_common() -> None:
    common(UDP_HEADER, PACKET_BYTES[:8], HEADER_CONTAINER, 8)


def test_known_vector() -> None:
    # the UDP example of smoltcp's wire tests (192.168.1.1 -> 192.168.1.2, port 48896 -> 53)
    datagram = UdpRepr(48896, 53).emit(b"\xaa\x00\x00\xff", src=SRC, dst=DST)
    assert datagram == bytes.fromhex("bf000035000c124daa0000ff")


# ---- checksum edge cases ----


def test_zero_checksum_is_sent_as_all_ones() -> None:
    assert PACKET_REPR.emit(ZERO_SUM_PAYLOAD, src=SRC, dst=DST) == ZERO_SUM_BYTES
    repr_, payload = UdpRepr.parse(ZERO_SUM_BYTES, src=SRC, dst=DST)
    assert repr_ == PACKET_REPR and payload == ZERO_SUM_PAYLOAD


def test_no_checksum_received_is_accepted() -> None:
    # RFC 768: an all-zero checksum field means the sender computed none
    datagram = PACKET_BYTES[:6] + b"\x00\x00" + b"not the same payload"[:8]
    repr_, payload = UdpRepr.parse(datagram, src=SRC, dst=DST)
    assert repr_ == PACKET_REPR
    assert bytes(payload) == b"not the "


def test_checksum_omitted_on_emit() -> None:
    datagram = PACKET_REPR.emit(PAYLOAD_BYTES, src=SRC, dst=DST, checksum=False)
    assert datagram == PACKET_BYTES[:6] + b"\x00\x00" + PAYLOAD_BYTES


def test_bad_checksum() -> None:
    corrupt = bytearray(PACKET_BYTES)
    corrupt[-1] ^= 0x01
    assert reason(bytes(corrupt)) is DropReason.BAD_CHECKSUM
    repr_, _ = UdpRepr.parse(bytes(corrupt), src=SRC, dst=DST, verify_checksum=False)
    assert repr_ == PACKET_REPR


def test_checksum_covers_the_pseudo_header() -> None:
    with pytest.raises(MalformedPacket) as info:
        UdpRepr.parse(PACKET_BYTES, src=SRC, dst=bytes([192, 168, 1, 3]))
    assert info.value.reason is DropReason.BAD_CHECKSUM


def test_odd_length_payload() -> None:
    datagram = PACKET_REPR.emit(b"abc", src=SRC, dst=DST)
    repr_, payload = UdpRepr.parse(datagram, src=SRC, dst=DST)
    assert repr_ == PACKET_REPR and bytes(payload) == b"abc"


# ---- length edge cases ----


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_parse_buffer_kinds(kind: type) -> None:
    repr_, payload = UdpRepr.parse(kind(PACKET_BYTES), src=SRC, dst=DST)
    assert repr_ == PACKET_REPR
    assert isinstance(payload, memoryview) and payload == PAYLOAD_BYTES


def test_parse_payload_is_a_view() -> None:
    datagram = bytearray(PACKET_BYTES)
    _, payload = UdpRepr.parse(datagram, src=SRC, dst=DST)
    datagram[8] = 0x00
    assert payload[0] == 0x00


@pytest.mark.parametrize("length", [0, 1, 7])
def test_parse_truncated_header(length: int) -> None:
    assert reason(PACKET_BYTES[:length]) is DropReason.TRUNCATED


@pytest.mark.parametrize("length_field", [0, 7])
def test_parse_impossible_length(length_field: int) -> None:
    datagram = PACKET_BYTES[:4] + length_field.to_bytes(2, "big") + b"\x00\x00" + PAYLOAD_BYTES
    assert reason(datagram) is DropReason.BAD_LENGTH


def test_parse_length_past_buffer() -> None:
    assert reason(PACKET_BYTES[:-1]) is DropReason.TRUNCATED


def test_parse_ignores_octets_past_length() -> None:
    repr_, payload = UdpRepr.parse(PACKET_BYTES + b"\xa5\xa5\xa5", src=SRC, dst=DST)
    assert repr_ == PACKET_REPR
    assert payload == PAYLOAD_BYTES


def test_parse_header_only() -> None:
    datagram = PACKET_REPR.emit(b"", src=SRC, dst=DST)
    assert len(datagram) == 8
    repr_, payload = UdpRepr.parse(datagram, src=SRC, dst=DST)
    assert repr_ == PACKET_REPR and len(payload) == 0


# ---- sanity ----


def test_parse_destination_port_zero() -> None:
    datagram = UdpRepr(49152, 0).emit(PAYLOAD_BYTES, src=SRC, dst=DST)
    assert reason(datagram) is DropReason.BAD_VALUE


def test_parse_source_port_zero_is_accepted() -> None:
    # RFC 768: the source port is optional; zero means "none"
    datagram = UdpRepr(0, 53).emit(PAYLOAD_BYTES, src=SRC, dst=DST)
    repr_, _ = UdpRepr.parse(datagram, src=SRC, dst=DST)
    assert repr_ == UdpRepr(0, 53)


# ---- emit ----


def test_emit_largest_datagram() -> None:
    datagram = PACKET_REPR.emit(bytes(65535 - 8), src=SRC, dst=DST)
    assert datagram[4:6] == b"\xff\xff"
    assert UdpRepr.parse(datagram, src=SRC, dst=DST)[0] == PACKET_REPR


def test_emit_too_long() -> None:
    with pytest.raises(ValueError):
        PACKET_REPR.emit(bytes(65535 - 7), src=SRC, dst=DST)


@pytest.mark.parametrize(("src_port", "dst_port"), [(-1, 53), (65536, 53), (53, 65536)])
def test_emit_port_out_of_range(src_port: int, dst_port: int) -> None:
    with pytest.raises(ValueError):
        UdpRepr(src_port, dst_port).emit(b"", src=SRC, dst=DST)


def test_emit_bad_address_length() -> None:
    with pytest.raises(ValueError):
        PACKET_REPR.emit(b"", src=SRC[:3], dst=DST)


def test_emit_rejects_ipv4address_objects() -> None:
    # one address representation across the wire modules: 4-octet bytes
    with pytest.raises(TypeError):
        PACKET_REPR.emit(b"", src=IPv4Address("192.168.1.1"), dst=DST)  # type: ignore[arg-type]


def test_header_len() -> None:
    assert PACKET_REPR.header_len == 8
