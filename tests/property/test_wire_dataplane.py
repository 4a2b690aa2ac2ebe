"""Hypothesis properties of the data-plane wire modules (ipv4, icmp, udp, tcp).

* The private ``struct`` codecs equal the construct declarations, both ways: unpacking random
  header octets gives what the declaration parses, and packing random field values gives
  what the declaration builds.
* ``emit`` equals the declaration built from the Repr's fields (with a naive RFC 1071
  checksum), and ``parse(emit(r)) == r``.
* Garbage, truncated and mutated inputs only ever give a Repr or ``MalformedPacket``.
* A single flipped bit anywhere the checksum covers is always detected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from construct import Container
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wipstack.errors import MalformedPacket
from wipstack.wire import icmp, ipv4, tcp, udp
from wipstack.wire.icmp import ICMP_HEADER, IcmpRepr, IcmpType
from wipstack.wire.ipv4 import IPV4_HEADER, IpProtocol, Ipv4Repr
from wipstack.wire.tcp import TCP_HEADER, TCP_OPTIONS, TcpFlags, TcpOptionKind, TcpOptions, TcpRepr
from wipstack.wire.udp import UDP_HEADER, UdpRepr

SRC = bytes([10, 0, 0, 1])
DST = bytes([10, 0, 0, 2])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
nibble = st.integers(0, 15)
addresses = st.binary(min_size=4, max_size=4)
# sources that the IPv4 sanity check accepts (not multicast, not limited broadcast)
unicast = addresses.filter(lambda a: a[0] & 0xF0 != 0xE0 and a != b"\xff\xff\xff\xff")
payloads = st.binary(max_size=64)


def naive_sum(data: bytes, initial: int = 0) -> int:
    """RFC 1071 one's-complement sum, written plainly (independent of wipstack.accel)."""
    if len(data) % 2:
        data += b"\x00"
    total = initial
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def naive_checksum(data: bytes, initial: int = 0) -> int:
    return ~naive_sum(data, initial) & 0xFFFF


def pseudo(src: bytes, dst: bytes, protocol: int, length: int) -> int:
    return naive_sum(src + dst + bytes([0, protocol]) + length.to_bytes(2, "big"))


# ======================= IPv4 =======================


@given(st.binary(min_size=60, max_size=60), st.integers(5, 15))
def test_ipv4_unpack_equals_declaration(raw: bytes, ihl: int) -> None:
    data = bytes([raw[0] & 0xF0 | ihl]) + raw[1:]
    c = IPV4_HEADER.parse(data)
    vihl, tos, total_len, ident, frag, ttl, proto, checksum, src, dst = ipv4._FIXED.unpack_from(data)
    assert (vihl >> 4, vihl & 0x0F) == (c.version_ihl.version, c.version_ihl.ihl)
    assert c.flags_fragment == Container(
        reserved=bool(frag & 0x8000),
        dont_fragment=bool(frag & ipv4._DF),
        more_fragments=bool(frag & ipv4._MF),
        fragment_offset=frag & ipv4._OFFSET_MASK,
    )
    fields = (tos, total_len, ident, ttl, proto, checksum, src, dst)
    assert fields == (c.tos, c.total_length, c.identification, c.ttl, int(c.protocol), c.checksum, c.src, c.dst)
    assert c.options == data[20 : ihl * 4]


@st.composite
def ipv4_header_fields(draw: st.DrawFn) -> dict[str, Any]:
    ihl = draw(st.integers(5, 15))
    return {
        "version": draw(nibble),
        "ihl": ihl,
        "tos": draw(u8),
        "total_length": draw(u16),
        "identification": draw(u16),
        "reserved": draw(st.booleans()),
        "df": draw(st.booleans()),
        "mf": draw(st.booleans()),
        "offset": draw(st.integers(0, 0x1FFF)),
        "ttl": draw(u8),
        "protocol": draw(u8),
        "checksum": draw(u16),
        "src": draw(addresses),
        "dst": draw(addresses),
        "options": draw(st.binary(min_size=ihl * 4 - 20, max_size=ihl * 4 - 20)),
    }


@given(ipv4_header_fields())
def test_ipv4_pack_equals_declaration(f: dict[str, Any]) -> None:
    frag = f["reserved"] << 15 | f["df"] << 14 | f["mf"] << 13 | f["offset"]
    packed = ipv4._FIXED.pack(
        f["version"] << 4 | f["ihl"],
        f["tos"],
        f["total_length"],
        f["identification"],
        frag,
        f["ttl"],
        f["protocol"],
        f["checksum"],
        f["src"],
        f["dst"],
    )
    built = IPV4_HEADER.build(
        Container(
            version_ihl=Container(version=f["version"], ihl=f["ihl"]),
            tos=f["tos"],
            total_length=f["total_length"],
            identification=f["identification"],
            flags_fragment=Container(
                reserved=f["reserved"], dont_fragment=f["df"], more_fragments=f["mf"], fragment_offset=f["offset"]
            ),
            ttl=f["ttl"],
            protocol=f["protocol"],
            checksum=f["checksum"],
            src=f["src"],
            dst=f["dst"],
            options=f["options"],
        )
    )
    assert packed + f["options"] == built


@st.composite
def ipv4_packets(draw: st.DrawFn) -> tuple[Ipv4Repr, bytes]:
    """A valid Ipv4Repr (options already 4-aligned, so it round-trips) and its payload."""
    more_fragments = draw(st.booleans())
    payload = draw(payloads)
    if more_fragments:
        payload = payload[: len(payload) & ~7]  # RFC 791: non-final fragments carry 8n octets
    repr_ = Ipv4Repr(
        src=draw(unicast),
        dst=draw(addresses),
        protocol=draw(u8),
        ttl=draw(u8),
        tos=draw(u8),
        identification=draw(u16),
        dont_fragment=draw(st.booleans()),
        more_fragments=more_fragments,
        fragment_offset=draw(st.integers(0, (65535 - 64) // 8)) * 8,
        options=draw(st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))),
    )
    return repr_, payload


@given(ipv4_packets())
def test_ipv4_emit_equals_declaration_and_round_trips(case: tuple[Ipv4Repr, bytes]) -> None:
    repr_, payload = case
    packet = repr_.emit(payload)
    hlen = repr_.header_len
    expected = IPV4_HEADER.build(
        Container(
            version_ihl=Container(version=4, ihl=hlen // 4),
            tos=repr_.tos,
            total_length=hlen + len(payload),
            identification=repr_.identification,
            flags_fragment=Container(
                reserved=False,
                dont_fragment=repr_.dont_fragment,
                more_fragments=repr_.more_fragments,
                fragment_offset=repr_.fragment_offset // 8,
            ),
            ttl=repr_.ttl,
            protocol=repr_.protocol,
            checksum=0,
            src=repr_.src,
            dst=repr_.dst,
            options=repr_.options,
        )
    )
    expected = expected[:10] + naive_checksum(expected).to_bytes(2, "big") + expected[12:]
    assert packet == expected + payload
    parsed, parsed_payload = Ipv4Repr.parse(packet)
    assert parsed == repr_
    assert parsed_payload == payload
    assert parsed.protocol == repr_.protocol and type(parsed.protocol) in (int, IpProtocol)


# ======================= ICMP =======================


@given(st.binary(min_size=8, max_size=8))
def test_icmp_unpack_equals_declaration(data: bytes) -> None:
    c = ICMP_HEADER.parse(data)
    assert icmp._HEADER.unpack(data) == (int(c.type), c.code, c.checksum, c.rest)


@given(u8, u8, u16, u32)
def test_icmp_pack_equals_declaration(icmp_type: int, code: int, checksum: int, rest: int) -> None:
    built = ICMP_HEADER.build(Container(type=icmp_type, code=code, checksum=checksum, rest=rest))
    assert icmp._HEADER.pack(icmp_type, code, checksum, rest) == built


# types whose data the sanity checks do not constrain
_FREE_ICMP_TYPES = st.integers(0, 255).filter(
    lambda t: t not in icmp.ERROR_TYPES and t not in (IcmpType.TIMESTAMP, IcmpType.TIMESTAMP_REPLY)
)


@st.composite
def icmp_messages(draw: st.DrawFn) -> IcmpRepr:
    kind = draw(st.sampled_from(["free", "echo", "error"]))
    if kind == "echo":
        return IcmpRepr.echo(draw(u16), draw(u16), draw(payloads), reply=draw(st.booleans()))
    if kind == "error":
        original_repr, original_payload = draw(ipv4_packets())
        error_type, code = draw(
            st.sampled_from(
                [
                    (IcmpType.DEST_UNREACHABLE, icmp.UnreachableCode.PORT),
                    (IcmpType.TIME_EXCEEDED, icmp.TimeExceededCode.TTL_EXCEEDED),
                    (IcmpType.PARAMETER_PROBLEM, icmp.ParameterProblemCode.POINTER),
                ]
            )
        )
        return IcmpRepr.error(error_type, code, original_repr.emit(original_payload))
    return IcmpRepr(draw(_FREE_ICMP_TYPES), draw(u8), draw(u32), draw(payloads))


@given(icmp_messages())
def test_icmp_emit_equals_declaration_and_round_trips(repr_: IcmpRepr) -> None:
    message = repr_.emit()
    expected = ICMP_HEADER.build(Container(type=repr_.type, code=repr_.code, checksum=0, rest=repr_.rest))
    expected += repr_.payload
    expected = expected[:2] + naive_checksum(expected).to_bytes(2, "big") + expected[4:]
    assert message == expected
    assert IcmpRepr.parse(message) == repr_


# ======================= UDP =======================


@given(st.binary(min_size=8, max_size=8))
def test_udp_unpack_equals_declaration(data: bytes) -> None:
    c = UDP_HEADER.parse(data)
    assert udp._HEADER.unpack(data) == (c.src_port, c.dst_port, c.length, c.checksum)


@given(u16, u16, u16, u16)
def test_udp_pack_equals_declaration(src_port: int, dst_port: int, length: int, checksum: int) -> None:
    built = UDP_HEADER.build(Container(src_port=src_port, dst_port=dst_port, length=length, checksum=checksum))
    assert udp._HEADER.pack(src_port, dst_port, length, checksum) == built


@given(u16, st.integers(1, 0xFFFF), payloads, unicast, addresses, st.booleans())
def test_udp_emit_equals_declaration_and_round_trips(
    src_port: int, dst_port: int, payload: bytes, src: bytes, dst: bytes, checksum: bool
) -> None:
    repr_ = UdpRepr(src_port, dst_port)
    datagram = repr_.emit(payload, src=src, dst=dst, checksum=checksum)
    length = 8 + len(payload)
    expected = UDP_HEADER.build(Container(src_port=src_port, dst_port=dst_port, length=length, checksum=0)) + payload
    if checksum:
        value = naive_checksum(expected, pseudo(src, dst, 17, length)) or 0xFFFF
        expected = expected[:6] + value.to_bytes(2, "big") + expected[8:]
    assert datagram == expected
    assert UdpRepr.parse(datagram, src=src, dst=dst) == (repr_, memoryview(payload))


# ======================= TCP =======================


@given(st.binary(min_size=60, max_size=60), st.integers(5, 15))
def test_tcp_unpack_equals_declaration(raw: bytes, data_offset: int) -> None:
    data = raw[:12] + bytes([data_offset << 4 | raw[12] & 0x0F]) + raw[13:]
    c = TCP_HEADER.parse(data)
    src_port, dst_port, seq, ack, offset, flags, window, checksum, urgent = tcp._HEADER.unpack_from(data)
    assert (src_port, dst_port, seq, ack) == (c.src_port, c.dst_port, c.seq, c.ack)
    assert (window, checksum, urgent) == (c.window, c.checksum, c.urgent)
    assert (offset >> 4, offset & 0x0F) == (c.offset_flags.data_offset, c.offset_flags.reserved)
    decoded = tcp._FLAGS[flags]
    for name in ("cwr", "ece", "urg", "ack", "psh", "rst", "syn", "fin"):
        assert c.offset_flags[name] == bool(decoded & TcpFlags[name.upper()])
    assert c.options == data[20 : data_offset * 4]


@st.composite
def tcp_header_fields(draw: st.DrawFn) -> dict[str, Any]:
    data_offset = draw(st.integers(5, 15))
    return {
        "ports": (draw(u16), draw(u16)),
        "seq": draw(u32),
        "ack": draw(u32),
        "data_offset": data_offset,
        "reserved": draw(nibble),
        "flags": draw(u8),
        "window": draw(u16),
        "checksum": draw(u16),
        "urgent": draw(u16),
        "options": draw(st.binary(min_size=data_offset * 4 - 20, max_size=data_offset * 4 - 20)),
    }


def _offset_flags(data_offset: int, reserved: int, flags: int) -> Container:
    bits = {
        name: bool(flags & TcpFlags[name.upper()]) for name in ("cwr", "ece", "urg", "ack", "psh", "rst", "syn", "fin")
    }
    return Container(data_offset=data_offset, reserved=reserved, **bits)


@given(tcp_header_fields())
def test_tcp_pack_equals_declaration(f: dict[str, Any]) -> None:
    src_port, dst_port = f["ports"]
    packed = tcp._HEADER.pack(
        src_port,
        dst_port,
        f["seq"],
        f["ack"],
        f["data_offset"] << 4 | f["reserved"],
        f["flags"],
        f["window"],
        f["checksum"],
        f["urgent"],
    )
    built = TCP_HEADER.build(
        Container(
            src_port=src_port,
            dst_port=dst_port,
            seq=f["seq"],
            ack=f["ack"],
            offset_flags=_offset_flags(f["data_offset"], f["reserved"], f["flags"]),
            window=f["window"],
            checksum=f["checksum"],
            urgent=f["urgent"],
            options=f["options"],
        )
    )
    assert packed + f["options"] == built


def options_from_declaration(data: bytes) -> TcpOptions:
    """Decode an options field with the construct declaration (reference for TcpOptions.parse)."""
    found: dict[str, Any] = {}
    unknown: list[tuple[int, bytes]] = []
    for option in TCP_OPTIONS.parse(data):
        kind, value = option.kind, option.value
        if kind == TcpOptionKind.EOL:
            break
        if kind == TcpOptionKind.MSS:
            found["mss"] = value
        elif kind == TcpOptionKind.WINDOW_SCALE:
            found["window_scale"] = value
        elif kind == TcpOptionKind.SACK_PERMITTED:
            found["sack_permitted"] = True
        elif kind == TcpOptionKind.SACK:
            found["sack_blocks"] = tuple((block.left, block.right) for block in value)
        elif kind == TcpOptionKind.TIMESTAMPS:
            found["timestamps"] = (value.tsval, value.tsecr)
        elif kind != TcpOptionKind.NOP:
            unknown.append((kind, value))
    return TcpOptions(**found, unknown=tuple(unknown))


_UNKNOWN_KINDS = st.integers(6, 255).filter(lambda k: k != TcpOptionKind.TIMESTAMPS)
tcp_options = st.builds(
    TcpOptions,
    mss=st.none() | u16,
    window_scale=st.none() | u8,
    sack_permitted=st.booleans(),
    sack_blocks=st.lists(st.tuples(u32, u32), max_size=3).map(tuple),
    timestamps=st.none() | st.tuples(u32, u32),
    unknown=st.lists(st.tuples(_UNKNOWN_KINDS, st.binary(max_size=6)), max_size=2).map(tuple),
)


@given(tcp_options)
def test_tcp_options_emit_equals_declaration_and_round_trips(options: TcpOptions) -> None:
    try:
        encoded = options.emit()
    except ValueError:
        assume(False)  # more than 40 octets
        raise
    assert len(encoded) % 4 == 0
    assert options_from_declaration(encoded) == options
    assert TcpOptions.parse(encoded) == options


@given(st.binary(max_size=40))
def test_tcp_options_parse_equals_declaration_on_garbage(data: bytes) -> None:
    try:
        parsed = TcpOptions.parse(data)
    except MalformedPacket:
        return
    assert parsed == options_from_declaration(data)


@st.composite
def tcp_segments(draw: st.DrawFn) -> tuple[TcpRepr, bytes]:
    flags = TcpFlags(draw(u8))
    if flags & TcpFlags.SYN:
        flags &= ~(TcpFlags.FIN | TcpFlags.RST)  # combinations the sanity check rejects
    options = draw(tcp_options)
    try:
        options.emit()
    except ValueError:
        options = TcpOptions(timestamps=draw(st.tuples(u32, u32)))
    repr_ = TcpRepr(
        draw(st.integers(1, 0xFFFF)),
        draw(st.integers(1, 0xFFFF)),
        draw(u32),
        draw(u32),
        flags,
        draw(u16),
        draw(u16),
        options,
    )
    return repr_, draw(payloads)


@given(tcp_segments(), unicast, addresses)
def test_tcp_emit_equals_declaration_and_round_trips(case: tuple[TcpRepr, bytes], src: bytes, dst: bytes) -> None:
    repr_, payload = case
    segment = repr_.emit(payload, src=src, dst=dst)
    encoded = repr_.options.emit()
    hlen = 20 + len(encoded)
    expected = TCP_HEADER.build(
        Container(
            src_port=repr_.src_port,
            dst_port=repr_.dst_port,
            seq=repr_.seq,
            ack=repr_.ack,
            offset_flags=_offset_flags(hlen // 4, 0, repr_.flags),
            window=repr_.window,
            checksum=0,
            urgent=repr_.urgent,
            options=encoded,
        )
    )
    expected += payload
    value = naive_checksum(expected, pseudo(src, dst, 6, len(expected)))
    expected = expected[:16] + value.to_bytes(2, "big") + expected[18:]
    assert segment == expected
    parsed, parsed_payload = TcpRepr.parse(segment, src=src, dst=dst)
    assert parsed == repr_
    assert parsed_payload == payload


# ======================= garbage in, Repr or MalformedPacket out =======================

Parser = Callable[[bytes], object]

PARSERS: dict[str, Parser] = {
    "ipv4": lambda b: Ipv4Repr.parse(b),
    "ipv4-nocheck": lambda b: Ipv4Repr.parse(b, verify_checksum=False),
    "icmp": lambda b: IcmpRepr.parse(b),
    "icmp-nocheck": lambda b: IcmpRepr.parse(b, verify_checksum=False),
    "udp": lambda b: UdpRepr.parse(b, src=SRC, dst=DST),
    "udp-nocheck": lambda b: UdpRepr.parse(b, src=SRC, dst=DST, verify_checksum=False),
    "tcp": lambda b: TcpRepr.parse(b, src=SRC, dst=DST),
    "tcp-nocheck": lambda b: TcpRepr.parse(b, src=SRC, dst=DST, verify_checksum=False),
    "tcp-options": lambda b: TcpOptions.parse(b),
}
RESULT_TYPES: dict[str, type] = {
    "ipv4": Ipv4Repr,
    "icmp": IcmpRepr,
    "udp": UdpRepr,
    "tcp": TcpRepr,
    "tcp-options": TcpOptions,
}


def parse_or_drop(name: str, data: bytes | bytearray | memoryview) -> None:
    """Parsing must return the Repr (with a payload view) or raise MalformedPacket, nothing else."""
    try:
        result = PARSERS[name](data)  # type: ignore[arg-type]
    except MalformedPacket:
        return
    expected = RESULT_TYPES[name.removesuffix("-nocheck")]
    if isinstance(result, tuple):
        repr_, payload = result
        assert isinstance(repr_, expected)
        assert isinstance(payload, memoryview)
    else:
        assert isinstance(result, expected)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=300)
@given(data=st.binary(max_size=120), kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_garbage(name: str, data: bytes, kind: Callable[[bytes], Any]) -> None:
    parse_or_drop(name, kind(data))


@st.composite
def valid_packets(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid packet of any of the four formats, with the name of its parser."""
    name = draw(st.sampled_from(["ipv4", "icmp", "udp", "tcp"]))
    if name == "ipv4":
        repr_, payload = draw(ipv4_packets())
        return name, repr_.emit(payload)
    if name == "icmp":
        return name, draw(icmp_messages()).emit()
    if name == "udp":
        return name, UdpRepr(draw(u16), draw(st.integers(1, 0xFFFF))).emit(draw(payloads), src=SRC, dst=DST)
    segment, payload = draw(tcp_segments())
    return name, segment.emit(payload, src=SRC, dst=DST)


@settings(max_examples=300)
@given(valid_packets(), st.data())
def test_truncations(case: tuple[str, bytes], data: st.DataObject) -> None:
    name, packet = case
    cut = data.draw(st.integers(0, len(packet)))
    parse_or_drop(name, packet[:cut])
    parse_or_drop(name + "-nocheck", packet[:cut])


@settings(max_examples=300)
@given(valid_packets(), st.data())
def test_mutations(case: tuple[str, bytes], data: st.DataObject) -> None:
    name, packet = case
    mutated = bytearray(packet)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(0, len(packet) - 1))] = data.draw(u8)
    parse_or_drop(name, mutated)
    parse_or_drop(name + "-nocheck", mutated)


@settings(max_examples=300)
@given(valid_packets(), st.data())
def test_single_bit_errors_are_detected(case: tuple[str, bytes], data: st.DataObject) -> None:
    name, packet = case
    covered = (packet[0] & 0x0F) * 4 if name == "ipv4" else len(packet)  # IPv4: the header only
    bit = data.draw(st.integers(0, covered * 8 - 1))
    # flips of IPv4's IHL or UDP's Length move the end of what the checksum covers: those
    # are not single-bit errors of the covered octets, so only "no crash" is required of them
    if (name == "ipv4" and 4 <= bit < 8) or (name == "udp" and 32 <= bit < 48):
        corrupt = bytearray(packet)
        corrupt[bit // 8] ^= 0x80 >> (bit % 8)
        parse_or_drop(name, corrupt)
        return
    corrupt = bytearray(packet)
    corrupt[bit // 8] ^= 0x80 >> (bit % 8)
    if name == "udp" and corrupt[6:8] == b"\x00\x00":
        return  # RFC 768: the flip turned the checksum into "not computed", which is accepted
    with pytest.raises(MalformedPacket):
        PARSERS[name](bytes(corrupt))
