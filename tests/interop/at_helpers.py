"""Helpers for the AT-command interop tests: a UART client for ``wipstack modem``, and the modem process.

:class:`AtClient` opens one UART of a running ``python -m wipstack modem`` through its pty
symlink (raw mode, ``O_NOCTTY``, non-blocking) and talks to it as an embedded host would:

* :meth:`AtClient.command` sends ``AT...`` + CR and reads the lines up to the final result
  (``OK``, ``ERROR``, ``+CME ERROR: <n>``, ``CONNECT``, ``NO CARRIER``);
* :meth:`AtClient.wait_for` waits for an unsolicited line (``+WIPREADY: 2,1``);
* in data mode (after ``CONNECT``) :meth:`AtClient.send` writes raw bytes while it keeps reading,
  :meth:`AtClient.read_data` / :meth:`AtClient.read_data_until` give the raw bytes the module sent,
  and :meth:`AtClient.escape` does the ``+++`` escape with real guard times.

:func:`dle_escape` / :func:`dle_unescape` are the continuous-mode (``AT+WIPDATA=...,1``) DLE/ETX
stuffing rules, written independently of ``at_frontend.escaping``.

:func:`running_modem` starts ``python -m wipstack modem`` in a temporary directory and stops it
(SIGTERM, then SIGKILL, by PID); it yields a :class:`ModemProcess` with the UART and flash paths.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DLE, ETX = 0x10, 0x03
DLE_B, ETX_B = b"\x10", b"\x03"
SHUTDOWN = b"\r\nSHUTDOWN\r\n"
NO_CARRIER = b"\r\nNO CARRIER\r\n"
OK_LINE = b"\r\nOK\r\n"
FINAL = re.compile(r"^(OK|ERROR|\+CME ERROR: .*|CONNECT|NO CARRIER)$")
GUARD = 1.1  # seconds of silence around "+++" (the module wants >= 0.5 s before, 0.5 s after)


# ---------------------------------------------------------------------------- DLE / ETX


def dle_escape(data: bytes) -> bytes:
    """Continuous mode, host -> module: a data 0x10 or 0x03 is sent as DLE + that byte."""
    out = bytearray()
    for byte in data:
        if byte in (DLE, ETX):
            out.append(DLE)
        out.append(byte)
    return bytes(out)


def dle_unescape(data: bytes) -> tuple[bytes, list[int]]:
    """Continuous mode, module -> host: (the data, the offsets in it where an unescaped ETX stood).

    ``DLE x`` is the data byte ``x``; a bare ETX is a marker (end of a UDP datagram).  A DLE at
    the very end is an error here (the caller must pass complete chunks).
    """
    out = bytearray()
    etx_at: list[int] = []
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == DLE:
            if i + 1 >= len(data):
                raise ValueError("data ends with a lone DLE")
            out.append(data[i + 1])
            i += 2
            continue
        if byte == ETX:
            etx_at.append(len(out))
        else:
            out.append(byte)
        i += 1
    return bytes(out), etx_at


def _unescape_prefix(raw: bytes, count: int) -> tuple[bytes, int, int | None]:
    """Unescape at most ``count`` data octets from the start of ``raw``.

    Returns (data, raw octets used, data offset of the first unescaped ETX or None); stops
    before a lone DLE at the end (its partner has not come yet) and at an unescaped ETX.
    """
    out = bytearray()
    i = 0
    while i < len(raw) and len(out) < count:
        byte = raw[i]
        if byte == DLE:
            if i + 1 >= len(raw):
                break
            out.append(raw[i + 1])
            i += 2
        elif byte == ETX:
            return bytes(out), i, len(out)
        else:
            out.append(byte)
            i += 1
    return bytes(out), i, None


def split_datagrams(data: bytes) -> tuple[list[bytes], bytes]:
    """Escaped module output of a UDP socket in continuous mode -> (complete datagrams, rest).

    The rest is what follows the last unescaped ETX (an incomplete datagram, still escaped).
    """
    datagrams: list[bytes] = []
    current = bytearray()
    start = 0
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == DLE:
            if i + 1 >= len(data):
                break
            current.append(data[i + 1])
            i += 2
            continue
        if byte == ETX:
            datagrams.append(bytes(current))
            current.clear()
            start = i + 1
        else:
            current.append(byte)
        i += 1
    return datagrams, data[start:]


def all_byte_values(size: int, seed: int = 0) -> bytes:
    """``size`` octets in which every value 0-255 occurs (many times), DLE and ETX included."""
    rng = random.Random(seed)
    base = bytes(range(256))
    out = bytearray(base)
    while len(out) < size:
        out += bytes(rng.randrange(256) for _ in range(min(256, size - len(out))))
        out += base[: max(0, min(256, size - len(out)))]
    return bytes(out[:size])


# ---------------------------------------------------------------------------- the UART client


class AtError(AssertionError):
    """The module did not answer as expected (carries what the UART showed)."""


@dataclass
class Response:
    """One command's answer: the lines before the final result, and the final result."""

    command: str
    lines: list[str]
    final: str

    @property
    def ok(self) -> bool:
        return self.final == "OK"

    def __str__(self) -> str:
        return f"{self.command!r} -> {self.lines} {self.final}"


class AtClient:
    """One UART of the virtual module (see the module docstring).

    Bytes read from the line accumulate in :attr:`raw`.  In AT mode they are cut into lines
    (CR and/or LF separate them; empty lines are dropped); every line goes to
    :attr:`transcript` and, unless a command claims it, to :attr:`unclaimed`, where
    :meth:`wait_for` finds it.  A ``CONNECT`` line switches the client to data mode: from then
    on the bytes stay raw until :meth:`escape` (or a ``NO CARRIER``) ends it.
    """

    def __init__(self, path: str | os.PathLike[str], name: str = "UART") -> None:
        self.path = str(path)
        self.name = name
        self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(self.fd, termios.TCSANOW)  # TCSANOW: what the module already wrote stays
            attrs = termios.tcgetattr(self.fd)
            attrs[2] = (attrs[2] & ~(termios.CRTSCTS | termios.HUPCL)) | termios.CLOCAL | termios.CREAD
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        except BaseException:
            os.close(self.fd)
            raise
        self.raw = bytearray()
        self.data_mode = False
        self.transcript: list[str] = []
        self.unclaimed: list[str] = []
        self.last_io = time.monotonic()
        self.closed = False

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def __enter__(self) -> AtClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pump(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout`` for the first byte); True if anything came."""
        readable, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not readable:
            return False
        got = False
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EIO:  # the module closed the pty
                    raise AtError(f"{self.name}: the line hung up (EIO)\n{self.story()}") from exc
                raise
            if not chunk:  # EOF: the module closed its side (a pty slave reads 0 after the hang-up)
                if got and not self.data_mode:
                    self._parse_lines()
                raise AtError(f"{self.name}: the line hung up (EOF)\n{self.story()}")
            self.raw += chunk
            got = True
        if got and not self.data_mode:
            self._parse_lines()
        return got

    def _parse_lines(self) -> None:
        """Cut AT-mode lines off :attr:`raw`; stop after CONNECT (what follows is data)."""
        while not self.data_mode:
            match = re.search(rb"[\r\n]", self.raw)
            if match is None:
                return
            line = bytes(self.raw[: match.start()]).decode("latin-1")
            del self.raw[: match.end()]
            if not line.strip():
                continue
            self.transcript.append(line)
            self.unclaimed.append(line)
            if line == "CONNECT":
                # the CONNECT line's own LF belongs to it, not to the data
                if self.raw[:1] == b"\n":
                    del self.raw[:1]
                self.data_mode = True

    def send(self, data: bytes, timeout: float = 60.0) -> None:
        """Write ``data`` (keeps reading meanwhile, so the module is never blocked on its output)."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AtError(f"{self.name}: could not write {len(view)} more octets in {timeout:g} s\n{self.story()}")
            readable, writable, _ = select.select([self.fd], [self.fd], [], min(remaining, 1.0))
            if readable:
                self._pump(0)
            if writable:
                try:
                    written = os.write(self.fd, view[:4096])
                except BlockingIOError:
                    continue
                view = view[written:]
        self.last_io = time.monotonic()

    # ------------------------------------------------------------------ AT mode
    def command(self, line: str, timeout: float = 10.0, *, expect: str | None = "OK") -> Response:
        """Send ``line`` + CR; return its lines and final result.

        ``expect``: the final result required (``AtError`` otherwise); None accepts any.
        The answer is what follows the echo of ``line``; unsolicited lines that came before
        the echo stay for :meth:`wait_for`.
        """
        if self.data_mode:
            raise AtError(f"{self.name}: {line!r} sent in data mode")
        start = len(self.unclaimed)
        self.send(line.encode("latin-1") + b"\r")
        deadline = time.monotonic() + timeout
        while True:
            # the answer starts after the echo of the line: what came before it is unsolicited
            # (with ATE0 there is no echo, and the answer is everything since the line was sent)
            begin = next((i for i in range(start, len(self.unclaimed)) if self.unclaimed[i] == line), None)
            first = start if begin is None else begin + 1
            for index in range(first, len(self.unclaimed)):
                if FINAL.match(self.unclaimed[index]):
                    taken = self.unclaimed[first : index + 1]
                    del self.unclaimed[first : index + 1]
                    if begin is not None:
                        del self.unclaimed[begin]
                    response = Response(line, taken[:-1], taken[-1])
                    if expect is not None and response.final != expect:
                        raise AtError(f"{self.name}: {response}, expected {expect}\n{self.story()}")
                    return response
            if time.monotonic() >= deadline:
                raise AtError(f"{self.name}: no final result for {line!r} within {timeout:g} s\n{self.story()}")
            self._pump(min(0.2, max(0.0, deadline - time.monotonic())))

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first unclaimed AT-mode line matching ``pattern`` (``re.fullmatch``), waiting for it.

        The line is claimed (removed); lines before it stay for later waits.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for index, text in enumerate(self.unclaimed):
                match = regex.fullmatch(text)
                if match:
                    del self.unclaimed[index]
                    return match
            if time.monotonic() >= deadline:
                raise AtError(f"{self.name}: no line matching {pattern!r} within {timeout:g} s\n{self.story()}")
            self._pump(min(0.2, max(0.0, deadline - time.monotonic())))

    def wait_all(self, pattern: str, count: int, timeout: float = 10.0) -> list[re.Match[str]]:
        """``count`` lines matching ``pattern``, in the order they came."""
        deadline = time.monotonic() + timeout
        return [self.wait_for(pattern, max(0.0, deadline - time.monotonic())) for _ in range(count)]

    def settle(self, quiet: float = 0.3, timeout: float = 5.0) -> None:
        """Read until the line was quiet for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._pump(quiet):
            pass

    def lines_matching(self, pattern: str) -> list[str]:
        """Unclaimed lines matching ``pattern`` (not claimed by this call)."""
        regex = re.compile(pattern)
        return [text for text in self.unclaimed if regex.fullmatch(text)]

    # ------------------------------------------------------------------ data mode
    def take_data(self) -> bytes:
        """Every raw byte received so far in data mode (consumed)."""
        data = bytes(self.raw)
        self.raw.clear()
        return data

    def read_data(self, count: int, timeout: float = 30.0) -> bytes:
        """Exactly ``count`` raw octets (as the module sent them), waiting for them."""
        deadline = time.monotonic() + timeout
        while len(self.raw) < count:
            if time.monotonic() >= deadline:
                raise AtError(
                    f"{self.name}: {len(self.raw)} of {count} octets within {timeout:g} s; "
                    f"tail {bytes(self.raw[-200:])!r}\n{self.story()}"
                )
            self._pump(min(0.2, max(0.0, deadline - time.monotonic())))
        data = bytes(self.raw[:count])
        del self.raw[:count]
        return data

    def read_data_until(self, marker: bytes, timeout: float = 30.0) -> bytes:
        """Raw octets up to ``marker`` (the marker is consumed, not returned)."""
        deadline = time.monotonic() + timeout
        while (at := self.raw.find(marker)) < 0:
            if time.monotonic() >= deadline:
                raise AtError(
                    f"{self.name}: no {marker!r} within {timeout:g} s; {len(self.raw)} octets waiting, "
                    f"tail {bytes(self.raw[-200:])!r}\n{self.story()}"
                )
            self._pump(min(0.2, max(0.0, deadline - time.monotonic())))
        data = bytes(self.raw[:at])
        del self.raw[: at + len(marker)]
        return data

    def read_unescaped(self, count: int, timeout: float = 30.0) -> bytes:
        """Continuous mode: ``count`` data octets, DLE-unescaped (an unescaped ETX in between fails)."""
        deadline = time.monotonic() + timeout
        decoded = bytearray()
        used = 0  # raw octets decoded so far (raw is only appended to meanwhile)
        while True:
            data, n, etx = _unescape_prefix(bytes(self.raw[used:]), count - len(decoded))
            decoded += data
            used += n
            if etx is not None:
                raise AtError(f"{self.name}: unexpected ETX in TCP data after {len(decoded)} octets\n{self.story()}")
            if len(decoded) >= count:
                del self.raw[:used]
                return bytes(decoded)
            if time.monotonic() >= deadline:
                raise AtError(
                    f"{self.name}: {len(decoded)} of {count} data octets within {timeout:g} s; "
                    f"tail {bytes(self.raw[-200:])!r}\n{self.story()}"
                )
            self._pump(min(0.2, max(0.0, deadline - time.monotonic())))

    def read_datagrams(self, count: int, timeout: float = 30.0) -> list[bytes]:
        """Continuous mode on UDP: ``count`` complete datagrams (each ended by an unescaped ETX)."""
        deadline = time.monotonic() + timeout
        while True:
            datagrams, rest = split_datagrams(bytes(self.raw))
            if len(datagrams) >= count:
                # keep what follows the count-th datagram
                consumed = 0
                seen = 0
                raw = bytes(self.raw)
                while seen < count:
                    if raw[consumed] == DLE:
                        consumed += 2
                        continue
                    if raw[consumed] == ETX:
                        seen += 1
                    consumed += 1
                del self.raw[:consumed]
                return datagrams[:count]
            if time.monotonic() >= deadline:
                raise AtError(
                    f"{self.name}: {len(datagrams)} of {count} datagrams within {timeout:g} s; "
                    f"rest {rest[-200:]!r}\n{self.story()}"
                )
            self._pump(min(0.2, max(0.0, deadline - time.monotonic())))

    def escape(self, timeout: float = 10.0) -> bytes:
        """``+++`` with real guard times; back in AT mode after ``OK``.

        Returns the raw data octets the module sent before its ``OK``.
        """
        if not self.data_mode:
            raise AtError(f"{self.name}: +++ in AT mode")
        silent_for = time.monotonic() - self.last_io
        if silent_for < GUARD:
            self._sleep_reading(GUARD - silent_for)
        self.send(b"+++")
        self._sleep_reading(GUARD)
        before = self.read_data_until(OK_LINE, timeout)
        self.data_mode = False
        self.transcript.append("OK (after +++)")
        self._parse_lines()
        return before

    def leave_data_mode_on(self, marker: bytes = NO_CARRIER, timeout: float = 10.0) -> bytes:
        """Data mode ended by the module (``NO CARRIER``): the data before it; AT mode again."""
        before = self.read_data_until(marker, timeout)
        self.data_mode = False
        self._parse_lines()
        return before

    def _sleep_reading(self, seconds: float) -> None:
        """Sleep ``seconds`` of real time, reading (never writing) meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._pump(left)

    # ------------------------------------------------------------------ diagnostics
    def story(self, lines: int = 30) -> str:
        mode = "data" if self.data_mode else "AT"
        return (
            f"--- {self.name} ({self.path}) in {mode} mode; last lines:\n"
            + "\n".join(self.transcript[-lines:])
            + f"\n--- unclaimed: {self.unclaimed[-lines:]}\n--- raw waiting: {bytes(self.raw[-300:])!r}"
        )


# ---------------------------------------------------------------------------- the modem process


@dataclass
class LoggedProcess:
    """A wipstack process whose stderr lines are collected by a reader thread; stopped by PID."""

    proc: subprocess.Popen[bytes]
    directory: Path
    lines: list[str] = field(default_factory=list, kw_only=True)
    reader: threading.Thread | None = field(default=None, kw_only=True)
    what: str = field(default="wipstack modem", kw_only=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if found := regex.search(line):
                    return found
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the reader catch the last lines
                for line in list(self.lines):
                    if found := regex.search(line):
                        return found
                raise AtError(f"{self.what} exited ({self.proc.returncode}) before {pattern!r}:\n{self.stderr}")
            if time.monotonic() >= deadline:
                raise AtError(f"{self.what}: no {pattern!r} within {timeout:g} s:\n{self.stderr}")
            time.sleep(0.02)

    def start_reader(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait; SIGKILL (by PID) if it does not stop in time. Its exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._finish()
        assert self.proc.returncode is not None
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL by PID (a crash: nothing is cleaned up by the module itself)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)
        self._finish()

    def _finish(self) -> None:
        if self.reader is not None:
            self.reader.join(5)
        if self.proc.stderr is not None:
            with contextlib.suppress(OSError):
                self.proc.stderr.close()


@dataclass
class ModemProcess(LoggedProcess):
    """A running ``python -m wipstack modem`` (see :func:`running_modem`)."""

    uart1: Path
    uart2: Path
    flash: Path

    def client(self, uart: int = 1) -> AtClient:
        return AtClient(self.uart1 if uart == 1 else self.uart2, name=f"UART{uart}")


def start_modem(directory: Path, *args: str, flash: Path | None = None, ready_timeout: float = 30.0) -> ModemProcess:
    """Start the modem with its UARTs in ``directory`` (``u1``, ``u2``); wait for its ``ready`` line."""
    uart1, uart2 = directory / "u1", directory / "u2"
    flash = flash if flash is not None else directory / "flash"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wipstack", "modem", "--uart1", str(uart1), "--uart2", str(uart2),
         "--flash", str(flash), *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    modem = ModemProcess(proc, directory, uart1, uart2, flash)
    modem.start_reader()
    try:
        modem.wait_line(r"; ready$", ready_timeout)
    except BaseException:
        modem.kill9()
        raise
    return modem


@contextlib.contextmanager
def running_modem(*args: str, flash: Path | None = None, directory: Path | None = None) -> Iterator[ModemProcess]:
    """``python -m wipstack modem --uart1 D/u1 --uart2 D/u2 --flash D/flash <args>`` for the block.

    ``D`` is a new temporary directory unless ``directory`` is given.  Stopped afterwards with
    SIGTERM (SIGKILL by PID if that does not work); the temporary directory is removed.
    """
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ws-at-")))
        modem = start_modem(directory, *args, flash=flash)
        try:
            yield modem
        finally:
            modem.stop()


# ---------------------------------------------------------------------------- the peer's programs

#: The far end's servers and job runner:
#: ``python3 -c AGENT_SCRIPT <addr> <dir> <tcp echo port> <udp echo port> [<lifetime s, default 240>]``.
#: It runs in a test namespace (the kernel's end of the TUN bearer) or in the UML guest (pppd's end).
#: * a TCP echo server: echoes until EOF, then closes, and logs ``tcp-echo <peer> <n> octets sha256=<hex>``;
#: * a UDP echo server: sends every datagram back, logs ``udp-echo <peer> <n> octets``;
#: * a job runner: each ``<dir>/jobs/<name>.py`` (written atomically by :class:`PeerAgent`) is run
#:   once with ``exec`` in a thread (``ADDR`` is the bind address); its global ``result`` is written
#:   as JSON to ``<dir>/jobs/<name>.out`` ({"ok": true, "result": ...} or {"ok": false, "error": ...});
#: * ``<dir>/agent.ready`` once everything listens; it exits when ``<dir>/agent.stop`` appears or
#:   after its lifetime.
AGENT_SCRIPT = r"""
import hashlib, json, os, socket, sys, threading, time, traceback

ADDR, DIR = sys.argv[1], sys.argv[2]
TCP_ECHO, UDP_ECHO = int(sys.argv[3]), int(sys.argv[4])
LIFETIME = float(sys.argv[5]) if len(sys.argv) > 5 else 240.0
JOBS = os.path.join(DIR, "jobs")
os.makedirs(JOBS, exist_ok=True)
lock = threading.Lock()

def log(line):
    with lock, open(os.path.join(DIR, "agent.log"), "a") as f:
        f.write(line + "\n")

def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)

def tcp_echo(c, peer):
    h, n = hashlib.sha256(), 0
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
            c.sendall(b)
        c.close()
        log("tcp-echo %s:%d %d octets sha256=%s" % (peer[0], peer[1], n, h.hexdigest()))
    except OSError as exc:
        log("tcp-echo %s:%d failed after %d octets: %r" % (peer[0], peer[1], n, exc))

def serve_tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ADDR, TCP_ECHO))
    s.listen(8)
    while True:
        c, peer = s.accept()
        threading.Thread(target=tcp_echo, args=(c, peer), daemon=True).start()

def serve_udp(s):
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(data, peer)
        log("udp-echo %s:%d %d octets" % (peer[0], peer[1], len(data)))

def run_job(name, path):
    env = {"__name__": "__job__", "ADDR": ADDR}
    try:
        with open(path) as f:
            code = f.read()
        exec(compile(code, path, "exec"), env)
        out = {"ok": True, "result": env.get("result")}
    except BaseException:
        out = {"ok": False, "error": traceback.format_exc()}
    write_atomic(os.path.join(JOBS, name + ".out"), json.dumps(out))

def watch_jobs():
    seen = set()
    while True:
        for entry in sorted(os.listdir(JOBS)):
            if entry.endswith(".py") and entry not in seen:
                seen.add(entry)
                threading.Thread(target=run_job, args=(entry[:-3], os.path.join(JOBS, entry)), daemon=True).start()
        time.sleep(0.05)

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((ADDR, UDP_ECHO))
threading.Thread(target=serve_tcp, daemon=True).start()
threading.Thread(target=serve_udp, args=(udp,), daemon=True).start()
threading.Thread(target=watch_jobs, daemon=True).start()
time.sleep(0.2)  # the listening socket is bound in its thread
open(os.path.join(DIR, "agent.ready"), "w").close()
deadline = time.monotonic() + LIFETIME
while time.monotonic() < deadline and not os.path.exists(os.path.join(DIR, "agent.stop")):
    time.sleep(0.1)
log("agent done")
"""


class PeerAgent:
    """The host side of :data:`AGENT_SCRIPT`: ``directory`` is its ``<dir>`` as the host sees it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._counter = 0

    @property
    def ready(self) -> bool:
        return (self.directory / "agent.ready").exists()

    def wait_ready(self, timeout: float, alive: object = None) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready:
            if callable(alive) and not alive():
                raise AtError(f"the peer's agent died before it was ready; log:\n{self.log()}")
            if time.monotonic() >= deadline:
                raise AtError(f"the peer's agent was not ready within {timeout:g} s; log:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return (self.directory / "agent.log").read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, pattern: str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while not (match := regex.search(self.log())):
            if time.monotonic() >= deadline:
                raise AtError(f"the peer's log has no {pattern!r} after {timeout:g} s:\n{self.log()}")
            time.sleep(0.05)
        return match

    def submit(self, code: str, name: str | None = None) -> str:
        """Start a job (Python code that sets ``result``); its name."""
        self._counter += 1
        name = name or f"job{self._counter}"
        jobs = self.directory / "jobs"
        jobs.mkdir(exist_ok=True)
        tmp = jobs / f"{name}.tmp"
        tmp.write_text(code)
        tmp.replace(jobs / f"{name}.py")
        return name

    def result(self, name: str, timeout: float) -> object:
        """Wait for a job's result (AtError with its traceback if it failed)."""
        import json

        path = self.directory / "jobs" / f"{name}.out"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() >= deadline:
                raise AtError(f"job {name} gave no result within {timeout:g} s; peer log:\n{self.log()}")
            time.sleep(0.05)
        out = json.loads(path.read_text())
        if not out["ok"]:
            raise AtError(f"job {name} failed:\n{out['error']}")
        return out["result"]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            (self.directory / "agent.stop").touch()


def tcp_clients_job(host: str, port: int, payloads: dict[str, bytes], reply_prefix: bytes = b"reply-") -> str:
    """Job: one TCP client per name, connected one after the other; each sends ``<name>:<payload>``
    and reads ``<reply_prefix><name>:<payload reversed>``; then all close.  ``result``: name -> reply hex."""
    hexes = {name: payload.hex() for name, payload in payloads.items()}
    return f"""
import socket
payloads = {{k: bytes.fromhex(v) for k, v in {hexes!r}.items()}}
socks = {{}}
for name, payload in payloads.items():
    s = socket.create_connection(({host!r}, {port}), timeout=40)
    s.sendall(name.encode() + b":" + payload)
    socks[name] = s
result = {{}}
for name, s in socks.items():
    want = len({reply_prefix!r}) + len(name) + 1 + len(payloads[name])
    buf = b""
    while len(buf) < want:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    result[name] = buf.hex()
for s in socks.values():
    s.close()
"""


def udp_exchange_job(host: str, port: int, source_port: int, payload: bytes) -> str:
    """Job: from ``source_port`` send ``payload`` to host:port; ``result``: the reply (hex) and its source."""
    return f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ADDR, {source_port}))
s.settimeout(40)
s.sendto(bytes.fromhex({payload.hex()!r}), ({host!r}, {port}))
data, peer = s.recvfrom(65536)
s.close()
result = {{"reply": data.hex(), "peer": [peer[0], peer[1]]}}
"""
