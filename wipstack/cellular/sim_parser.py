"""The DCE side of V.25ter command lines: assembling them from octets, and splitting them into commands.

:class:`CommandLineAssembler` takes one octet at a time (the port must switch to online data
mode in the middle of a chunk, so it works octet by octet) and follows V.25ter §5.2.1: it
waits for ``A``/``a``, then ``T``/``t`` starts a line (``/`` repeats the previous one at
once, §5.2.4), S3 (CR) ends it, S5 (BS, and DEL) deletes the last character, and other
control characters are ignored.  It never holds more than ``max_line`` characters: the rest
of a longer line is dropped and the line is reported as too long (answered with ERROR).

:func:`parse_command_line` splits the text after ``AT`` into :class:`Command` values
(V.25ter §5.3-§5.4, 27.007 §4.1); it raises :class:`AtSyntaxError` and nothing else::

    basic      = letter [digits] | "&" letter [digits]      ; E0, V, &D2, I
    s-register = "S" digits ( "?" | "=" [digits] )           ; S0=2, S12?
    dial       = "D" rest-of-line                            ; the dial string
    extended   = "+" name [ "?" | "=?" | "=" args ] [";"]    ; +CGDCONT=1,"IP","apn";+CGACT?

Spaces outside quoted strings are ignored; names are upper-cased, arguments keep their case.
"""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass

__all__ = [
    "Arg",
    "AtSyntaxError",
    "Command",
    "CommandKind",
    "CommandLineAssembler",
    "LineComplete",
    "RepeatLine",
    "parse_command_line",
]

CR, LF, BS, DEL = 0x0D, 0x0A, 0x08, 0x7F
#: Extended command prefixes accepted (27.007 uses "+", manufacturers the others).
EXTENDED_PREFIXES = "+^$%#"
NAME_CHARS = frozenset(string.ascii_uppercase + string.digits + "!%-./:_")
LETTERS = frozenset(string.ascii_letters)
DIGITS = frozenset(string.digits)
MAX_ARGS = 16
MAX_NAME = 16


class AtSyntaxError(ValueError):
    """A command line that does not follow the grammar (answered with ERROR)."""


class CommandKind(enum.Enum):
    """27.007 §4.1: ``+X`` action, ``+X=...`` set, ``+X?`` read, ``+X=?`` test."""

    ACTION = "action"
    SET = "set"
    READ = "read"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Arg:
    """One parameter: its text and whether it was a quoted string."""

    text: str
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a line: ``E`` (SET "0"), ``S`` (args: register [, value]), ``D`` (dial string), ``+CREG``."""

    name: str
    kind: CommandKind
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True, slots=True)
class LineComplete:
    """A command line ended with S3: ``text`` follows "AT"; ``too_long`` lines get ERROR."""

    text: str
    too_long: bool = False


@dataclass(frozen=True, slots=True)
class RepeatLine:
    """``A/``: execute the previous command line again (V.25ter §5.2.4)."""


class _Phase(enum.Enum):
    IDLE = 0  # waiting for "A"
    GOT_A = 1  # "A" seen: "T" starts a line, "/" repeats the last one
    LINE = 2  # inside a line, after "AT"


class CommandLineAssembler:
    """Octets of command mode in, completed lines out (see the module docstring)."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._phase = _Phase.IDLE
        self._chars: list[str] = []
        self._too_long = False

    @property
    def pending(self) -> int:
        """Characters held for the line being typed."""
        return len(self._chars)

    def reset(self) -> None:
        """Forget a partly typed line."""
        self._phase = _Phase.IDLE
        self._chars.clear()
        self._too_long = False

    def push(self, octet: int) -> LineComplete | RepeatLine | None:
        """Take one octet; a line (or a repeat request) when it completes one."""
        if self._phase is _Phase.LINE:
            return self._in_line(octet)
        if octet in (0x41, 0x61):  # "A" / "a"
            self._phase = _Phase.GOT_A
        elif self._phase is _Phase.GOT_A and octet in (0x54, 0x74):  # "T" / "t"
            self._phase = _Phase.LINE
            self._chars.clear()
            self._too_long = False
        elif self._phase is _Phase.GOT_A and octet == 0x2F:  # "/" (V.25ter §5.2.4)
            self._phase = _Phase.IDLE
            return RepeatLine()
        else:
            self._phase = _Phase.IDLE  # anything before "AT" is ignored (V.25ter §5.2.1)
        return None

    def _in_line(self, octet: int) -> LineComplete | None:
        if octet == CR:
            line = LineComplete("".join(self._chars), self._too_long)
            self.reset()
            return line
        if octet in (BS, DEL):
            if self._chars and not self._too_long:
                self._chars.pop()  # S5 editing; the "AT" prefix itself is never deleted
            return None
        if octet < 0x20:
            return None  # other control characters are ignored (V.25ter §5.2.1)
        if len(self._chars) < self.max_line:
            self._chars.append(chr(octet))
        else:
            self._too_long = True
        return None


def parse_command_line(body: str) -> list[Command]:
    """The commands of one line (the text after "AT"); AtSyntaxError if it is malformed."""
    commands: list[Command] = []
    index, end = 0, len(body)
    while index < end:
        char = body[index]
        if char in " ;":
            index += 1  # spaces are ignored; a stray ";" between commands is harmless
            continue
        if char in EXTENDED_PREFIXES:
            command, index = _extended(body, index)
        elif char in "Dd":
            commands.append(Command("D", CommandKind.SET, (Arg(body[index + 1 :].strip()),)))
            break  # the dial string is the rest of the line (V.25ter §6.3.1)
        elif char in "Ss":
            command, index = _s_register(body, index + 1)
        elif char == "&":
            if index + 1 >= end or body[index + 1] not in LETTERS:
                raise AtSyntaxError("& must be followed by a letter")
            command, index = _basic("&" + body[index + 1].upper(), body, index + 2)
        elif char in LETTERS:
            command, index = _basic(char.upper(), body, index + 1)
        else:
            raise AtSyntaxError(f"unexpected character {char!r}")
        commands.append(command)
    return commands


def _skip_spaces(body: str, index: int) -> int:
    while index < len(body) and body[index] == " ":
        index += 1
    return index


def _digits(body: str, index: int) -> tuple[str, int]:
    start = index
    while index < len(body) and body[index] in DIGITS:
        index += 1
    return body[start:index], index


def _basic(name: str, body: str, index: int) -> tuple[Command, int]:
    digits, index = _digits(body, _skip_spaces(body, index))
    if digits:
        return Command(name, CommandKind.SET, (Arg(digits),)), index
    return Command(name, CommandKind.ACTION), index


def _s_register(body: str, index: int) -> tuple[Command, int]:
    number, index = _digits(body, _skip_spaces(body, index))
    if not number:
        raise AtSyntaxError("S needs a register number")
    index = _skip_spaces(body, index)
    if index < len(body) and body[index] == "?":
        return Command("S", CommandKind.READ, (Arg(number),)), index + 1
    if index < len(body) and body[index] == "=":
        value, index = _digits(body, _skip_spaces(body, index + 1))
        return Command("S", CommandKind.SET, (Arg(number), Arg(value or "0"))), index
    raise AtSyntaxError("S<n> needs ? or =")


def _extended(body: str, index: int) -> tuple[Command, int]:
    start = index
    index += 1
    while index < len(body) and body[index].upper() in NAME_CHARS and body[index] in string.printable:
        index += 1
    name = body[start:index].upper()
    if len(name) < 2 or len(name) > MAX_NAME:
        raise AtSyntaxError("bad extended command name")
    index = _skip_spaces(body, index)
    kind = CommandKind.ACTION
    args: tuple[Arg, ...] = ()
    if index < len(body) and body[index] == "?":
        kind, index = CommandKind.READ, index + 1
    elif index < len(body) and body[index] == "=":
        after = _skip_spaces(body, index + 1)
        if after < len(body) and body[after] == "?":
            kind, index = CommandKind.TEST, after + 1
        else:
            kind = CommandKind.SET
            args, index = _arguments(body, index + 1)
    index = _skip_spaces(body, index)
    if index < len(body):
        if body[index] != ";":
            raise AtSyntaxError(f"{name}: junk after the command")
        index += 1
    return Command(name, kind, args), index


def _arguments(body: str, index: int) -> tuple[tuple[Arg, ...], int]:
    args: list[Arg] = []
    text: list[str] = []
    quoted = False
    while True:
        index = _skip_spaces(body, index)
        if index < len(body) and body[index] == '"':
            close = body.find('"', index + 1)
            if close < 0:
                raise AtSyntaxError("unterminated string")
            text, quoted = [body[index + 1 : close]], True
            index = _skip_spaces(body, close + 1)
        while index < len(body) and body[index] not in ',;"':
            if quoted and body[index] != " ":
                raise AtSyntaxError("junk after a string")
            if body[index] != " ":
                text.append(body[index])
            index += 1
        if index < len(body) and body[index] == '"':
            raise AtSyntaxError("quote inside a parameter")
        args.append(Arg("".join(text), quoted))
        if len(args) > MAX_ARGS:
            raise AtSyntaxError("too many parameters")
        text, quoted = [], False
        if index < len(body) and body[index] == ",":
            index += 1
            continue
        return tuple(args), index
