"""TCP: golden-bytes quartets (SYN with options, data with timestamps, bare ACK), options, edges."""

from __future__ import annotations

import pytest
from construct import Container, ListContainer

from tests.helpers.construct_common import common
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.tcp import (
    SACK_BLOCK,
    TCP_HEADER,
    TCP_OFFSET_FLAGS,
    TCP_OPTION,
    TCP_OPTIONS,
    TcpFlags,
    TcpOptionKind,
    TcpOptions,
    TcpRepr,
)

SRC = bytes([192, 168, 1, 1])
DST = bytes([192, 168, 1, 2])

# SYN as Linux sends it: MSS, SACK-Permitted + Timestamps, NOP + Window Scale
SYN_OPTIONS_BYTES = bytes.fromhex("020405b40402080a112233440000000001030307")
SYN_BYTES = bytes.fromhex("c00000500102030400000000a002faf0c0fe0000") + SYN_OPTIONS_BYTES
SYN_OPTIONS = TcpOptions(mss=1460, window_scale=7, sack_permitted=True, timestamps=(0x11223344, 0))
SYN_REPR = TcpRepr(49152, 80, 0x01020304, 0, TcpFlags.SYN, 64240, options=SYN_OPTIONS)

# PSH|ACK data segment with NOP NOP Timestamps
DATA_PAYLOAD = b"GET / HTTP/1.0\r\n\r\n"
DATA_BYTES = bytes.fromhex("c000005001020305a0b0c0d0801801f6977a00000101080a1122335599887766") + DATA_PAYLOAD
DATA_REPR = TcpRepr(
    49152,
    80,
    0x01020305,
    0xA0B0C0D0,
    TcpFlags.PSH | TcpFlags.ACK,
    502,
    options=TcpOptions(timestamps=(0x11223355, 0x99887766)),
)

# bare ACK from 192.168.1.2 back to 192.168.1.1, no options
ACK_BYTES = bytes.fromhex("0050c000a0b0c0d0010203175010721094850000")
ACK_REPR = TcpRepr(80, 49152, 0xA0B0C0D0, 0x01020317, TcpFlags.ACK, 0x7210)

SYN_HEADER = Container(
    src_port=49152,
    dst_port=80,
    seq=0x01020304,
    ack=0,
    offset_flags=Container(
        data_offset=10,
        reserved=0,
        cwr=False,
        ece=False,
        urg=False,
        ack=False,
        psh=False,
        rst=False,
        syn=True,
        fin=False,
    ),
    window=64240,
    checksum=0xC0FE,
    urgent=0,
    options=SYN_OPTIONS_BYTES,
)
SYN_OPTIONS_CONTAINER = ListContainer(
    [
        Container(kind=TcpOptionKind.MSS, value=1460),
        Container(kind=TcpOptionKind.SACK_PERMITTED, value=None),
        Container(kind=TcpOptionKind.TIMESTAMPS, value=Container(tsval=0x11223344, tsecr=0)),
        Container(kind=TcpOptionKind.NOP, value=None),
        Container(kind=TcpOptionKind.WINDOW_SCALE, value=7),
    ]
)


def reason(segment: bytes, *, src: bytes = SRC, dst: bytes = DST, verify_checksum: bool = True) -> DropReason:
    with pytest.raises(MalformedPacket) as info:
        TcpRepr.parse(segment, src=src, dst=dst, verify_checksum=verify_checksum)
    return info.value.reason


def option_reason(options: bytes) -> DropReason:
    with pytest.raises(MalformedPacket) as info:
        TcpOptions.parse(options)
    return info.value.reason


def segment_with(options: bytes, flags: int = 0x10, payload: bytes = b"", reserved: int = 0) -> bytes:
    """A checksummed segment carrying raw (possibly malformed) ``options``, padded to 4."""
    options = options + b"\x00" * (-len(options) % 4)
    offset = (20 + len(options)) // 4
    header = ACK_BYTES[:12] + bytes([offset << 4 | reserved, flags]) + ACK_BYTES[14:16] + b"\x00\x00" + ACK_BYTES[18:20]
    segment = header + options + payload
    padded = segment + b"\x00" * (len(segment) & 1)
    total = sum(SRC[i] << 8 | SRC[i + 1] for i in (0, 2)) + sum(DST[i] << 8 | DST[i + 1] for i in (0, 2))
    total += 6 + len(segment) + sum(int.from_bytes(padded[i : i + 2], "big") for i in range(0, len(padded), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return segment[:16] + (~total & 0xFFFF).to_bytes(2, "big") + segment[18:]


# ---- quartets ----


def test_deconstruct() -> None:
    header = TCP_HEADER.parse(SYN_BYTES)
    assert (header.src_port, header.dst_port) == (49152, 80)
    assert header.seq == 0x01020304 and header.ack == 0
    assert header.offset_flags.data_offset == 10
    assert header.offset_flags.syn and not header.offset_flags.ack
    assert header.window == 64240
    assert header.checksum == 0xC0FE
    assert header.options == SYN_OPTIONS_BYTES
    assert TCP_OPTIONS.parse(header.options) == SYN_OPTIONS_CONTAINER


def test_construct() -> None:
    assert TCP_HEADER.build(SYN_HEADER) == SYN_BYTES
    assert TCP_OPTIONS.build(SYN_OPTIONS_CONTAINER) == SYN_OPTIONS_BYTES


def test_parse() -> None:
    assert TcpRepr.parse(SYN_BYTES, src=SRC, dst=DST) == (SYN_REPR, memoryview(b""))
    repr_, payload = TcpRepr.parse(DATA_BYTES, src=SRC, dst=DST)
    assert repr_ == DATA_REPR and payload == DATA_PAYLOAD
    repr_, payload = TcpRepr.parse(ACK_BYTES, src=DST, dst=SRC)
    assert repr_ == ACK_REPR and len(payload) == 0


def test_emit() -> None:
    buffer = bytearray(b"\xa5" * 64)
    buffer[10 : 10 + len(DATA_PAYLOAD)] = DATA_PAYLOAD
    view = memoryview(buffer)[10 : 10 + len(DATA_PAYLOAD)]
    assert SYN_REPR.emit(src=SRC, dst=DST) == SYN_BYTES
    assert DATA_REPR.emit(view, src=SRC, dst=DST) == DATA_BYTES
    assert ACK_REPR.emit(src=DST, dst=SRC) == ACK_BYTES


def test_declarations_common() -> None:
    common(TCP_HEADER, SYN_BYTES, SYN_HEADER)
    common(TCP_OFFSET_FLAGS, b"\x50\x12", Container(SYN_HEADER.offset_flags, data_offset=5, ack=True), 2)
    common(SACK_BLOCK, bytes(range(8)), Container(left=0x00010203, right=0x04050607), 8)
    common(TCP_OPTIONS, SYN_OPTIONS_BYTES, SYN_OPTIONS_CONTAINER)
    common(TCP_OPTION, b"\x01", Container(kind=TcpOptionKind.NOP, value=None))
    sack = Container(kind=TcpOptionKind.SACK, value=ListContainer([Container(left=1, right=2)]))
    common(TCP_OPTION, bytes.fromhex("050a0000000100000002"), sack)
    common(TCP_OPTION, b"\x22\x04ab", Container(kind=34, value=b"ab"))


# ---- options: parse ----


def test_options_empty() -> None:
    assert TcpOptions.parse(b"") == TcpOptions()


def test_options_timestamp_fast_path_equals_general_path() -> None:
    # the same option in another layout goes through the general loop
    fast = TcpOptions.parse(bytes.fromhex("0101080a1122335599887766"))
    general = TcpOptions.parse(bytes.fromhex("080a112233559988776601010000"))
    assert fast == general == TcpOptions(timestamps=(0x11223355, 0x99887766))


def test_options_eol_ends_the_list() -> None:
    # after EOL everything is padding, even octets that would be malformed options
    assert TcpOptions.parse(b"\x02\x04\x05\xb4\x00\x02\x00\xff") == TcpOptions(mss=1460)


def test_options_nops_only() -> None:
    assert TcpOptions.parse(b"\x01\x01\x01\x01") == TcpOptions()


def test_options_unknown_kept_in_order() -> None:
    parsed = TcpOptions.parse(b"\x22\x02\x1e\x05abc\x01")
    assert parsed.unknown == ((34, b""), (30, b"abc"))


def test_options_sack_blocks() -> None:
    data = bytes.fromhex("0101051a") + bytes(range(24))
    parsed = TcpOptions.parse(data)
    assert parsed.sack_blocks == ((0x00010203, 0x04050607), (0x08090A0B, 0x0C0D0E0F), (0x10111213, 0x14151617))


def test_options_window_scale_above_14_is_kept_raw() -> None:
    # RFC 7323 §2.3: the TCP layer logs it and uses 14; the wire layer reports what came
    assert TcpOptions.parse(b"\x01\x03\x03\x0f").window_scale == 15


def test_options_repeated_option_last_wins() -> None:
    assert TcpOptions.parse(b"\x02\x04\x05\xb4\x02\x04\x02\x18").mss == 536


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(b"\x02", id="kind-without-length"),
        pytest.param(b"\x01\x01\x01\x08", id="trailing-kind-without-length"),
        pytest.param(b"\x22\x00", id="length-0"),
        pytest.param(b"\x22\x01", id="length-1"),
        pytest.param(b"\x22\x05ab", id="length-past-end"),
        pytest.param(b"\x02\x03\x05", id="mss-length-3"),
        pytest.param(b"\x02\x06\x05\xb4\x00\x00", id="mss-length-6"),
        pytest.param(b"\x03\x04\x07\x00", id="wscale-length-4"),
        pytest.param(b"\x04\x03\x00", id="sack-permitted-length-3"),
        pytest.param(b"\x05\x02", id="sack-no-blocks"),
        pytest.param(b"\x05\x06abcd", id="sack-half-block"),
        pytest.param(b"\x05\x0babcdefgh\x00", id="sack-length-11"),
        pytest.param(b"\x08\x08abcdef", id="timestamps-length-8"),
    ],
)
def test_options_malformed(options: bytes) -> None:
    assert option_reason(options) is DropReason.BAD_OPTION


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_options_buffer_kinds(kind: type) -> None:
    assert TcpOptions.parse(kind(SYN_OPTIONS_BYTES)) == SYN_OPTIONS


# ---- options: emit ----


@pytest.mark.parametrize(
    ("options", "encoded"),
    [
        (TcpOptions(), ""),
        (TcpOptions(mss=536), "02040218"),
        (TcpOptions(timestamps=(1, 2)), "0101080a0000000100000002"),
        (TcpOptions(sack_permitted=True), "01010402"),
        (TcpOptions(sack_permitted=True, timestamps=(1, 2)), "0402080a0000000100000002"),
        (TcpOptions(window_scale=14), "0103030e"),
        (TcpOptions(sack_blocks=((1, 2),)), "0101050a0000000100000002"),
        (TcpOptions(unknown=((34, b"abc"),)), "2205616263010101"),
        (TcpOptions(unknown=((30, b""),)), "1e020101"),
    ],
)
def test_options_emit_layout(options: TcpOptions, encoded: str) -> None:
    assert options.emit().hex() == encoded
    assert TcpOptions.parse(options.emit()) == options


def test_options_emit_syn_layout() -> None:
    assert SYN_OPTIONS.emit() == SYN_OPTIONS_BYTES


def test_options_emit_timestamps_and_three_sack_blocks_fill_40_octets() -> None:
    options = TcpOptions(timestamps=(1, 2), sack_blocks=((1, 2), (3, 4), (5, 6)))
    assert len(options.emit()) == 40
    assert TcpOptions.parse(options.emit()) == options


def test_options_emit_too_long() -> None:
    with pytest.raises(ValueError):
        TcpOptions(timestamps=(1, 2), sack_blocks=((1, 2), (3, 4), (5, 6), (7, 8))).emit()


@pytest.mark.parametrize(
    "options",
    [
        TcpOptions(mss=65536),
        TcpOptions(mss=-1),
        TcpOptions(window_scale=256),
        TcpOptions(timestamps=(1 << 32, 0)),
        TcpOptions(sack_blocks=((0, 1 << 32),)),
        TcpOptions(unknown=((2, b"\x05\xb4"),)),  # a known kind must use its field
        TcpOptions(unknown=((1, b""),)),
        TcpOptions(unknown=((256, b""),)),
    ],
)
def test_options_emit_not_representable(options: TcpOptions) -> None:
    with pytest.raises(ValueError):
        options.emit()


# ---- segment: parse ----


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_parse_buffer_kinds(kind: type) -> None:
    repr_, payload = TcpRepr.parse(kind(DATA_BYTES), src=SRC, dst=DST)
    assert repr_ == DATA_REPR
    assert isinstance(payload, memoryview) and payload == DATA_PAYLOAD


def test_parse_payload_is_a_view() -> None:
    segment = bytearray(DATA_BYTES)
    _, payload = TcpRepr.parse(segment, src=SRC, dst=DST)
    segment[-1] = 0x21
    assert payload[-1] == 0x21


def test_parse_flags_are_tcpflags() -> None:
    repr_, _ = TcpRepr.parse(DATA_BYTES, src=SRC, dst=DST)
    assert isinstance(repr_.flags, TcpFlags)
    assert repr_.flags == TcpFlags.PSH | TcpFlags.ACK


@pytest.mark.parametrize("length", [0, 1, 19])
def test_parse_truncated_header(length: int) -> None:
    assert reason(ACK_BYTES[:length], src=DST, dst=SRC) is DropReason.TRUNCATED


@pytest.mark.parametrize("offset", [0, 4])
def test_parse_data_offset_too_small(offset: int) -> None:
    segment = ACK_BYTES[:12] + bytes([offset << 4]) + ACK_BYTES[13:]
    assert reason(segment, src=DST, dst=SRC, verify_checksum=False) is DropReason.BAD_HEADER_LENGTH


def test_parse_data_offset_past_buffer() -> None:
    assert reason(SYN_BYTES[:39]) is DropReason.TRUNCATED


def test_parse_bad_checksum() -> None:
    corrupt = bytearray(DATA_BYTES)
    corrupt[-3] ^= 0x40
    assert reason(bytes(corrupt)) is DropReason.BAD_CHECKSUM
    repr_, _ = TcpRepr.parse(bytes(corrupt), src=SRC, dst=DST, verify_checksum=False)
    assert repr_ == DATA_REPR


def test_parse_checksum_covers_the_pseudo_header() -> None:
    assert reason(DATA_BYTES, src=SRC, dst=bytes([192, 168, 1, 3])) is DropReason.BAD_CHECKSUM


def test_parse_malformed_options() -> None:
    assert reason(segment_with(b"\x22\x06ab")) is DropReason.BAD_OPTION


def test_parse_unknown_options_are_kept() -> None:
    repr_, _ = TcpRepr.parse(segment_with(b"\x22\x02\x01\x01"), src=SRC, dst=DST)
    assert repr_.options == TcpOptions(unknown=((34, b""),))


def test_parse_reserved_bits_are_ignored() -> None:
    # RFC 9293 §3.1: the reserved bits must be ignored on receipt
    segment = segment_with(b"", reserved=0x0F)
    assert segment[12] == 0x5F
    repr_, _ = TcpRepr.parse(segment, src=SRC, dst=DST)
    assert repr_.flags == TcpFlags.ACK


@pytest.mark.parametrize(
    "flags",
    [TcpFlags.SYN | TcpFlags.FIN, TcpFlags.SYN | TcpFlags.RST, TcpFlags.SYN | TcpFlags.ACK | TcpFlags.FIN],
)
def test_parse_illegal_flag_combinations(flags: TcpFlags) -> None:
    assert reason(segment_with(b"", flags)) is DropReason.BAD_VALUE


@pytest.mark.parametrize(
    "flags", [TcpFlags.FIN | TcpFlags.RST | TcpFlags.ACK, TcpFlags(0), TcpFlags(0xFF) & ~TcpFlags.SYN]
)
def test_parse_unusual_flag_combinations_are_accepted(flags: TcpFlags) -> None:
    repr_, _ = TcpRepr.parse(segment_with(b"", flags), src=SRC, dst=DST)
    assert repr_.flags == flags


def test_parse_port_zero() -> None:
    for repr_ in (TcpRepr(0, 80, 1, 0, TcpFlags.SYN, 1), TcpRepr(1024, 0, 1, 0, TcpFlags.SYN, 1)):
        assert reason(repr_.emit(src=SRC, dst=DST)) is DropReason.BAD_VALUE


def test_parse_too_long_for_ipv4() -> None:
    assert reason(ACK_BYTES + bytes(65536), src=DST, dst=SRC) is DropReason.BAD_LENGTH


# ---- segment: emit ----


def test_emit_header_len() -> None:
    assert SYN_REPR.header_len == 40
    assert DATA_REPR.header_len == 32
    assert ACK_REPR.header_len == 20


def test_emit_odd_payload() -> None:
    segment = ACK_REPR.emit(b"abc", src=DST, dst=SRC)
    assert TcpRepr.parse(segment, src=DST, dst=SRC) == (ACK_REPR, memoryview(b"abc"))


def test_emit_extreme_values() -> None:
    repr_ = TcpRepr(65535, 1, 0xFFFFFFFF, 0xFFFFFFFF, TcpFlags.ACK | TcpFlags.URG, 65535, urgent=65535)
    assert TcpRepr.parse(repr_.emit(b"x", src=SRC, dst=DST), src=SRC, dst=DST)[0] == repr_


def test_emit_accepts_int_flags() -> None:
    segment = TcpRepr(1, 2, 3, 4, 0x12, 5).emit(src=SRC, dst=DST)  # type: ignore[arg-type]
    assert TcpRepr.parse(segment, src=SRC, dst=DST)[0].flags == TcpFlags.SYN | TcpFlags.ACK


@pytest.mark.parametrize(
    "repr_",
    [
        TcpRepr(65536, 80, 0, 0, TcpFlags.ACK, 0),
        TcpRepr(80, -1, 0, 0, TcpFlags.ACK, 0),
        TcpRepr(80, 80, 1 << 32, 0, TcpFlags.ACK, 0),
        TcpRepr(80, 80, 0, -1, TcpFlags.ACK, 0),
        TcpRepr(80, 80, 0, 0, TcpFlags.ACK, 65536),
        TcpRepr(80, 80, 0, 0, TcpFlags.ACK, 0, urgent=65536),
        TcpRepr(80, 80, 0, 0, 256, 0),  # type: ignore[arg-type]
        TcpRepr(80, 80, 0, 0, TcpFlags.ACK, 0, options=TcpOptions(mss=70000)),
    ],
)
def test_emit_out_of_range(repr_: TcpRepr) -> None:
    with pytest.raises(ValueError):
        repr_.emit(src=SRC, dst=DST)


def test_emit_too_long() -> None:
    with pytest.raises(ValueError):
        ACK_REPR.emit(bytes(65535 - 19), src=SRC, dst=DST)


def test_emit_bad_address_length() -> None:
    with pytest.raises(ValueError):
        ACK_REPR.emit(src=SRC, dst=DST + b"\x00")


def test_repr_default_options_and_hash() -> None:
    assert ACK_REPR.options == TcpOptions()
    assert hash(TcpRepr.parse(ACK_BYTES, src=DST, dst=SRC)[0]) == hash(ACK_REPR)
