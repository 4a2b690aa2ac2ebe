"""AT line assembly and command parsing under garbage, arbitrary chunking and round trips.

* ``LineAssembler``: random bytes fed with random splits never raise, never hold more than
  ``max_line`` characters, give the same lines however the stream is chunked, and agree
  with a deliberately naive byte-at-a-time model written here from the rules.
* ``parse_command_line``: any text raises ``AtSyntaxError`` or nothing; ``Arg`` helpers
  raise ``ArgError`` or nothing.
* Round trip: random commands rendered into one line (random case, spaces, escapes) parse
  back to the same commands.
"""

from __future__ import annotations

import string
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from at_frontend.parser import (
    MAX_ARGS,
    Arg,
    ArgError,
    AtSyntaxError,
    Command,
    CommandKind,
    Line,
    LineAssembler,
    parse_command_line,
)

# --------------------------------------------------------------------------- line assembly

# bytes with a meaning to the assembler are drawn often so terminators and edits interleave
INTERESTING_BYTES = st.sampled_from([0x00, 0x08, 0x0A, 0x0D, 0x7F, ord("A"), ord("T"), 0xFF])
STREAMS = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(INTERESTING_BYTES, st.integers(0, 255)), max_size=400).map(bytes),
)
MAX_LINES = st.integers(min_value=1, max_value=40)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at random points (possibly into empty pieces)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


class ModelAssembler:
    """One byte at a time, straight from the rules; no attempt at speed."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.chars: list[str] = []
        self.too_long = False
        self.after_cr = False
        self.lines: list[Line] = []

    def feed(self, data: bytes) -> None:
        for octet in data:
            if octet == 0x00:
                continue  # noise: not even seen, so it does not break a CR LF pair
            if octet == 0x0A and self.after_cr:
                self.after_cr = False
                continue
            self.after_cr = octet == 0x0D
            if octet in (0x0A, 0x0D):
                self.lines.append(Line("".join(self.chars), self.too_long))
                self.chars, self.too_long = [], False
            elif octet in (0x08, 0x7F):
                if self.chars and not self.too_long:
                    self.chars.pop()
            elif len(self.chars) < self.max_line:
                self.chars.append(chr(octet))
            else:
                self.too_long = True


@given(data=st.data(), stream=STREAMS, max_line=MAX_LINES)
@settings(max_examples=300)
def test_assembler_chunking_never_matters(data: st.DataObject, stream: bytes, max_line: int) -> None:
    whole = LineAssembler(max_line)
    expected = whole.feed(stream)

    split = LineAssembler(max_line)
    lines: list[Line] = []
    for piece in data.draw(chunked(stream)):
        lines += split.feed(piece)
        assert len(split.pending) <= max_line
    assert lines == expected
    assert split.pending == whole.pending

    one_by_one = LineAssembler(max_line)
    assert [line for octet in stream for line in one_by_one.feed(bytes([octet]))] == expected


@given(stream=STREAMS, max_line=MAX_LINES)
@settings(max_examples=300)
def test_assembler_matches_model(stream: bytes, max_line: int) -> None:
    assembler = LineAssembler(max_line)
    model = ModelAssembler(max_line)
    lines = assembler.feed(stream)
    model.feed(stream)
    assert lines == model.lines
    assert assembler.pending == "".join(model.chars)
    for line in lines:
        assert len(line.text) <= max_line
        assert not set(line.text) & {"\r", "\n", "\x00", "\x08", "\x7f"}


@given(stream=STREAMS)
def test_assembler_reset_is_a_fresh_assembler(stream: bytes) -> None:
    assembler = LineAssembler(16)
    assembler.feed(stream)
    assembler.reset()
    assert assembler.pending == ""
    assert assembler.feed(b"\nAT\r") == LineAssembler(16).feed(b"\nAT\r")


# --------------------------------------------------------------------------- garbage into the parser

GRAMMAR_CHARS = 'AaTtDdSsEe&+%#*$^!-./:_=?;,"\\ \t0123456789AFaf\x00\u00e9\u0663'
GARBAGE_TEXT = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=GRAMMAR_CHARS, max_size=80),
    st.text(alphabet=GRAMMAR_CHARS, max_size=80).map(lambda tail: "AT" + tail),
    st.text(alphabet=GRAMMAR_CHARS, max_size=80).map(lambda tail: "AT+X=" + tail),
)


@given(text=GARBAGE_TEXT)
@settings(max_examples=500)
def test_parser_raises_only_syntax_errors(text: str) -> None:
    try:
        commands = parse_command_line(text)
    except AtSyntaxError as error:
        assert isinstance(error.reason, str) and error.reason
        return
    for command in commands:
        assert command.name == command.name.upper()
        assert len(command.args) <= MAX_ARGS


@given(
    text=st.text(max_size=30), quoted=st.booleans(), lo=st.integers(-(10**6), 10**6), hi=st.integers(-(10**6), 10**6)
)
def test_arg_helpers_raise_only_arg_errors(text: str, quoted: bool, lo: int, hi: int) -> None:
    arg = Arg(text, quoted)
    try:
        value = arg.as_int(lo, hi)
    except ArgError:
        pass
    else:
        assert lo <= value <= hi
        assert int(text) == value
    try:
        assert arg.as_str(abs(lo) % 40) == text
    except ArgError:
        assert len(text) > abs(lo) % 40


# --------------------------------------------------------------------------- round trip

EXTENDED_NAMES = [
    "+WIPCFG",
    "+CMEE",
    "+CPIN",
    "+WIPBR",
    "+WIPCREATE",
    "#FOO",
    "%VER",
    "*E2",
    "$QCPDP",
    "^SYS",
    "+A!%-./:_9",
]
BASIC_NAMES = [letter for letter in string.ascii_uppercase if letter not in "DS"] + [
    "&" + letter for letter in string.ascii_uppercase
]
NUMBERS = st.text(alphabet=string.digits, min_size=1, max_size=4)
# characters an unquoted parameter may hold (no quote, comma, semicolon; no "?" so that
# "=?" stays a TEST); inner spaces survive, surrounding ones are stripped
TOKEN_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-._:/@+*#!= ", max_size=20).map(
    lambda token: token.strip(" ")
)
ARGS = st.one_of(
    st.builds(Arg, st.text(max_size=20), st.just(True)),
    st.builds(Arg, TOKEN_TEXT, st.just(False)),
)


@st.composite
def extended_commands(draw: st.DrawFn) -> Command:
    name = draw(st.sampled_from(EXTENDED_NAMES))
    kind = draw(st.sampled_from(CommandKind))
    if kind is not CommandKind.SET:
        return Command(name, kind)
    # mostly a few parameters, sometimes right up to the limit
    count = draw(st.one_of(st.integers(1, 6), st.integers(1, MAX_ARGS)))
    args = tuple(draw(st.lists(ARGS, min_size=count, max_size=count)))
    return Command(name, kind, args)


@st.composite
def basic_commands(draw: st.DrawFn) -> Command:
    if draw(st.booleans()):  # S-register
        name = draw(st.sampled_from(["S", "S0", "S7", "S12", "S255"]))
        kind = draw(st.sampled_from([CommandKind.ACTION, CommandKind.READ, CommandKind.SET]))
        value = draw(st.one_of(st.just(""), NUMBERS))
        return Command(name, kind, (Arg(value),) if kind is CommandKind.SET else ())
    name = draw(st.sampled_from(BASIC_NAMES))
    kind = draw(st.sampled_from([CommandKind.ACTION, CommandKind.READ, CommandKind.SET]))
    return Command(name, kind, (Arg(draw(NUMBERS)),) if kind is CommandKind.SET else ())


def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.integers(0, (1 << len(text)) - 1))  # bit i set: lower-case character i
    return "".join(char.lower() if flips >> index & 1 else char for index, char in enumerate(text))


def spaces(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "", " ", "  ", "\t"]))


def render_quoted(draw: st.DrawFn, text: str) -> str:
    escape_all = draw(st.booleans())
    hex_case = draw(st.sampled_from("xX"))
    pieces = []
    for char in text:
        if char in '"\\' or (escape_all and ord(char) < 256):
            pieces.append(f"\\{ord(char):02{hex_case}}")
        else:
            pieces.append(char)
    return '"' + "".join(pieces) + '"'


def render_extended(draw: st.DrawFn, command: Command) -> str:
    name = random_case(draw, command.name)
    if command.kind is CommandKind.ACTION:
        return name
    if command.kind is CommandKind.READ:
        return name + spaces(draw) + "?"
    if command.kind is CommandKind.TEST:
        return name + spaces(draw) + "=" + spaces(draw) + "?"
    rendered = [
        spaces(draw) + (render_quoted(draw, arg.text) if arg.quoted else arg.text) + spaces(draw)
        for arg in command.args
    ]
    return name + "=" + ",".join(rendered)


def render_basic(draw: st.DrawFn, command: Command) -> str:
    name = random_case(draw, command.name)
    if command.kind is CommandKind.READ:
        return name + "?"
    if command.kind is CommandKind.ACTION:
        return name
    separator = "=" if name[0] in "Ss" else ""
    return name + separator + command.args[0].text


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[str, list[Command]]:
    commands = draw(st.lists(st.one_of(extended_commands(), basic_commands()), max_size=6))
    dial = draw(st.booleans())
    line = random_case(draw, "AT") + spaces(draw)
    for position, command in enumerate(commands):
        last = position == len(commands) - 1 and not dial
        if command.name[0] in "+%#*$^":
            # an extended command ends at ";" (optional only at the end of the line)
            line += render_extended(draw, command) + (";" if not last or draw(st.booleans()) else "")
        else:
            line += render_basic(draw, command) + draw(st.sampled_from(["", "", ";"]))
        line += spaces(draw)
    if dial:  # a dial command swallows the rest of the line
        number = draw(st.text(max_size=20)).strip(" \t")
        line += random_case(draw, "D") + spaces(draw) + number
        commands.append(Command("D", CommandKind.SET, (Arg(number),)))
    return line, commands


@given(case=command_lines())
@settings(max_examples=200)
def test_render_parse_round_trip(case: tuple[str, list[Command]]) -> None:
    line, commands = case
    assert parse_command_line(line) == commands
