"""ICMP: golden-bytes quartet per message shape, convenience constructors, accessors, edge cases."""

from __future__ import annotations

import pytest
from construct import Container

from tests.helpers.construct_common import common
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.icmp import (
    ICMP_ECHO_REST,
    ICMP_FRAG_NEEDED_REST,
    ICMP_HEADER,
    ICMP_PARAMETER_PROBLEM_REST,
    ICMP_REDIRECT_REST,
    ICMP_TIMESTAMP_DATA,
    IcmpRepr,
    IcmpType,
    ParameterProblemCode,
    TimeExceededCode,
    UnreachableCode,
)

ECHO_DATA = b"ping data 123456"
ECHO_BYTES = bytes.fromhex("08005a5042420007") + ECHO_DATA
ECHO_REPR = IcmpRepr(IcmpType.ECHO_REQUEST, 0, 0x42420007, ECHO_DATA)

# the IPv4/UDP datagram of test_ipv4 (header 20 octets + UDP 16 octets)
ORIGINAL = bytes.fromhex("45000024123440004011a541c0a80101c0a80102c00000350010fc9a776970737461636b")
ORIGINAL_QUOTED = ORIGINAL[:28]
UNREACHABLE_BYTES = bytes.fromhex("0303401c00000000") + ORIGINAL_QUOTED
UNREACHABLE_REPR = IcmpRepr(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, 0, ORIGINAL_QUOTED)
FRAG_NEEDED_BYTES = bytes.fromhex("03043aa300000578") + ORIGINAL_QUOTED


def reason(message: bytes, **kwargs: bool) -> DropReason:
    with pytest.raises(MalformedPacket) as info:
        IcmpRepr.parse(message, **kwargs)
    return info.value.reason


def fix_checksum(message: bytes) -> bytes:
    """Recompute the checksum of a hand-edited message (naive RFC 1071)."""
    message = message[:2] + b"\x00\x00" + message[4:]
    padded = message + b"\x00" * (len(message) & 1)
    total = sum(int.from_bytes(padded[i : i + 2], "big") for i in range(0, len(padded), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return message[:2] + (~total & 0xFFFF).to_bytes(2, "big") + message[4:]


# ---- quartet: echo ----


def test_deconstruct() -> None:
    header = ICMP_HEADER.parse(ECHO_BYTES)
    assert header.type == "ECHO_REQUEST" and int(header.type) == IcmpType.ECHO_REQUEST
    assert header.code == 0
    assert header.checksum == 0x5A50
    rest = ICMP_ECHO_REST.parse(ECHO_BYTES[4:8])
    assert rest.identifier == 0x4242 and rest.sequence == 7


def test_construct() -> None:
    header = Container(type="ECHO_REQUEST", code=0, checksum=0x5A50, rest=0x42420007)
    assert ICMP_HEADER.build(header) + ECHO_DATA == ECHO_BYTES


def test_parse() -> None:
    assert IcmpRepr.parse(ECHO_BYTES) == ECHO_REPR


def test_emit() -> None:
    assert ECHO_REPR.emit() == ECHO_BYTES
    assert IcmpRepr.echo(0x4242, 7, ECHO_DATA).emit() == ECHO_BYTES


def test_declarations_common() -> None:
    common(ICMP_HEADER, ECHO_BYTES[:8], Container(type="ECHO_REQUEST", code=0, checksum=0x5A50, rest=0x42420007), 8)
    common(ICMP_ECHO_REST, b"\x42\x42\x00\x07", Container(identifier=0x4242, sequence=7), 4)
    common(ICMP_FRAG_NEEDED_REST, b"\x00\x00\x05\x78", Container(unused=0, next_hop_mtu=1400), 4)
    common(ICMP_PARAMETER_PROBLEM_REST, b"\x08\x00\x00\x00", Container(pointer=8, unused=b"\0\0\0"), 4)
    common(ICMP_REDIRECT_REST, b"\xc0\xa8\x01\xfe", Container(gateway=b"\xc0\xa8\x01\xfe"), 4)
    common(
        ICMP_TIMESTAMP_DATA,
        bytes(range(12)),
        Container(originate=0x010203, receive=0x04050607, transmit=0x08090A0B),
        12,
    )


def test_declaration_unknown_type() -> None:
    assert int(ICMP_HEADER.parse(b"\x2a\x00\x00\x00\x00\x00\x00\x00").type) == 42


# ---- quartet: errors ----


def test_unreachable_quartet() -> None:
    header = ICMP_HEADER.parse(UNREACHABLE_BYTES)
    assert header.type == "DEST_UNREACHABLE" and header.code == UnreachableCode.PORT
    assert IcmpRepr.parse(UNREACHABLE_BYTES) == UNREACHABLE_REPR
    assert UNREACHABLE_REPR.emit() == UNREACHABLE_BYTES
    assert IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, ORIGINAL) == UNREACHABLE_REPR


def test_frag_needed_quartet() -> None:
    assert ICMP_FRAG_NEEDED_REST.parse(FRAG_NEEDED_BYTES[4:8]).next_hop_mtu == 1400
    parsed = IcmpRepr.parse(FRAG_NEEDED_BYTES)
    assert parsed.next_hop_mtu == 1400
    built = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED, ORIGINAL, mtu=1400)
    assert built == parsed
    assert built.emit() == FRAG_NEEDED_BYTES


def test_parameter_problem_pointer() -> None:
    built = IcmpRepr.error(IcmpType.PARAMETER_PROBLEM, ParameterProblemCode.POINTER, ORIGINAL, pointer=8)
    assert built.rest == 0x08000000
    assert built.pointer == 8
    parsed = IcmpRepr.parse(built.emit())
    assert parsed == built
    assert ICMP_PARAMETER_PROBLEM_REST.parse(built.emit()[4:8]).pointer == 8


def test_time_exceeded() -> None:
    built = IcmpRepr.error(IcmpType.TIME_EXCEEDED, TimeExceededCode.REASSEMBLY_TIMEOUT, ORIGINAL)
    assert built.is_error
    assert built.rest == 0
    assert IcmpRepr.parse(built.emit()) == built


# ---- convenience constructors and accessors ----


def test_echo_reply() -> None:
    reply = IcmpRepr.echo(1, 2, b"abc", reply=True)
    assert reply.type is IcmpType.ECHO_REPLY
    assert (reply.echo_ident, reply.echo_seq) == (1, 2)
    assert reply.payload == b"abc"


def test_echo_accepts_memoryview_data() -> None:
    echo = IcmpRepr.echo(1, 2, memoryview(b"abc"))
    assert type(echo.payload) is bytes


@pytest.mark.parametrize(("ident", "seq"), [(-1, 0), (0, 65536), (65536, 0)])
def test_echo_out_of_range(ident: int, seq: int) -> None:
    with pytest.raises(ValueError):
        IcmpRepr.echo(ident, seq)


def test_accessors_on_echo() -> None:
    assert ECHO_REPR.echo_ident == 0x4242
    assert ECHO_REPR.echo_seq == 7
    assert ECHO_REPR.next_hop_mtu is None
    assert ECHO_REPR.pointer is None
    assert not ECHO_REPR.is_error


def test_accessors_on_timestamp() -> None:
    timestamp = IcmpRepr(IcmpType.TIMESTAMP, 0, 0x00050006, bytes(12))
    assert (timestamp.echo_ident, timestamp.echo_seq) == (5, 6)


def test_accessors_on_errors() -> None:
    assert UNREACHABLE_REPR.echo_ident is None
    assert UNREACHABLE_REPR.echo_seq is None
    assert UNREACHABLE_REPR.next_hop_mtu is None  # code PORT carries no MTU
    assert UNREACHABLE_REPR.is_error


def test_frag_needed_from_old_router() -> None:
    # RFC 1191 §5: routers that predate it leave the field zero
    built = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED, ORIGINAL)
    assert built.next_hop_mtu == 0


def test_error_quotes_header_and_8_octets() -> None:
    built = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PROTOCOL, ORIGINAL + b"\xa5" * 4)
    assert built.payload == ORIGINAL[:28]


def test_error_quotes_the_option_header_whole() -> None:
    with_options = bytes.fromhex("46c000200000000001028258c0a80101e0000016940400000001020304050607")
    built = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PROTOCOL, with_options)
    assert built.payload == with_options[:32]


def test_error_stops_at_total_length() -> None:
    # a 24-octet datagram (4 data octets) followed by 0xa5 link padding
    short = bytes.fromhex("45000018000000004011f7c6c0a80101c0a80102") + b"abcd"
    built = IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, short + b"\xa5" * 8)
    assert built.payload == short


@pytest.mark.parametrize(
    "icmp_type", [IcmpType.ECHO_REQUEST, IcmpType.REDIRECT, IcmpType.SOURCE_QUENCH, IcmpType.TIMESTAMP]
)
def test_error_rejects_non_host_error_types(icmp_type: IcmpType) -> None:
    with pytest.raises(ValueError):
        IcmpRepr.error(icmp_type, 0, ORIGINAL)


def test_error_mtu_only_for_frag_needed() -> None:
    with pytest.raises(ValueError):
        IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, ORIGINAL, mtu=1400)
    with pytest.raises(ValueError):
        IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED, ORIGINAL, mtu=65536)


def test_error_pointer_only_for_parameter_problem() -> None:
    with pytest.raises(ValueError):
        IcmpRepr.error(IcmpType.TIME_EXCEEDED, 0, ORIGINAL, pointer=1)
    with pytest.raises(ValueError):
        IcmpRepr.error(IcmpType.PARAMETER_PROBLEM, 0, ORIGINAL, pointer=256)


@pytest.mark.parametrize(
    "original",
    [b"", ORIGINAL[:19], b"\x65" + ORIGINAL[1:], b"\x44" + ORIGINAL[1:], b"\x46" + ORIGINAL[1:23]],
)
def test_error_rejects_non_ipv4_original(original: bytes) -> None:
    with pytest.raises(ValueError):
        IcmpRepr.error(IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT, original)


# ---- parse: edge cases ----


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_parse_buffer_kinds(kind: type) -> None:
    parsed = IcmpRepr.parse(kind(ECHO_BYTES))
    assert parsed == ECHO_REPR
    assert type(parsed.payload) is bytes


@pytest.mark.parametrize("length", [0, 1, 7])
def test_parse_truncated(length: int) -> None:
    assert reason(ECHO_BYTES[:length]) is DropReason.TRUNCATED


def test_parse_header_only() -> None:
    message = IcmpRepr.echo(1, 1).emit()
    assert len(message) == 8
    assert IcmpRepr.parse(message).payload == b""


def test_parse_odd_length() -> None:
    message = IcmpRepr.echo(1, 1, b"abc").emit()
    assert IcmpRepr.parse(message).payload == b"abc"


def test_parse_bad_checksum() -> None:
    corrupt = bytearray(ECHO_BYTES)
    corrupt[-1] ^= 0x10
    assert reason(bytes(corrupt)) is DropReason.BAD_CHECKSUM
    assert IcmpRepr.parse(bytes(corrupt), verify_checksum=False).payload == bytes(corrupt[8:])


def test_parse_unknown_type() -> None:
    parsed = IcmpRepr.parse(fix_checksum(b"\x2a\x07\x00\x00\x00\x00\x00\x01xyz"))
    assert parsed.type == 42 and not isinstance(parsed.type, IcmpType)
    assert parsed.code == 7 and parsed.rest == 1 and parsed.payload == b"xyz"


def test_parse_error_with_short_original() -> None:
    message = fix_checksum(UNREACHABLE_BYTES[: 8 + 19])
    assert reason(message) is DropReason.TRUNCATED


def test_parse_error_with_non_ipv4_original() -> None:
    message = fix_checksum(UNREACHABLE_BYTES[:8] + b"\x60" + UNREACHABLE_BYTES[9:])
    assert reason(message) is DropReason.BAD_VALUE


def test_parse_error_with_bad_original_ihl() -> None:
    message = fix_checksum(UNREACHABLE_BYTES[:8] + b"\x43" + UNREACHABLE_BYTES[9:])
    assert reason(message) is DropReason.BAD_VALUE


def test_parse_error_with_truncated_original_options() -> None:
    # IHL 7 (28 octets) but only 24 octets quoted
    message = fix_checksum(UNREACHABLE_BYTES[:8] + b"\x47" + UNREACHABLE_BYTES[9:32])
    assert reason(message) is DropReason.TRUNCATED


def test_parse_error_with_header_only_original() -> None:
    message = fix_checksum(UNREACHABLE_BYTES[:28])
    assert IcmpRepr.parse(message).payload == ORIGINAL[:20]


@pytest.mark.parametrize("length", [0, 11, 13])
def test_parse_timestamp_bad_length(length: int) -> None:
    message = fix_checksum(b"\x0d\x00\x00\x00\x00\x01\x00\x01" + bytes(length))
    assert reason(message) is DropReason.BAD_LENGTH


def test_parse_timestamp() -> None:
    message = IcmpRepr(IcmpType.TIMESTAMP_REPLY, 0, 0x00010002, bytes(range(12))).emit()
    parsed = IcmpRepr.parse(message)
    assert parsed.type is IcmpType.TIMESTAMP_REPLY
    assert ICMP_TIMESTAMP_DATA.parse(parsed.payload).transmit == 0x08090A0B


def test_parse_echo_with_nonzero_code_is_accepted() -> None:
    parsed = IcmpRepr.parse(fix_checksum(b"\x08\x05" + ECHO_BYTES[2:]))
    assert parsed.code == 5


# ---- emit ----


def test_emit_checksum_of_all_zero_message() -> None:
    # the sum is zero, so the checksum field is all ones (a zero field would not verify)
    message = IcmpRepr(0, 0, 0, b"").emit()
    assert message == b"\x00\x00\xff\xff\x00\x00\x00\x00"
    assert IcmpRepr.parse(message) == IcmpRepr(IcmpType.ECHO_REPLY, 0)


@pytest.mark.parametrize(("icmp_type", "code", "rest"), [(256, 0, 0), (0, 256, 0), (0, 0, 1 << 32), (-1, 0, 0)])
def test_emit_out_of_range(icmp_type: int, code: int, rest: int) -> None:
    with pytest.raises(ValueError):
        IcmpRepr(icmp_type, code, rest).emit()


def test_repr_is_hashable() -> None:
    assert hash(IcmpRepr.parse(ECHO_BYTES)) == hash(ECHO_REPR)
