"""Sans-I/O parsing of AT command lines (ITU-T V.25ter §5, 3GPP TS 27.007 §4).

Two independent pieces, neither of which does any I/O:

``LineAssembler``
    Turns the byte stream received in command mode into command lines.  A line ends with
    CR, LF or CRLF (a CRLF pair, even split across two ``feed`` calls, ends one line only);
    backspace (0x08) and DEL (0x7F) delete the previous character (V.25ter §6.2.2, S5
    editing); NUL bytes are dropped as line noise; everything else is kept, decoded as
    latin-1 so any byte value survives.  A line longer than ``max_line`` characters is
    truncated, the rest of it discarded up to its terminator and reported once with
    ``too_long=True``, so an assembler never holds more than ``max_line`` characters.

``parse_command_line``
    Splits one assembled line into ``Command`` objects.  The grammar accepted (V.25ter
    §5.2-§5.4, 27.007 §4.1); spaces and tabs are ignored everywhere outside quoted strings,
    except that an unquoted parameter keeps its inner spaces::

        line      = "AT" { command | ";" }           ; "AT" in any case
        command   = basic | s-register | dial | extended
        basic     = ["&"] letter [ number | "?" ]    ; E0, E, &F, I3, X4, &D2, Q?
        s-register= "S" [number] [ "=" [number] | "?" ]
        dial      = "D" rest-of-line                  ; the rest, stripped, is the argument
        extended  = prefix name [ "?" | "=?" | "=" args ]  then ";" or end of line
        prefix    = "+" | "%" | "#" | "*" | "$" | "^"
        name      = 1*( letter | digit | "!" | "%" | "-" | "." | "/" | ":" | "_" )
        args      = arg *( "," arg )                  ; at most MAX_ARGS
        arg       = '"' *( char | "\\" hex hex ) '"' | token | (nothing)
        token     = 1*( any char but "," ";" '"' )

    Basic commands may be concatenated (``ATE0V1Q0``); an extended command ends at ``;``
    or at the end of the line, so everything up to there is its argument text.  Command
    names are upper-cased (an S-register number loses its leading zeros: ``S07`` -> ``S7``);
    argument text keeps its case.  Kinds follow 27.007 §4.1: ``+X`` is an ACTION, ``+X?``
    a READ, ``+X=?`` a TEST and ``+X=...`` a SET; a basic command with a number is a SET
    with the number as its only argument, without one an ACTION.

    Any malformed line raises ``AtSyntaxError`` and nothing else.  ``A/`` (repeat the last
    command line, V.25ter §5.2.4) is not a command line: recognise it with ``is_repeat``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "DEFAULT_MAX_LINE",
    "EXTENDED_PREFIXES",
    "MAX_ARGS",
    "Arg",
    "ArgError",
    "AtSyntaxError",
    "Command",
    "CommandKind",
    "Line",
    "LineAssembler",
    "is_repeat",
    "parse_command_line",
]

DEFAULT_MAX_LINE = 512
MAX_ARGS = 32
EXTENDED_PREFIXES = frozenset("+%#*$^")

_CR = 0x0D
_LF = 0x0A
_NUL = b"\x00"
# bytes the assembler must look at one by one; runs of anything else are copied in bulk
_SPECIAL_BYTES = re.compile(rb"[\r\n\x08\x7f]")

_SPACES = " \t"
_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_NAME_CHARS = _LETTERS | _DIGITS | frozenset("!%-./:_")
_QUOTE = '"'
_ESCAPE = "\\"


# --------------------------------------------------------------------------- line assembly


@dataclass(frozen=True, slots=True)
class Line:
    """One command line as typed, without its terminator.

    ``too_long`` is set when the line exceeded the assembler's ``max_line``: ``text`` then
    holds only its first ``max_line`` characters and the line should be answered ERROR.
    """

    text: str
    too_long: bool = False


class LineAssembler:
    """Incremental command-line assembly from raw UART bytes (see the module docstring)."""

    __slots__ = ("_after_cr", "_buffer", "_max_line", "_too_long")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be at least 1, got {max_line}")
        self._max_line = max_line
        self._buffer = bytearray()
        self._too_long = False
        # the last terminator was a CR: an LF arriving next completes it instead of ending a line
        self._after_cr = False

    @property
    def max_line(self) -> int:
        """The longest line, in characters, that is delivered whole."""
        return self._max_line

    @property
    def pending(self) -> str:
        """The partial line received so far (truncated to ``max_line`` if it is too long)."""
        return self._buffer.decode("latin-1")

    def reset(self) -> None:
        """Forget the partial line and any pending CR, e.g. when re-entering command mode."""
        self._buffer.clear()
        self._too_long = False
        self._after_cr = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Line]:
        """Consume ``data``; return the lines it completed, in order."""
        raw = bytes(data).replace(_NUL, b"")
        lines: list[Line] = []
        position = 0
        for match in _SPECIAL_BYTES.finditer(raw):
            start = match.start()
            if start > position:
                self._append(raw[position:start])
            octet = raw[start]
            if octet == _CR:
                self._finish_line(lines)
                self._after_cr = True
            elif octet == _LF:
                if self._after_cr:
                    self._after_cr = False
                else:
                    self._finish_line(lines)
            else:
                self._erase_one()
            position = start + 1
        if position < len(raw):
            self._append(raw[position:])
        return lines

    def _append(self, run: bytes) -> None:
        """Add ordinary characters, switching to discard mode once the line is too long."""
        self._after_cr = False
        if self._too_long:
            return
        room = self._max_line - len(self._buffer)
        if len(run) > room:
            self._buffer += run[:room]
            self._too_long = True
        else:
            self._buffer += run

    def _erase_one(self) -> None:
        """Backspace/DEL: delete the previous character; ignored while discarding."""
        self._after_cr = False
        if self._buffer and not self._too_long:
            del self._buffer[-1]

    def _finish_line(self, lines: list[Line]) -> None:
        lines.append(Line(self._buffer.decode("latin-1"), self._too_long))
        self._buffer.clear()
        self._too_long = False


# --------------------------------------------------------------------------- commands


class AtSyntaxError(Exception):
    """A command line that does not follow the V.25ter syntax; the answer is ERROR."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ArgError(ValueError):
    """A parameter that is syntactically fine but unacceptable to a command handler."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CommandKind(Enum):
    """The four forms of a command (27.007 §4.1)."""

    ACTION = "action"  # +X, or a basic command without a number
    SET = "set"  # +X=<args>, or a basic command with a number
    READ = "read"  # +X?
    TEST = "test"  # +X=?


@dataclass(frozen=True, slots=True)
class Arg:
    """One parameter: its text, and whether it was given as a quoted string."""

    text: str
    quoted: bool = False

    @property
    def is_empty(self) -> bool:
        """True for an omitted parameter (``1,,2``); ``""`` is an empty string, not omitted."""
        return not self.quoted and not self.text

    def as_int(self, lo: int, hi: int) -> int:
        """The parameter as a decimal integer in ``lo..hi``; raise ``ArgError`` otherwise.

        Only ASCII digits are accepted (leading zeros allowed, no sign); a quoted number is
        accepted too, since clients sometimes quote numbers.
        """
        text = self.text
        if not text:
            raise ArgError("missing value")
        if not _DIGITS.issuperset(text):
            raise ArgError(f"{text!r} is not a decimal integer")
        significant = text.lstrip("0") or "0"
        # compare lengths first: int() of thousands of digits is slow or refused outright
        if hi < 0 or len(significant) > len(str(hi)) or not lo <= int(significant) <= hi:
            raise ArgError(f"{text} is out of range {lo}..{hi}")
        return int(significant)

    def as_str(self, max_len: int) -> str:
        """The parameter text; raise ``ArgError`` if it is longer than ``max_len``."""
        if len(self.text) > max_len:
            raise ArgError(f"parameter longer than {max_len} characters")
        return self.text


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a command line: upper-cased name with its prefix, kind, parameters."""

    name: str
    kind: CommandKind
    args: tuple[Arg, ...] = ()


def is_repeat(text: str) -> bool:
    """True for ``A/`` (any case, surrounding spaces allowed): repeat the last command line."""
    return text.strip(_SPACES).upper() == "A/"


def parse_command_line(text: str) -> list[Command]:
    """Parse one command line into its commands; ``AT`` alone gives ``[]``.

    Raises ``AtSyntaxError`` (and nothing else) when the line is malformed.
    """
    start = len(text) - len(text.lstrip(_SPACES))
    if text[start : start + 2].upper() != "AT":
        raise AtSyntaxError("command line does not start with AT")
    return _CommandLineParser(text, start + 2).parse()


class _CommandLineParser:
    """Cursor over one command line; each method consumes one syntactic element."""

    __slots__ = ("_commands", "_position", "_text")

    def __init__(self, text: str, position: int) -> None:
        self._text = text
        self._position = position
        self._commands: list[Command] = []

    def parse(self) -> list[Command]:
        while (char := self._next_significant()) is not None:
            if char == ";":
                self._position += 1
            elif char in EXTENDED_PREFIXES:
                self._commands.append(self._extended())
            elif char == "&" or char in _LETTERS:
                self._commands.append(self._basic())
            else:
                raise self._error(f"illegal character {char!r} where a command must start")
        return self._commands

    # ------------------------------------------------------------------ scanning helpers

    def _error(self, reason: str) -> AtSyntaxError:
        return AtSyntaxError(f"{reason} (column {self._position + 1})")

    def _next_significant(self) -> str | None:
        """Skip spaces; return the character now under the cursor (not consumed), or None."""
        text = self._text
        position = self._position
        while position < len(text) and text[position] in _SPACES:
            position += 1
        self._position = position
        return text[position] if position < len(text) else None

    def _digits(self) -> str:
        """Consume a decimal number, spaces between its digits ignored; may be empty."""
        digits: list[str] = []
        while (char := self._next_significant()) is not None and char in _DIGITS:
            digits.append(char)
            self._position += 1
        return "".join(digits)

    def _expect_end_of_command(self, after: str) -> None:
        """After ``?`` or ``=?`` of an extended command only ``;`` or the end may follow."""
        char = self._next_significant()
        if char is not None and char != ";":
            raise self._error(f"unexpected {char!r} after {after!r}")

    # ------------------------------------------------------------------ basic commands

    def _basic(self) -> Command:
        letter = self._text[self._position]
        self._position += 1
        if letter == "&":
            following = self._next_significant()
            if following is None or following not in _LETTERS:
                raise self._error("'&' must be followed by a letter")
            self._position += 1
            return self._basic_tail("&" + following.upper())
        name = letter.upper()
        if name == "D":
            return self._dial()
        if name == "S":
            return self._s_register()
        return self._basic_tail(name)

    def _basic_tail(self, name: str) -> Command:
        """The optional number (SET) or ``?`` (READ) after a basic command name."""
        number = self._digits()
        if number:
            return Command(name, CommandKind.SET, (Arg(number),))
        if self._next_significant() == "?":
            self._position += 1
            return Command(name, CommandKind.READ)
        return Command(name, CommandKind.ACTION)

    def _dial(self) -> Command:
        """``D`` takes the rest of the line, whatever it is, as its dial string."""
        rest = self._text[self._position :].strip(_SPACES)
        self._position = len(self._text)
        return Command("D", CommandKind.SET, (Arg(rest),))

    def _s_register(self) -> Command:
        """``Sn?`` reads, ``Sn=v`` sets (``v`` may be empty), bare ``Sn`` is an ACTION."""
        number = self._digits()
        name = "S" + (number.lstrip("0") or "0") if number else "S"
        char = self._next_significant()
        if char == "?":
            self._position += 1
            return Command(name, CommandKind.READ)
        if char == "=":
            self._position += 1
            return Command(name, CommandKind.SET, (Arg(self._digits()),))
        return Command(name, CommandKind.ACTION)

    # ------------------------------------------------------------------ extended commands

    def _extended(self) -> Command:
        name = self._extended_name()
        char = self._next_significant()
        if char == "?":
            self._position += 1
            self._expect_end_of_command("?")
            return Command(name, CommandKind.READ)
        if char == "=":
            self._position += 1
            if self._next_significant() == "?":
                self._position += 1
                self._expect_end_of_command("=?")
                return Command(name, CommandKind.TEST)
            return Command(name, CommandKind.SET, self._arguments())
        return Command(name, CommandKind.ACTION)  # at ";" or the end of the line

    def _extended_name(self) -> str:
        prefix = self._text[self._position]
        self._position += 1
        name: list[str] = [prefix]
        while (char := self._next_significant()) is not None and char in _NAME_CHARS:
            name.append(char)
            self._position += 1
        if len(name) == 1:
            raise self._error(f"missing command name after {prefix!r}")
        if char is not None and char not in "=?;":
            raise self._error(f"illegal character {char!r} in command name")
        return "".join(name).upper()

    def _arguments(self) -> tuple[Arg, ...]:
        """Comma-separated parameters up to ``;`` (consumed later) or the end of the line."""
        args: list[Arg] = []
        while True:
            if len(args) == MAX_ARGS:
                raise self._error(f"more than {MAX_ARGS} parameters")
            if self._next_significant() == _QUOTE:
                args.append(Arg(self._quoted_string(), quoted=True))
                char = self._next_significant()
                if char is not None and char not in ",;":
                    raise self._error(f"unexpected {char!r} after a quoted string")
            else:
                args.append(Arg(self._token()))
            if self._position < len(self._text) and self._text[self._position] == ",":
                self._position += 1
                continue
            return tuple(args)

    def _token(self) -> str:
        """An unquoted parameter: up to ``,``, ``;`` or the end, surrounding spaces stripped."""
        text = self._text
        start = position = self._position
        while position < len(text) and text[position] not in ',;"':
            position += 1
        self._position = position
        if position < len(text) and text[position] == _QUOTE:
            raise self._error("quote inside an unquoted parameter")
        return text[start:position].strip(_SPACES)

    def _quoted_string(self) -> str:
        """A ``"..."`` string with ``\\HH`` hex escapes decoded; the cursor is on the quote.

        A backslash not followed by two hex digits is kept as it is.
        """
        text = self._text
        opening = self._position
        closing = text.find(_QUOTE, opening + 1)
        if closing < 0:
            raise self._error("unterminated quoted string")
        self._position = closing + 1
        body = text[opening + 1 : closing]
        if _ESCAPE not in body:
            return body
        decoded: list[str] = []
        index = 0
        while index < len(body):
            char = body[index]
            escape = body[index + 1 : index + 3]
            if char == _ESCAPE and len(escape) == 2 and _HEX_DIGITS.issuperset(escape):
                decoded.append(chr(int(escape, 16)))
                index += 3
            else:
                decoded.append(char)
                index += 1
        return "".join(decoded)
