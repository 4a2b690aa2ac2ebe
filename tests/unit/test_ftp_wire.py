"""FTP control-connection text (wipstack.wire.ftp): replies (RFC 959 §4.2) in any splits,
227/229 answers (RFC 959 §4.1.2, RFC 2428 §3), PORT arguments and command lines."""

from __future__ import annotations

import pytest

from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.ftp import (
    MAX_LINE,
    MAX_LINES,
    FtpReply,
    ReplyParser,
    command_line,
    parse_epsv,
    parse_pasv,
    port_argument,
)


def feed_all(data: bytes, splits: list[int] | None = None) -> list[FtpReply]:
    """Feed ``data`` whole, or cut at the offsets ``splits``."""
    parser = ReplyParser()
    if splits is None:
        return parser.feed(data)
    replies: list[FtpReply] = []
    cuts = [0, *splits, len(data)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        replies += parser.feed(data[start:end])
    return replies


def feed_bytewise(data: bytes) -> list[FtpReply]:
    return feed_all(data, list(range(1, len(data))))


# ============================================================================ single-line replies


@pytest.mark.parametrize("ending", [b"\r\n", b"\n"], ids=["CRLF", "LF"])
def test_single_line(ending: bytes) -> None:
    data = b"220 Service ready for new user." + ending
    assert feed_all(data) == [FtpReply(220, ("Service ready for new user.",))]
    assert feed_bytewise(data) == [FtpReply(220, ("Service ready for new user.",))]


def test_reply_properties() -> None:
    reply = FtpReply(214, ("one", "two"))
    assert reply.text == "one\ntwo"
    assert reply.kind == 2
    assert FtpReply(150, ("x",)).kind == 1
    assert FtpReply(331, ("x",)).kind == 3
    assert FtpReply(426, ("x",)).kind == 4
    assert FtpReply(550, ("x",)).kind == 5


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"200", ""),  # the code alone
        (b"200 ", ""),
        (b"200  two spaces", " two spaces"),
        (b"200 a\rb", "a\rb"),  # a CR inside the line stays
        (b"200 trailing CRs\r\r", "trailing CRs"),
        (b"200 caf\xc3\xa9", "caf\u00e9"),
        (b"200 \xff\xfe", "\ufffd\ufffd"),  # not UTF-8: replaced, not raised
    ],
)
def test_single_line_texts(line: bytes, text: str) -> None:
    assert feed_all(line + b"\r\n") == [FtpReply(200, (text,))]


@pytest.mark.parametrize("code", [100, 199, 250, 421, 599])
def test_codes_in_range(code: int) -> None:
    assert feed_all(f"{code} x\r\n".encode()) == [FtpReply(code, ("x",))]


def test_several_replies_in_one_feed_and_in_any_split() -> None:
    data = b"150 Opening\r\n226 Done\n200 OK\r\n"
    expected = [FtpReply(150, ("Opening",)), FtpReply(226, ("Done",)), FtpReply(200, ("OK",))]
    assert feed_all(data) == expected
    for cut in range(len(data) + 1):
        assert feed_all(data, [cut]) == expected
    assert feed_bytewise(data) == expected


def test_incomplete_line_waits() -> None:
    parser = ReplyParser()
    assert parser.feed(b"200 O") == []
    assert parser.feed(b"K\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\n2") == [FtpReply(200, ("OK",))]
    assert parser.feed(b"21 bye\r\n") == [FtpReply(221, ("bye",))]


# ============================================================================ multi-line replies

MULTI = (
    b"214-The following commands are recognized:\r\n"
    b" USER PASS ACCT\r\n"
    b"200 an inner line starting with another code\r\n"
    b"214-an inner line with the same code and a dash\r\n"
    b"2140 four digits is no code\r\n"
    b"\r\n"
    b"214 Help OK.\r\n"
)
MULTI_REPLY = FtpReply(
    214,
    (
        "The following commands are recognized:",
        " USER PASS ACCT",
        "200 an inner line starting with another code",
        "an inner line with the same code and a dash",
        "2140 four digits is no code",
        "",
        "Help OK.",
    ),
)


def test_multi_line() -> None:
    assert feed_all(MULTI) == [MULTI_REPLY]


def test_multi_line_with_bare_lf() -> None:
    assert feed_all(MULTI.replace(b"\r\n", b"\n")) == [MULTI_REPLY]


def test_multi_line_in_every_split() -> None:
    for cut in range(len(MULTI) + 1):
        assert feed_all(MULTI, [cut]) == [MULTI_REPLY], cut
    for a in range(0, len(MULTI), 7):
        for b in range(a, len(MULTI), 11):
            assert feed_all(MULTI, [a, b]) == [MULTI_REPLY], (a, b)
    assert feed_bytewise(MULTI) == [MULTI_REPLY]


def test_multi_line_ended_by_the_bare_code() -> None:
    assert feed_all(b"211-Features:\r\n EPSV\r\n211\r\n") == [FtpReply(211, ("Features:", " EPSV", ""))]


def test_multi_line_only_ends_with_its_own_code() -> None:
    data = b"220-Welcome\r\n230 not the end\r\n220-still not\r\n220 end\r\n"
    parser = ReplyParser()
    assert parser.feed(data[:-12]) == []
    assert parser.feed(data[-12:]) == [FtpReply(220, ("Welcome", "230 not the end", "still not", "end"))]


def test_multi_line_followed_by_single_line() -> None:
    data = b"220-a\r\n220 b\r\n331 Password\r\n"
    assert feed_all(data) == [FtpReply(220, ("a", "b")), FtpReply(331, ("Password",))]


def test_inner_lines_may_be_anything() -> None:
    data = b"211-x\r\nno code\r\n99 short\r\n\xff\xfe\r\n000 zero\r\n211 end\r\n"
    assert feed_all(data) == [FtpReply(211, ("x", "no code", "99 short", "\ufffd\ufffd", "000 zero", "end"))]


# ============================================================================ malformed replies


@pytest.mark.parametrize(
    "line",
    [
        b"hello",
        b"",
        b"20 short",
        b"2000 four digits",
        b"200x",
        b"20a text",
        b" 200 leading space",
        b"099 below 100",
        b"000 zero",
        b"600 above 599",
        b"999 way above",
        b"-200 dash first",
    ],
)
def test_malformed_line(line: bytes) -> None:
    with pytest.raises(MalformedPacket) as info:
        feed_all(line + b"\r\n")
    assert info.value.reason in (DropReason.BAD_VALUE, DropReason.BAD_LENGTH)


def test_malformed_after_a_good_reply() -> None:
    parser = ReplyParser()
    assert parser.feed(b"200 OK\r\n") == [FtpReply(200, ("OK",))]
    with pytest.raises(MalformedPacket):
        parser.feed(b"garbage\r\n")


def test_line_of_max_length_is_accepted() -> None:
    line = b"200 " + b"x" * (MAX_LINE - 4)
    assert len(line) == MAX_LINE
    assert feed_all(line + b"\r\n") == [FtpReply(200, ("x" * (MAX_LINE - 4),))]
    assert feed_all(line + b"\n", [MAX_LINE]) == [FtpReply(200, ("x" * (MAX_LINE - 4),))]


def test_line_of_max_length_split_between_cr_and_lf() -> None:
    line = b"200 " + b"x" * (MAX_LINE - 4)
    assert feed_all(line + b"\r\n", [MAX_LINE + 1]) == [FtpReply(200, ("x" * (MAX_LINE - 4),))]


def test_line_over_max_length_is_refused() -> None:
    line = b"200 " + b"x" * (MAX_LINE - 3)
    with pytest.raises(MalformedPacket) as info:
        feed_all(line + b"\r\n")
    assert info.value.reason is DropReason.BAD_LENGTH


def test_unterminated_line_is_refused_before_it_grows() -> None:
    parser = ReplyParser()
    assert parser.feed(b"200 " + b"x" * (MAX_LINE - 4)) == []
    with pytest.raises(MalformedPacket) as info:
        parser.feed(b"xx")
    assert info.value.reason is DropReason.BAD_LENGTH


def test_unterminated_line_in_small_pieces() -> None:
    parser = ReplyParser()
    with pytest.raises(MalformedPacket):
        for _ in range(MAX_LINE):
            parser.feed(b"200 abcdefgh")


def multi_line_reply(n_lines: int) -> bytes:
    """A 211 reply of ``n_lines`` lines in all (first and last included)."""
    inner = b"".join(b" line\r\n" for _ in range(n_lines - 2))
    return b"211-first\r\n" + inner + b"211 last\r\n"


def test_multi_line_of_max_lines_is_accepted() -> None:
    [reply] = feed_all(multi_line_reply(MAX_LINES))
    assert len(reply.lines) == MAX_LINES


def test_multi_line_far_over_max_lines_is_refused() -> None:
    parser = ReplyParser()
    with pytest.raises(MalformedPacket) as info:
        parser.feed(b"211-first\r\n" + b" line\r\n" * (MAX_LINES + 5))
    assert info.value.reason is DropReason.BAD_LENGTH


def test_multi_line_of_max_lines_plus_one_is_refused() -> None:
    with pytest.raises(MalformedPacket):
        feed_all(multi_line_reply(MAX_LINES + 1))


# ============================================================================ PASV (227)


def r(code: int, text: str) -> FtpReply:
    return FtpReply(code, (text,))


@pytest.mark.parametrize(
    ("text", "address", "port"),
    [
        ("Entering Passive Mode (192,168,1,2,19,137).", b"\xc0\xa8\x01\x02", 5001),
        ("Entering Passive Mode (10,0,0,2,0,1)", b"\x0a\x00\x00\x02", 1),
        ("Entering Passive Mode (0,0,0,0,255,255)", b"\x00\x00\x00\x00", 65535),
        ("Entering Passive Mode (255,255,255,255,4,0)", b"\xff\xff\xff\xff", 1024),
        ("=127,0,0,1,200,10", b"\x7f\x00\x00\x01", 51210),  # RFC 1123 §4.1.2.6: parentheses optional
        ("Entering Passive Mode (010,000,000,001,001,001)", b"\x0a\x00\x00\x01", 257),  # leading zeros
    ],
)
def test_parse_pasv(text: str, address: bytes, port: int) -> None:
    assert parse_pasv(r(227, text)) == (address, port)


def test_parse_pasv_in_a_multi_line_reply() -> None:
    assert parse_pasv(FtpReply(227, ("Entering Passive Mode", "(10,0,0,2,4,1)"))) == (b"\x0a\x00\x00\x02", 1025)


@pytest.mark.parametrize(
    "text",
    [
        "Entering Passive Mode",
        "Entering Passive Mode (10,0,0,2,4)",  # five fields
        "Entering Passive Mode (10;0;0;2;4;1)",
        "Entering Passive Mode (10,0,0,2,,1)",
        "Entering Passive Mode (10,0,0,2,0,0)",  # port 0
        "Entering Passive Mode (10,0,0,2,256,0)",  # port 65536 (p1 over 255)
        "Entering Passive Mode (10,0,0,2,4,256)",
        "Entering Passive Mode (256,0,0,2,4,1)",
        "Entering Passive Mode (10,0,0,999,4,1)",
        "",
    ],
)
def test_parse_pasv_malformed(text: str) -> None:
    with pytest.raises(MalformedPacket) as info:
        parse_pasv(r(227, text))
    assert info.value.reason is DropReason.BAD_VALUE


@pytest.mark.parametrize("text", ["Entering Passive Mode (10,0,0,2,4,1000)", "Entering Passive Mode (1000,0,0,1,4,1)"])
def test_parse_pasv_refuses_four_digit_fields(text: str) -> None:
    with pytest.raises(MalformedPacket):
        parse_pasv(r(227, text))


# ============================================================================ EPSV (229)


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("Entering Extended Passive Mode (|||6446|)", 6446),
        ("Entering Extended Passive Mode (|||1|)", 1),
        ("Entering Extended Passive Mode (|||65535|)", 65535),
        ("Entering Extended Passive Mode (!!!6446!)", 6446),  # any delimiter, used consistently
        ("(|||00080|)", 80),
    ],
)
def test_parse_epsv(text: str, port: int) -> None:
    assert parse_epsv(r(229, text)) == port


@pytest.mark.parametrize(
    "text",
    [
        "Entering Extended Passive Mode",
        "Entering Extended Passive Mode (|||0|)",
        "Entering Extended Passive Mode (|||65536|)",
        "Entering Extended Passive Mode (|||99999|)",
        "Entering Extended Passive Mode (|||100000|)",
        "Entering Extended Passive Mode (|||)",
        "Entering Extended Passive Mode (|||6446)",
        "Entering Extended Passive Mode (||6446|)",
        "Entering Extended Passive Mode (|!|6446|)",  # mixed delimiters
        "Entering Extended Passive Mode (|||64a6|)",
        "Entering Extended Passive Mode (|||-1|)",
        "",
    ],
)
def test_parse_epsv_malformed(text: str) -> None:
    with pytest.raises(MalformedPacket) as info:
        parse_epsv(r(229, text))
    assert info.value.reason is DropReason.BAD_VALUE


# ============================================================================ PORT arguments


@pytest.mark.parametrize(
    ("address", "port", "text"),
    [
        (b"\x0a\x00\x00\x01", 5001, "10,0,0,1,19,137"),
        (b"\x0a\x00\x00\x01", 1, "10,0,0,1,0,1"),
        (b"\xff\xff\xff\xff", 65535, "255,255,255,255,255,255"),
        (b"\x00\x00\x00\x00", 256, "0,0,0,0,1,0"),
    ],
)
def test_port_argument(address: bytes, port: int, text: str) -> None:
    assert port_argument(address, port) == text
    assert parse_pasv(r(227, f"Entering Passive Mode ({text})")) == (address, port)


@pytest.mark.parametrize(
    ("address", "port"),
    [(b"\x0a\x00\x00\x01", 0), (b"\x0a\x00\x00\x01", 65536), (b"\x0a\x00\x00\x01", -1), (b"\x0a\x00\x00", 21),
     (b"\x00" * 16, 21), (b"", 21)],
)  # fmt: skip
def test_port_argument_refuses(address: bytes, port: int) -> None:
    with pytest.raises(ValueError):
        port_argument(address, port)


# ============================================================================ command lines


@pytest.mark.parametrize(
    ("verb", "argument", "line"),
    [
        ("USER", "alice", b"USER alice\r\n"),
        ("PASV", None, b"PASV\r\n"),
        ("RETR", "dir/with space.txt", b"RETR dir/with space.txt\r\n"),
        ("STOR", "caf\u00e9", b"STOR caf\xc3\xa9\r\n"),
        ("PORT", "10,0,0,1,19,137", b"PORT 10,0,0,1,19,137\r\n"),
    ],
)
def test_command_line(verb: str, argument: str | None, line: bytes) -> None:
    assert command_line(verb, argument) == line


@pytest.mark.parametrize("argument", ["a\r\nDELE b", "a\nDELE b", "a\rDELE b", "\r", "\n", "x\r\n"])
def test_command_line_refuses_cr_lf_in_the_argument(argument: str) -> None:
    with pytest.raises(ValueError):
        command_line("CWD", argument)


@pytest.mark.parametrize("verb", ["NOOP\r\nDELE x", "NOOP\nDELE x"])
def test_command_line_refuses_cr_lf_in_the_verb(verb: str) -> None:
    with pytest.raises(ValueError):
        command_line(verb)
