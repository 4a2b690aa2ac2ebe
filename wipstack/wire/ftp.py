"""FTP control-connection text: replies (RFC 959 §4.2), PASV/EPSV answers, PORT arguments.

Replies are lines ``<3 digits><SP>text`` or, spread over several lines, a first line
``<code>-text``, any lines, and a last line ``<code><SP>text`` with the same code
(RFC 959 §4.2).  :class:`ReplyParser` assembles them from the byte stream in any
splits, bounded in line length and line count so that a hostile server cannot grow it
without end.  ``227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)`` (RFC 959 §4.1.2) and
``229 Entering Extended Passive Mode (|||port|)`` (RFC 2428 §3) give the data port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wipstack.errors import DropReason, MalformedPacket

#: Longest reply line we hold (servers send short lines; RFC 959 sets no limit).
MAX_LINE = 4096
#: Most lines in one multi-line reply (a long LIST goes over the data connection, not here).
MAX_LINES = 1000

_PASV = re.compile(rb"(?<!\d)(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})(?!\d)")
_EPSV = re.compile(rb"\((.)\1\1(\d{1,5})\1\)")


@dataclass(frozen=True, slots=True)
class FtpReply:
    """One complete reply: its code and its text lines (without codes and line ends)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """All lines joined with newlines."""
        return "\n".join(self.lines)

    @property
    def kind(self) -> int:
        """The first digit: 1 preliminary, 2 completion, 3 intermediate, 4 transient, 5 permanent."""
        return self.code // 100


class ReplyParser:
    """Incremental reply assembly; :meth:`feed` returns the replies completed by ``data``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._code: int | None = None  # inside a multi-line reply
        self._lines: list[str] = []

    def feed(self, data: bytes) -> list[FtpReply]:
        """Octets from the control connection; raises ``MalformedPacket`` for a broken reply."""
        self._buffer += data
        replies: list[FtpReply] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE + 1:  # the line and its CR, waiting for the LF
                    raise MalformedPacket(DropReason.BAD_LENGTH, f"FTP reply line over {MAX_LINE} octets")
                return replies
            raw = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if len(raw) > MAX_LINE:
                raise MalformedPacket(DropReason.BAD_LENGTH, f"FTP reply line over {MAX_LINE} octets")
            reply = self._line(raw)
            if reply is not None:
                replies.append(reply)

    def _line(self, raw: bytes) -> FtpReply | None:
        text = raw.decode("utf-8", "replace")
        head = raw[:3]
        is_code = len(raw) >= 3 and head.isdigit() and (len(raw) == 3 or raw[3:4] in (b" ", b"-"))
        if self._code is None:
            if not is_code:
                raise MalformedPacket(DropReason.BAD_VALUE, f"FTP reply without a code: {text[:40]!r}")
            code = int(head)
            if not 100 <= code <= 599:
                raise MalformedPacket(DropReason.BAD_VALUE, f"FTP reply code {code}")
            if raw[3:4] == b"-":
                self._code = code
                self._lines = [text[4:]]
                return None
            return FtpReply(code, (text[4:],))
        # inside a multi-line reply: only "<same code><SP>" ends it (RFC 959 §4.2)
        if len(self._lines) >= MAX_LINES:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"FTP multi-line reply over {MAX_LINES} lines")
        if is_code and int(head) == self._code and raw[3:4] != b"-":
            code, lines = self._code, self._lines + [text[4:]]
            self._code, self._lines = None, []
            return FtpReply(code, tuple(lines))
        self._lines.append(text[4:] if is_code and int(head) == self._code else text)
        return None


def parse_pasv(reply: FtpReply) -> tuple[bytes, int]:
    """Address and port of a 227 reply (RFC 959 §4.1.2 PASV)."""
    match = _PASV.search(reply.text.encode("latin-1", "replace"))
    if match is None:
        raise MalformedPacket(DropReason.BAD_VALUE, f"227 without h1,h2,h3,h4,p1,p2: {reply.text[:60]!r}")
    numbers = [int(n) for n in match.groups()]
    if any(n > 255 for n in numbers):
        raise MalformedPacket(DropReason.BAD_VALUE, f"227 with a field over 255: {reply.text[:60]!r}")
    port = numbers[4] * 256 + numbers[5]
    if port == 0:
        raise MalformedPacket(DropReason.BAD_VALUE, "227 with port 0")
    return bytes(numbers[:4]), port


def parse_epsv(reply: FtpReply) -> int:
    """The port of a 229 reply (RFC 2428 §3: ``(<d><d><d><port><d>)``)."""
    match = _EPSV.search(reply.text.encode("latin-1", "replace"))
    if match is None:
        raise MalformedPacket(DropReason.BAD_VALUE, f"229 without (|||port|): {reply.text[:60]!r}")
    port = int(match.group(2))
    if not 1 <= port <= 65535:
        raise MalformedPacket(DropReason.BAD_VALUE, f"229 with port {port}")
    return port


def port_argument(address: bytes, port: int) -> str:
    """The argument of PORT for ``address``:``port`` (RFC 959 §4.1.2: h1,h2,h3,h4,p1,p2)."""
    if len(address) != 4 or not 1 <= port <= 65535:
        raise ValueError("PORT takes an IPv4 address and a port in 1..65535")
    return ",".join(str(b) for b in address) + f",{port >> 8},{port & 0xFF}"


def command_line(verb: str, argument: str | None = None) -> bytes:
    """A command line; refuses CR/LF in the argument (they would start another command)."""
    if any("\r" in text or "\n" in text for text in (verb, argument or "")):
        raise ValueError("FTP commands and arguments cannot contain CR or LF")
    text = verb if argument is None else f"{verb} {argument}"
    return text.encode("utf-8") + b"\r\n"
