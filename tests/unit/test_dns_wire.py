"""DNS wire format (RFC 1035 §4): golden bytes, compression, malformed input, and the construct
declaration agreeing with the fast codec on random messages (with and without compression)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from construct import Container, ListContainer
from hypothesis import given
from hypothesis import strategies as st

from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.dns import (
    DNS_FLAGS,
    DNS_HEADER,
    DNS_MESSAGE,
    DNS_NAME,
    DnsHeader,
    DnsMessage,
    DnsQuestion,
    DnsRecord,
    DnsType,
    build_query,
    encode_name,
    label_text,
    parse_response,
    soa_minimum,
)

# ---- golden query ----

QUERY_BYTES = bytes.fromhex(
    "1234 0100 0001 0000 0000 0000"  # ID, RD, QDCOUNT 1
    "07 6578616d706c65 03 636f6d 00"  # example.com
    "0001 0001"  # QTYPE A, QCLASS IN
)
QUERY_CONTAINER = Container(
    header=Container(
        id=0x1234,
        flags=Container(qr=False, opcode=0, aa=False, tc=False, rd=True, ra=False, z=0, rcode=0),
        qdcount=1,
        ancount=0,
        nscount=0,
        arcount=0,
    ),
    question=ListContainer([Container(qname=ListContainer([b"example", b"com", b""]), qtype=1, qclass=1)]),
    answer=ListContainer([]),
    authority=ListContainer([]),
    additional=ListContainer([]),
)


def test_build_query_golden() -> None:
    assert build_query(0x1234, "example.com") == QUERY_BYTES


def test_build_query_final_dot_and_options() -> None:
    assert build_query(0x1234, "example.com.") == QUERY_BYTES
    no_rd = build_query(0xBEEF, "example.com", DnsType.AAAA, recursion_desired=False)
    assert no_rd == bytes.fromhex("beef 0000 0001 0000 0000 0000") + QUERY_BYTES[12:-4] + bytes.fromhex("001c 0001")


def test_declaration_parses_and_builds_the_query() -> None:
    assert DNS_MESSAGE.parse(QUERY_BYTES) == QUERY_CONTAINER
    assert DNS_MESSAGE.build(QUERY_CONTAINER) == QUERY_BYTES


def test_parse_the_query() -> None:
    message = parse_response(QUERY_BYTES)
    assert message.header == DnsHeader(0x1234, False, 0, False, False, True, False, 0, 0, 1, 0, 0, 0)
    assert message.questions == (DnsQuestion("example.com", 1, 1),)
    assert message.answers == message.authority == message.additional == ()


@pytest.mark.parametrize(
    "name",
    ["", ".", "a..b", ".a", "a.b..", "bücher.de", "a b.c", "a\\.b", "tab\tname", "x" * 64 + ".com", "a." * 127 + "b"],
)
def test_build_query_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        build_query(1, name)


def test_name_length_limits() -> None:
    assert len(encode_name("x" * 63 + ".com")) == 69
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])  # 64 * 3 + 62 + 1 = 255 octets
    assert len(encode_name(longest)) == 255
    with pytest.raises(ValueError):
        encode_name(longest + "b")


@pytest.mark.parametrize(("ident", "qtype"), [(-1, 1), (0x10000, 1), (1, -1), (1, 0x10000)])
def test_build_query_rejects_out_of_range(ident: int, qtype: int) -> None:
    with pytest.raises(ValueError):
        build_query(ident, "example.com", qtype)


# ---- a hand-made response with compression (§4.1.4) ----

RESPONSE_BYTES = bytes.fromhex(
    "1234 8180 0001 0003 0000 0000"  # QR RD RA, NOERROR, 1 question, 3 answers
    "03 777777 07 6578616d706c65 03 636f6d 00 0001 0001"  # @12 www.example.com A IN
    "c00c 0005 0001 0000012c 0002 c010"  # @33 -> www.example.com CNAME -> @16 example.com
    "c02d 0001 0001 0000003c 0004 5db8d822"  # @47 -> @45 (a pointer to @16) A 93.184.216.34
    "c010 0001 0001 0000003c 0004 0a000001"  # @63 example.com A 10.0.0.1
)


def test_parse_compressed_response() -> None:
    message = parse_response(RESPONSE_BYTES)
    assert message == DnsMessage(
        DnsHeader(0x1234, True, 0, False, False, True, True, 0, 0, 1, 3, 0, 0),
        (DnsQuestion("www.example.com", 1, 1),),
        (
            DnsRecord("www.example.com", 5, 1, 300, "example.com"),
            DnsRecord("example.com", 1, 1, 60, bytes([93, 184, 216, 34])),
            DnsRecord("example.com", 1, 1, 60, bytes([10, 0, 0, 1])),
        ),
        (),
        (),
    )


def test_declaration_keeps_pointers() -> None:
    parsed = DNS_MESSAGE.parse(RESPONSE_BYTES)
    assert parsed.answer[0].name == [Container(tag=3, offset=12)]
    assert parsed.answer[0].rdata == b"\xc0\x10"
    assert parsed.answer[2].name == [Container(tag=3, offset=16)]
    assert DNS_MESSAGE.build(parsed) == RESPONSE_BYTES


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_parse_buffer_kinds(kind: type) -> None:
    assert parse_response(kind(RESPONSE_BYTES)) == parse_response(RESPONSE_BYTES)


def test_trailing_octets_are_ignored() -> None:
    assert parse_response(RESPONSE_BYTES + b"junk") == parse_response(RESPONSE_BYTES)


def test_flags_word() -> None:
    message = parse_response(bytes.fromhex("0001 fff3 0000 0000 0000 0000"))
    assert message.header == DnsHeader(1, True, 15, True, True, True, True, 7, 3, 0, 0, 0, 0)


def test_other_types_kept_raw() -> None:
    rdata = bytes(16)
    data = bytes.fromhex("0001 8000 0000 0001 0000 0000 00 001c 0001 00000001 0010") + rdata
    assert parse_response(data).answers == (DnsRecord(".", DnsType.AAAA, 1, 1, rdata),)
    # A in another class than IN is not an Internet address (§3.4.1): kept raw, any length
    chaos = bytes.fromhex("0001 8000 0000 0001 0000 0000 00 0001 0003 00000001 0003 616263")
    assert parse_response(chaos).answers[0].data == b"abc"


def test_presentation_escapes() -> None:
    assert label_text(b"a.b") == "a\\046b"
    assert label_text(b"A b\\\xff") == "A\\032b\\092\\255"
    assert label_text(b"_sip-1") == "_sip-1"
    data = bytes.fromhex("0001 8000 0001 0000 0000 0000 03 612e62 01 ff 00 0001 0001")
    assert parse_response(data).questions[0].name == "a\\046b.\\255"


def test_soa_minimum() -> None:
    # MNAME "a." RNAME pointer, SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM = 600
    rdata = bytes.fromhex("016100 c00c") + struct.pack("!5I", 1, 2, 3, 4, 600)
    assert soa_minimum(DnsRecord("x", DnsType.SOA, 1, 30, rdata)) == 600
    assert soa_minimum(DnsRecord("x", DnsType.SOA, 1, 30, rdata[:21])) is None
    assert soa_minimum(DnsRecord("x", DnsType.TXT, 1, 30, rdata)) is None


# ---- malformed input ----

HEADER_1Q = bytes.fromhex("0001 8000 0001 0000 0000 0000")
HEADER_1A = bytes.fromhex("0001 8000 0000 0001 0000 0000")


def reason(data: bytes) -> tuple[DropReason, str]:
    with pytest.raises(MalformedPacket) as info:
        parse_response(data)
    return info.value.reason, info.value.detail


@pytest.mark.parametrize(
    ("data", "expected", "detail"),
    [
        (b"", DropReason.TRUNCATED, "header"),
        (HEADER_1Q[:11], DropReason.TRUNCATED, "header"),
        (HEADER_1Q, DropReason.TRUNCATED, "past the end"),
        (HEADER_1Q + b"\x03ab", DropReason.TRUNCATED, "past the end"),
        (HEADER_1Q + b"\x01a\x00\x00\x01\x00", DropReason.TRUNCATED, "question"),
        (HEADER_1Q + b"\xc0", DropReason.TRUNCATED, "pointer"),
        (HEADER_1Q + b"\xc0\x0c", DropReason.BAD_VALUE, "forward pointer"),  # points at itself
        (HEADER_1Q + b"\xc0\x20" + bytes(30), DropReason.BAD_VALUE, "forward pointer"),
        (HEADER_1Q + b"\x01a\xc0\x0c\x00\x01\x00\x01", DropReason.BAD_VALUE, "loop"),  # into its own labels
        (HEADER_1Q + b"\x40" + bytes(70), DropReason.BAD_LENGTH, "label of 64"),
        (HEADER_1Q + b"\x80" + bytes(70), DropReason.BAD_LENGTH, "label of 128"),
        (HEADER_1A + b"\x00\x00\x01\x00\x01\x00\x00\x00\x01\x00\x05" + bytes(5), DropReason.BAD_LENGTH, "A RDATA"),
        (HEADER_1A + b"\x00\x00\x01\x00\x01\x00\x00\x00\x01\x00\x05" + bytes(4), DropReason.TRUNCATED, "RDLENGTH"),
        (HEADER_1A + b"\x00\x00\x01\x00\x01\x00\x00", DropReason.TRUNCATED, "record header"),
        (HEADER_1A + b"\x00\x00\x05\x00\x01\x00\x00\x00\x01\x00\x03\x00\x00\x00", DropReason.BAD_LENGTH, "CNAME"),
        (HEADER_1A + b"\x00\x00\x05\x00\x01\x00\x00\x00\x01\x00\x01\x01a\x00", DropReason.BAD_LENGTH, "CNAME"),
    ],
)
def test_malformed(data: bytes, expected: DropReason, detail: str) -> None:
    got, text = reason(data)
    assert got is expected
    assert detail in text


def test_pointer_loop_between_two_names() -> None:
    # name 1 @12: "a" then pointer to @17 (name 2, later: forward); name 2 @17: "b" then pointer to @12
    data = HEADER_1Q[:4] + b"\x00\x02" + HEADER_1Q[6:] + b"\x01a\xc0\x11\x00" + b"\x01b\xc0\x0c"
    assert reason(data)[0] is DropReason.BAD_VALUE


def test_pointer_must_point_before_the_previous_target() -> None:
    # @12 "a", @19 "b" -> @12, @27: pointer to @21 (the pointer inside @19's name), which
    # leads on to @12: the targets 21 > 12 strictly decrease, so this is legal
    question_tail = b"\x00\x01\x00\x01"
    legal = HEADER_1Q[:4] + b"\x00\x03" + HEADER_1Q[6:]
    legal += b"\x01a\x00" + question_tail + b"\x01b\xc0\x0c" + question_tail + b"\xc0\x15" + question_tail
    assert [q.name for q in parse_response(legal).questions] == ["a", "b.a", "a"]


def test_name_over_255_octets_through_pointers() -> None:
    # four names of 63-octet labels, each pointing to the previous one: the fourth is too long
    data = bytearray(HEADER_1Q[:4] + b"\x00\x04" + HEADER_1Q[6:])
    previous = None
    for _ in range(4):
        start = len(data)
        data += b"\x3f" + b"x" * 63 + (struct.pack("!H", 0xC000 | previous) if previous else b"\x00")
        data += b"\x00\x01\x00\x01"
        previous = start
    got, text = reason(bytes(data))
    assert got is DropReason.BAD_LENGTH and "longer than 255" in text


def test_chain_of_pointers_to_pointers() -> None:
    # question 1 is "z"; each later one is only a pointer to the previous one's pointer
    data = bytearray(HEADER_1Q[:4] + b"\x00\x14" + HEADER_1Q[6:])
    previous = len(data)
    data += b"\x01z\x00\x00\x01\x00\x01"
    for _ in range(19):
        start = len(data)
        data += struct.pack("!HHH", 0xC000 | previous, 1, 1)
        previous = start
    assert [q.name for q in parse_response(bytes(data)).questions] == ["z"] * 20


# ---- the declaration and the fast codec agree (hypothesis) ----

POOL = [b"www", b"Example", b"com", b"a.b", b"\xff\x00", b"x" * 63, b"_tcp"]
labels = st.one_of(st.sampled_from(POOL), st.binary(min_size=1, max_size=12))
names = st.lists(labels, max_size=3)  # at most 3 * 64 + 1 octets: always under 255
u16 = st.integers(0, 0xFFFF)
flags = st.builds(
    Container,
    qr=st.booleans(),
    opcode=st.integers(0, 15),
    aa=st.booleans(),
    tc=st.booleans(),
    rd=st.booleans(),
    ra=st.booleans(),
    z=st.integers(0, 7),
    rcode=st.integers(0, 15),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[list[bytes], int, int, int, bytes | list[bytes]]:
    rtype = draw(st.sampled_from([1, 2, 5, 6, 16, 28, 41, 255]))
    rclass = draw(st.sampled_from([1, 1, 3, 255]))
    ttl = draw(st.integers(0, 0xFFFFFFFF))
    data: bytes | list[bytes]
    if rtype == 5:
        data = draw(names)
    elif rtype == 1 and rclass == 1:
        data = draw(st.binary(min_size=4, max_size=4))
    else:
        data = draw(st.binary(max_size=20))
    return draw(names), rtype, rclass, ttl, data


def presentation(name: list[bytes]) -> str:
    """Independent of the codec: printable ASCII but '.' and '\\' as is, the rest as \\DDD."""
    text = [
        "".join(chr(c) if 0x21 <= c <= 0x7E and c not in (0x2E, 0x5C) else f"\\{c:03d}" for c in label)
        for label in name
    ]
    return ".".join(text) if text else "."


class Writer:
    """Builds a message name by name with the declaration, compressing suffixes when asked."""

    def __init__(self, compress: bool) -> None:
        self.out = bytearray()
        self.compress = compress
        self.table: dict[tuple[bytes, ...], int] = {}

    def name(self, name: list[bytes]) -> None:
        steps: list[Any] = []
        position = len(self.out)
        for i in range(len(name)):
            suffix = tuple(name[i:])
            if self.compress and suffix in self.table:
                steps.append(Container(offset=self.table[suffix]))
                break
            if position < 0x4000:
                self.table[suffix] = position
            steps.append(name[i])
            position += 1 + len(name[i])
        else:
            steps.append(b"")
        self.out += DNS_NAME.build(steps)


def write(header: Container, sections: list[list[Any]], compress: bool) -> bytes:
    writer = Writer(compress)
    writer.out += DNS_HEADER.build(header)
    for qname, qtype, qclass in sections[0]:
        writer.name(qname)
        writer.out += struct.pack("!HH", qtype, qclass)
    for section in sections[1:]:
        for name, rtype, rclass, ttl, data in section:
            writer.name(name)
            writer.out += struct.pack("!HHIH", rtype, rclass, ttl, 0)
            start = len(writer.out)
            if rtype == 5:
                writer.name(data)
            else:
                writer.out += data
            struct.pack_into("!H", writer.out, start - 2, len(writer.out) - start)
    return bytes(writer.out)


def resolve(message: bytes, steps: list[Any]) -> list[bytes]:
    """Follow the declaration's pointers by parsing again at each offset."""
    labels: list[bytes] = []
    for _ in range(128):
        for step in steps:
            if isinstance(step, bytes):
                if not step:
                    return labels
                labels.append(step)
            else:
                steps = DNS_NAME.parse(message[step.offset :])
                break
    raise AssertionError("pointer chain too long")


@given(
    u16,
    flags,
    st.lists(st.tuples(names, u16, u16), max_size=3),
    st.lists(records(), max_size=4),
    st.lists(records(), max_size=2),
    st.lists(records(), max_size=2),
    st.booleans(),
)
def test_declaration_and_fast_codec_agree(
    ident: int,
    flag_values: Container,
    questions: list[Any],
    answers: list[Any],
    authority: list[Any],
    additional: list[Any],
    compress: bool,
) -> None:
    counts = dict(qdcount=len(questions), ancount=len(answers), nscount=len(authority), arcount=len(additional))
    header = Container(id=ident, flags=flag_values, **counts)
    data = write(header, [questions, answers, authority, additional], compress)
    message = parse_response(data)
    declared = DNS_MESSAGE.parse(data)
    # header
    f = declared.header.flags
    assert message.header == DnsHeader(ident, f.qr, f.opcode, f.aa, f.tc, f.rd, f.ra, f.z, f.rcode, *counts.values())
    assert declared.header.flags == flag_values
    # question section
    assert message.questions == tuple(DnsQuestion(presentation(n), t, c) for n, t, c in questions)
    assert [resolve(data, q.qname) for q in declared.question] == [n for n, _, _ in questions]
    # the three record sections
    sections = (message.answers, message.authority, message.additional)
    declared_sections = (declared.answer, declared.authority, declared.additional)
    for fast, decl, drawn in zip(sections, declared_sections, (answers, authority, additional), strict=True):
        assert len(fast) == len(decl) == len(drawn)
        for record, rr, (name, rtype, rclass, ttl, value) in zip(fast, decl, drawn, strict=True):
            assert resolve(data, rr.name) == name
            assert (rr.type, rr["class"], rr.ttl) == (rtype, rclass, ttl)
            assert (record.name, record.rtype, record.rclass, record.ttl) == (presentation(name), rtype, rclass, ttl)
            if rtype == 5:
                assert record.data == presentation(value)
                assert resolve(data, DNS_NAME.parse(rr.rdata)) == value
            else:
                assert record.data == rr.rdata == value
    if not compress:
        assert DNS_MESSAGE.build(declared) == data


@given(u16, st.lists(st.sampled_from(["a", "Www", "example", "x-1", "_srv", "Z" * 63]), min_size=1, max_size=3), u16)
def test_build_query_equals_declaration(ident: int, labels: list[str], qtype: int) -> None:
    for rd in (False, True):
        container = Container(
            header=Container(
                id=ident,
                flags=Container(qr=False, opcode=0, aa=False, tc=False, rd=rd, ra=False, z=0, rcode=0),
                qdcount=1,
                ancount=0,
                nscount=0,
                arcount=0,
            ),
            question=[Container(qname=[label.encode() for label in labels] + [b""], qtype=qtype, qclass=1)],
            answer=[],
            authority=[],
            additional=[],
        )
        assert build_query(ident, ".".join(labels), qtype, recursion_desired=rd) == DNS_MESSAGE.build(container)


@given(u16)
def test_flags_word_equals_declaration(word: int) -> None:
    f = DNS_FLAGS.parse(word.to_bytes(2, "big"))
    header = parse_response(b"\x00\x00" + word.to_bytes(2, "big") + bytes(8)).header
    assert (header.qr, header.opcode, header.aa, header.tc, header.rd, header.ra, header.z, header.rcode) == (
        f.qr,
        f.opcode,
        f.aa,
        f.tc,
        f.rd,
        f.ra,
        f.z,
        f.rcode,
    )
