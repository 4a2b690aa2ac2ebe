"""Hypothesis properties of the FTP reply parser (wipstack.wire.ftp.ReplyParser).

* Random octets -- and reply-shaped junk full of codes, dashes, CRs and LFs -- fed in random
  splits make ``feed`` return replies or raise ``MalformedPacket``, never anything else, and
  between feeds the parser never holds more than one line of ``MAX_LINE`` octets and
  ``MAX_LINES`` lines of an unfinished reply.
* Where the input ends does not matter: the same octets fed whole or in any split give the
  same replies, or both raise.
* Round trip: generated replies (single- and multi-line, with inner lines that look like
  other replies) rendered with CRLF or bare LF and fed back in any split come out equal.
* Every reply the parser returns is well-formed: a code in 100..599, at least one line, no
  CR/LF inside a line.
"""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wipstack.errors import MalformedPacket
from wipstack.wire.ftp import MAX_LINE, MAX_LINES, FtpReply, ReplyParser

# ---------------------------------------------------------------------------- junk

codes = st.integers(0, 999).map(lambda n: f"{n:03d}".encode())
reply_tokens = st.one_of(
    codes,
    st.sampled_from([b" ", b"-", b"\r", b"\n", b"\r\n", b"220-", b"220 ", b"226 ", b"211-", b"211 ", b"\xff", b"x"]),
    st.binary(max_size=12),
)
reply_junk = st.lists(reply_tokens, max_size=120).map(b"".join)
long_lines = st.builds(
    lambda code, n, end: code + b" " + b"y" * n + end,
    codes,
    st.integers(MAX_LINE - 8, MAX_LINE + 8),
    st.sampled_from([b"", b"\r", b"\n", b"\r\n"]),
)
junk = st.one_of(
    st.binary(max_size=600), reply_junk, st.lists(st.one_of(long_lines, reply_junk), max_size=4).map(b"".join)
)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` cut at ``points`` (any ints; taken modulo the length)."""
    if not data:
        return [data]
    offsets = sorted({p % (len(data) + 1) for p in points})
    edges = [0, *offsets, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def check_reply(reply: FtpReply) -> None:
    assert isinstance(reply, FtpReply)
    assert 100 <= reply.code <= 599
    assert reply.lines
    for line in reply.lines:
        assert isinstance(line, str)
        assert "\n" not in line
        assert len(line.encode("utf-8", "surrogatepass")) <= 3 * MAX_LINE


def outcome(pieces: list[bytes]) -> tuple[str, list[FtpReply]]:
    """("ok", replies) or ("error", replies returned before it), checking bounds after every feed."""
    parser = ReplyParser()
    replies: list[FtpReply] = []
    for piece in pieces:
        try:
            got = parser.feed(piece)
        except MalformedPacket:
            return "error", replies
        for reply in got:
            check_reply(reply)
        replies += got
        # bounded: at most one unfinished line, at most MAX_LINES lines of an unfinished reply
        assert len(parser._buffer) <= MAX_LINE + 1  # a whole line and its CR, waiting for the LF
        assert len(parser._lines) <= MAX_LINES
    return "ok", replies


@settings(max_examples=400)
@given(junk, st.lists(st.integers(0, 10_000), max_size=30))
def test_garbage_only_raises_malformed_packet(data: bytes, points: list[int]) -> None:
    outcome(cut(data, points))


def max_line_ended_by_cr(data: bytes) -> bool:
    """A line of at most MAX_LINE octets whose trailing CRs take it over (see the xfail in test_ftp_wire)."""
    return any(len(line) > MAX_LINE >= len(line.rstrip(b"\r")) for line in data.split(b"\n")[:-1])


@settings(max_examples=300)
@given(junk, st.lists(st.integers(0, 10_000), max_size=30))
def test_splits_do_not_change_the_outcome(data: bytes, points: list[int]) -> None:
    assume(not max_line_ended_by_cr(data))  # a known split dependence: test_line_of_max_length_split_between_cr_and_lf
    whole_kind, whole = outcome([data])
    split_kind, split = outcome(cut(data, points))
    assert split_kind == whole_kind
    if whole_kind == "ok":
        assert split == whole


@settings(max_examples=50)
@given(st.integers(MAX_LINES, MAX_LINES + 50), st.lists(st.integers(0, 100_000), max_size=10))
def test_endless_multi_line_reply_is_refused(n: int, points: list[int]) -> None:
    data = b"211-first\r\n" + b" more\r\n" * n
    kind, replies = outcome(cut(data, points))
    assert kind == "error" and replies == []


@settings(max_examples=50)
@given(st.integers(1, 20), st.lists(st.integers(0, 100_000), max_size=10))
def test_endless_line_is_refused(kilobytes: int, points: list[int]) -> None:
    data = b"220 " + b"z" * (MAX_LINE + kilobytes * 1024)
    kind, replies = outcome(cut(data, points))
    assert kind == "error" and replies == []


# ---------------------------------------------------------------------------- round trip

text_chars = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")
texts = st.text(text_chars, max_size=60)
# inner lines that look like replies: codes (ours and others), dashes, spaces
inner_texts = st.one_of(
    texts,
    st.builds(lambda c, sep, t: f"{c:03d}{sep}{t}", st.integers(100, 599), st.sampled_from([" ", "-", "", "x"]), texts),
)


@st.composite
def replies(draw: st.DrawFn) -> FtpReply:
    code = draw(st.integers(100, 599))
    if draw(st.booleans()):
        return FtpReply(code, (draw(texts),))
    inner = draw(st.lists(inner_texts, max_size=6))
    # RFC 959 §4.2: an inner line must not read as the end ("<code>" alone or "<code> ..."),
    # and "<code>-" in front of an inner line is taken as the continuation marker and dropped
    inner = [line for line in inner if not (line[:3] == str(code) and line[3:4] in ("", " ", "-"))]
    return FtpReply(code, (draw(texts), *inner, draw(texts)))


def render(reply: FtpReply, endings: list[bytes]) -> bytes:
    def end(i: int) -> bytes:
        return endings[i % len(endings)] if endings else b"\r\n"

    if len(reply.lines) == 1:
        return f"{reply.code} {reply.lines[0]}".encode() + end(0)
    out = f"{reply.code}-{reply.lines[0]}".encode() + end(0)
    for i, line in enumerate(reply.lines[1:-1], 1):
        out += line.encode() + end(i)
    return out + f"{reply.code} {reply.lines[-1]}".encode() + end(len(reply.lines))


@settings(max_examples=400)
@given(
    st.lists(replies(), min_size=1, max_size=8),
    st.lists(st.sampled_from([b"\r\n", b"\n"]), max_size=5),
    st.lists(st.integers(0, 100_000), max_size=40),
)
def test_round_trip_in_any_split(originals: list[FtpReply], endings: list[bytes], points: list[int]) -> None:
    data = b"".join(render(reply, endings) for reply in originals)
    assert outcome([data]) == ("ok", originals)
    assert outcome(cut(data, points)) == ("ok", originals)


@settings(max_examples=100)
@given(st.lists(replies(), min_size=1, max_size=4))
def test_round_trip_byte_by_byte(originals: list[FtpReply]) -> None:
    data = b"".join(render(reply, []) for reply in originals)
    assert outcome([data[i : i + 1] for i in range(len(data))]) == ("ok", originals)


@settings(max_examples=200)
@given(st.integers(100, 599), st.lists(st.integers(0, 100_000), max_size=10))
def test_bare_code_reply_round_trip(code: int, points: list[int]) -> None:
    data = f"{code}\r\n{code}-a\r\n{code}\r\n".encode()
    assert outcome(cut(data, points)) == ("ok", [FtpReply(code, ("",)), FtpReply(code, ("a", ""))])
