"""A small blocking AT client for a serial line: what an embedded host does to drive a module.

``AtClient(link)`` sends a command line and returns its information lines and final result,
collects unsolicited lines on the way (``wait_urc``), switches to data mode and back with the
``+++`` escape (guard times included), and escapes/unescapes continuous-mode data.  The demo
drives the virtual module with it; it works the same against a real Wavecom/Sierra module.
"""

from __future__ import annotations

import contextlib
import re
import select
import time
from collections import deque

from wipstack.drivers.link import ByteLink

FINAL = re.compile(rb"^(OK|ERROR|\+CME ERROR: .*|CONNECT|NO CARRIER)$")


class AtTimeout(TimeoutError):
    """No final result (or the awaited line) in time."""


class AtClient:
    """Blocking AT conversation over ``link`` (see the module docstring)."""

    def __init__(self, link: ByteLink) -> None:
        self.link = link
        self.buffer = bytearray()
        self.urcs: deque[str] = deque()

    # ------------------------------------------------------------------ lines
    def command(self, line: str, timeout: float = 10.0) -> tuple[list[str], str]:
        """Send ``line``; return (information lines, final result)."""
        self.write(line.encode("latin-1") + b"\r")
        info: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            text = self._line(deadline)
            if FINAL.match(text.encode("latin-1")):
                return info, text
            if text.startswith("+") and not text.startswith(line.split("=")[0].split("?")[0][2:]):
                self.urcs.append(text)  # an unsolicited line that arrived meanwhile
            else:
                info.append(text)

    def wait_urc(self, prefix: str, timeout: float = 10.0) -> str:
        """The next unsolicited line starting with ``prefix`` (others are kept)."""
        for i, urc in enumerate(self.urcs):
            if urc.startswith(prefix):
                del self.urcs[i]
                return urc
        deadline = time.monotonic() + timeout
        while True:
            text = self._line(deadline)
            if text.startswith(prefix):
                return text
            self.urcs.append(text)

    def _line(self, deadline: float) -> str:
        while True:
            while True:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                raw = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                if raw:
                    return raw.decode("latin-1")
            self._fill(deadline)

    # ------------------------------------------------------------------ bytes
    def write(self, data: bytes) -> None:
        """Write everything (blocking politely)."""
        view = memoryview(data)
        while view:
            written = self.link.write(bytes(view[:4096]))
            if written == 0:
                select.select([], [self.link.write_fd], [], 1.0)
            view = view[written:]

    def read_some(self, timeout: float) -> bytes:
        """Whatever arrives within ``timeout`` (buffered bytes first)."""
        if not self.buffer:
            try:
                self._fill(time.monotonic() + timeout)
            except AtTimeout:
                return b""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.link.read_fd], [], [], remaining)[0]:
            raise AtTimeout("no answer from the module")
        with contextlib.suppress(BlockingIOError):
            self.buffer += self.link.read()

    def escape_to_command_mode(self, guard: float = 1.1, timeout: float = 5.0) -> None:
        """``+++`` with its guard times; waits for ``OK`` (data still arriving is dropped)."""
        time.sleep(guard)
        self.buffer.clear()
        self.write(b"+++")
        deadline = time.monotonic() + guard + timeout
        while b"\r\nOK\r\n" not in self.buffer:
            self._fill(deadline)
        del self.buffer[: self.buffer.index(b"\r\nOK\r\n") + 6]


def dle_escape(data: bytes) -> bytes:
    """Continuous-mode escaping of the host's data (DLE before DLE and ETX)."""
    return data.replace(b"\x10", b"\x10\x10").replace(b"\x03", b"\x10\x03")


def dle_unescape(data: bytes) -> tuple[bytes, bool]:
    """Undo :func:`dle_escape`; True when an unescaped ETX ended the data (it is dropped)."""
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x10 and i + 1 < len(data):
            out.append(data[i + 1])
            i += 2
            continue
        if byte == 0x03:
            return bytes(out), True
        out.append(byte)
        i += 1
    return bytes(out), False
