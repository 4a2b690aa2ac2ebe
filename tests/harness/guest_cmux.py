"""Linux's n_gsm (3GPP TS 27.010) as the initiator, run INSIDE a User-Mode-Linux guest.

This script is self-contained (stdlib only, no wipstack imports): the guest runs it with the
host's ``/usr/bin/python3`` through hostfs (``python3 -I -S /run/guest_cmux.py ...``; the guest's
PATH has no pyenv).  tests/interop/cmux_helpers.py builds the command lines; the files it names
live in the guest's ``/run`` (the host's run dir), so the host reads the results.

Subcommands:

``attach``  on the serial line (``--line /dev/ttyS1``): send ``--command`` (``AT+CMUX=0``) + CR,
            wait for ``OK`` (``ERROR``/``+CME ERROR``/timeout -> failure), attach the N_GSM0 line
            discipline (TIOCSETD 21) and configure it with GSMIOC_GETCONF/GSMIOC_SETCONF as the
            basic-option initiator (which makes n_gsm send SABM on DLCI 0 at once), wait for
            ``/sys/class/tty/gsmtty1..N``, mknod ``<dev dir>/gsmttyN`` (no udev in the guest), open
            the ``--hold`` ports (raw, CLOCAL: their DLCIs stay open across ``at`` runs), write the
            ``--ready`` JSON and fork: the parent exits 0 (1 on failure, the reason in the ready
            JSON) and the child holds the line -- the line discipline lives as long as an fd is
            open -- until SIGTERM/SIGINT/SIGHUP.  Then it closes the held ports (DISC on their
            DLCIs) and sets N_TTY back -- Linux 6.1 then sends nothing on DLCI 0, as when the
            holder is killed; with ``--close-mux`` a GSMIOC_SETCONF first makes n_gsm send DISC
            on DLCI 0 -- and writes the ``--done`` JSON.
``at``      run a JSON script of steps on a gsmtty (or any tty), writing a JSON transcript.

``at`` script steps (a JSON list, run in order; ``timeout`` in seconds, default 10)::

    {"send": "AT+WIPCFG=1", "expect": "^OK$", "timeout": 10}   send + CR ("eol" overrides), then
        wait for a received line matching ``expect`` (re.search) among the lines that arrive after
        the send; a line matching ``fail`` (default: ERROR, +CME ERROR, NO CARRIER unless that is
        what ``expect`` matches) fails the step at once.  Without ``expect`` the step only sends.
    {"wait": "^\\+WIPREADY: 2,1$", "timeout": 20}   wait for a line matching the regex, searching
        from just after the line the previous ``wait`` matched (so a URC that arrived while an
        earlier ``send`` waited for its OK is still found); lines a ``send`` matched do not count.
    {"sleep": 1}                 keep reading for 1 s.
    {"touch": "/run/x"}          create a file (a signal to the host or another guest program).
    {"wait_file": "/run/ip-up.env", "timeout": 40}   wait until a file exists (reading meanwhile).
    {"gate": true}               with ``--detach-at-gate``: the launching process exits 0 here and
        the script goes on in the background (e.g. pppd starts while the script waits for URCs).

Only one ``at`` runs on a tty at a time: it takes an exclusive flock on the tty (``--lock-timeout``).
The transcript (``--out``, rewritten atomically after each step) holds every received line with
its time since the start, each step's outcome (matched line, regex groups, error), ``ok``,
``failed_step``, ``error``, ``hangup`` (the tty was hung up: DLCI closed or refused) and
``finished``.  Exit status: 0 all steps passed, 1 a step failed, 2 bad arguments or tty.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import re
import select
import signal
import stat
import struct
import sys
import termios
import time
from collections.abc import Callable, Sequence
from typing import Any

N_TTY = 0
N_GSM0 = 21  # include/uapi/linux/tty.h
# struct gsm_config (include/uapi/linux/gsmmux.h, Linux 6.1): adaption, encapsulation, initiator,
# t1, t2, t3, n2, mru, mtu, k, i, unused[8] -- all unsigned int
GSM_CONFIG_FIELDS = ("adaption", "encapsulation", "initiator", "t1", "t2", "t3", "n2", "mru", "mtu", "k", "i")
GSM_CONFIG = struct.Struct("=19I")
_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, kind: str, number: int, size: int) -> int:
    """The asm-generic _IOC() encoding (x86 and UML use it)."""
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | number


GSMIOC_GETCONF = _ioc(_IOC_READ, "G", 0, GSM_CONFIG.size)
GSMIOC_SETCONF = _ioc(_IOC_WRITE, "G", 1, GSM_CONFIG.size)
FINAL_FAILURE = r"^(ERROR|\+CME ERROR: ?.*|NO CARRIER)$"
MAX_LINES = 20000  # transcript bound; later lines are counted, not kept
MAX_LINE = 4096  # a "line" longer than this is cut (counted in the transcript)


class StepFailed(Exception):
    """A script step did not succeed."""


class Hangup(Exception):
    """The tty was hung up (read gave EIO or EOF)."""


def say(message: str) -> None:
    sys.stderr.write(f"guest_cmux[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def write_json_atomic(path: str, data: object) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def make_raw(fd: int) -> None:
    """Raw 8-bit mode, no echo, CLOCAL (no wait for carrier), CREAD (termios(3) cfmakeraw)."""
    attrs = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag = attrs[0], attrs[1], attrs[2], attrs[3]
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR | termios.IGNCR)
    iflag &= ~(termios.ICRNL | termios.IXON | termios.IXOFF)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CRTSCTS)
    cflag |= termios.CS8 | termios.CLOCAL | termios.CREAD
    attrs[0], attrs[1], attrs[2], attrs[3] = iflag, oflag, cflag, lflag
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def open_tty(path: str) -> int:
    """O_RDWR|O_NOCTTY|O_NONBLOCK (a gsmtty open would otherwise wait for its DLCI), then raw."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        make_raw(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_gsmtty(path: str, timeout: float) -> int:
    """:func:`open_tty`, retried while n_gsm refuses with EL2NSYNC: DLCI 0 is not open yet (no UA).

    EL2HLT means the multiplexer is down for good: DLCI 0 failed to open (no UA after N2
    retransmissions, or DM) or was closed (DISC/CLD from the module).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_tty(path)
        except OSError as exc:
            if exc.errno == errno.EL2HLT:
                raise StepFailed(
                    f"{path}: EL2HLT: the multiplexer is down: its control channel (DLCI 0) did not open "
                    "(no UA to its SABM, or DM) or was closed"
                ) from exc
            if exc.errno != errno.EL2NSYNC:
                raise
            if time.monotonic() >= deadline:
                raise StepFailed(
                    f"{path}: EL2NSYNC for {timeout:g} s: the multiplexer control channel (DLCI 0) is not open "
                    "(no UA to its SABM?)"
                ) from exc
            time.sleep(0.05)


def write_all(fd: int, data: bytes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        try:
            sent = os.write(fd, view)
            view = view[sent:]
            continue
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepFailed(f"write of {len(data)} octets did not finish within {timeout:g} s")
        select.select([], [fd], [], min(left, 0.5))


class LineReader:
    """Received octets -> lines (split at CR or LF, empty lines dropped), with arrival times."""

    def __init__(self, fd: int, started: float, max_line: int = MAX_LINE) -> None:
        self.fd = fd
        self.started = started
        self.max_line = max_line
        self.lines: list[tuple[float, str]] = []
        self.dropped_lines = 0
        self.cut_lines = 0
        self.octets = 0
        self.hangup = False
        self._partial = bytearray()

    def pump(self, timeout: float) -> None:
        """Read what arrives within ``timeout`` s (returns after the first chunk)."""
        if self.hangup:
            raise Hangup("the tty was hung up")
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                self.hangup = True
                raise Hangup("read: EIO (the tty was hung up)") from exc
            raise
        if not data:
            self.hangup = True
            raise Hangup("read: EOF (the tty was hung up)")
        self.octets += len(data)
        self._split(data)

    def _split(self, data: bytes) -> None:
        now = time.monotonic() - self.started
        for byte in data:
            if byte in (0x0D, 0x0A):
                self._flush_line(now)
            elif len(self._partial) < self.max_line:
                self._partial.append(byte)
            elif len(self._partial) == self.max_line:
                self._partial.append(byte)  # one marker octet past the limit: counted once
                self.cut_lines += 1

    def _flush_line(self, now: float) -> None:
        if not self._partial:
            return
        text = bytes(self._partial[: self.max_line]).decode("utf-8", errors="backslashreplace")
        self._partial.clear()
        if len(self.lines) < MAX_LINES:
            self.lines.append((round(now, 3), text))
        else:
            self.dropped_lines += 1


# --------------------------------------------------------------------------- at


class ScriptRunner:
    """Runs the steps of an ``at`` script on one open tty; keeps the transcript."""

    def __init__(self, fd: int, tty_path: str, out: str, gate: Callable[[], None] | None) -> None:
        self.started = time.monotonic()
        self.reader = LineReader(fd, self.started)
        self.fd = fd
        self.out = out
        self.gate = gate
        self.wait_cursor = 0  # next line a "wait" step may match
        self.consumed: set[int] = set()  # lines matched by "send" steps
        self.results: list[dict[str, Any]] = []
        self.transcript: dict[str, Any] = {"tty": tty_path, "started_unix": time.time(), "finished": False}

    def now(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def save(self, *, finished: bool, error: str | None = None, failed_step: int | None = None) -> None:
        reader = self.reader
        self.transcript.update(
            {
                "finished": finished,
                "ok": finished and error is None,
                "error": error,
                "failed_step": failed_step,
                "hangup": reader.hangup,
                "octets_received": reader.octets,
                "dropped_lines": reader.dropped_lines,
                "cut_lines": reader.cut_lines,
                "steps": self.results,
                "lines": [{"t": t, "text": text} for t, text in reader.lines],
            }
        )
        write_json_atomic(self.out, self.transcript)

    def run(self, steps: Sequence[dict[str, Any]]) -> int:
        self.save(finished=False)
        for index, step in enumerate(steps):
            result: dict[str, Any] = {"index": index, "step": step, "t_start": self.now()}
            self.results.append(result)
            try:
                self._run_step(step, result)
            except (StepFailed, Hangup, re.error, OSError, ValueError, TypeError, KeyError) as exc:
                result.update(ok=False, error=str(exc), t_end=self.now())
                self.save(finished=True, error=f"step {index} {json.dumps(step)}: {exc}", failed_step=index)
                return 1
            result.update(ok=True, t_end=self.now())
            self.save(finished=False)
        self.save(finished=True)
        return 0

    def _run_step(self, step: dict[str, Any], result: dict[str, Any]) -> None:
        timeout = float(step.get("timeout", 10.0))
        if "send" in step:
            self._send(step, timeout, result)
        elif "wait" in step:
            index = self._wait_line(re.compile(step["wait"]), self.wait_cursor, timeout, None, result)
            self.wait_cursor = index + 1
        elif "sleep" in step:
            self._read_for(float(step["sleep"]))
        elif "touch" in step:
            with open(step["touch"], "a"):
                pass
        elif "wait_file" in step:
            deadline = time.monotonic() + timeout
            while not os.path.exists(step["wait_file"]):
                if time.monotonic() >= deadline:
                    raise StepFailed(f"no file {step['wait_file']} within {timeout:g} s")
                self.reader.pump(min(0.05, max(0.0, deadline - time.monotonic())))
        elif "gate" in step:
            if self.gate is not None:
                self.gate()
                self.gate = None
        else:
            raise StepFailed("unknown step (want send, wait, sleep, touch, wait_file or gate)")

    def _send(self, step: dict[str, Any], timeout: float, result: dict[str, Any]) -> None:
        first_new = len(self.reader.lines)
        text = str(step["send"]) + str(step.get("eol", "\r"))
        write_all(self.fd, text.encode("utf-8"), timeout)
        result["t_sent"] = self.now()
        if "expect" not in step:
            return
        expect = re.compile(step["expect"])
        fail_pattern = step.get("fail", FINAL_FAILURE)
        fail = re.compile(fail_pattern) if fail_pattern else None
        index = self._wait_line(expect, first_new, timeout, fail, result)
        self.consumed.add(index)

    def _wait_line(
        self, regex: re.Pattern[str], start: int, timeout: float, fail: re.Pattern[str] | None, result: dict[str, Any]
    ) -> int:
        """Index of the first unconsumed line from ``start`` matching ``regex``; StepFailed on ``fail``."""
        deadline = time.monotonic() + timeout
        position = start
        while True:
            lines = self.reader.lines
            while position < len(lines):
                t, text = lines[position]
                if position not in self.consumed:
                    match = regex.search(text)
                    if match:
                        result.update(match=text, t_match=t, groups=list(match.groups()))
                        return position
                    if fail is not None and fail.search(text):
                        result.update(match=text, t_match=t)
                        raise StepFailed(f"got {text!r} instead of /{regex.pattern}/")
                position += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepFailed(f"no line matching /{regex.pattern}/ within {timeout:g} s")
            self.reader.pump(min(left, 0.5))

    def _read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.reader.pump(left)


def lock_tty(fd: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StepFailed(f"another 'at' held the tty for {timeout:g} s") from None
            time.sleep(0.05)


def load_steps(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        steps = json.load(f)
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValueError(f"{path}: a script is a JSON list of objects")
    return steps


def cmd_at(args: argparse.Namespace) -> int:
    try:
        steps = load_steps(args.script)
    except (OSError, ValueError) as exc:
        write_json_atomic(args.out, {"tty": args.tty, "finished": True, "ok": False, "error": f"script: {exc}"})
        return 2
    notify_fd: int | None = None
    if args.detach_at_gate:
        read_end, notify_fd = os.pipe()
        child = os.fork()
        if child:  # the launcher: exit at the gate, or with the script's status if it ends first
            os.close(notify_fd)
            reached = os.read(read_end, 1)
            if reached:
                return 0
            _, status = os.waitpid(child, 0)
            return os.waitstatus_to_exitcode(status)
        os.close(read_end)
        os.setsid()
    try:
        fd = open_gsmtty(args.tty, args.open_timeout)
    except (OSError, StepFailed) as exc:
        write_json_atomic(args.out, {"tty": args.tty, "finished": True, "ok": False, "error": f"open: {exc}"})
        return 2
    try:
        lock_tty(fd, args.lock_timeout)
    except StepFailed as exc:
        write_json_atomic(args.out, {"tty": args.tty, "finished": True, "ok": False, "error": str(exc)})
        return 2

    def gate() -> None:
        nonlocal notify_fd
        if notify_fd is not None:
            os.write(notify_fd, b"g")
            os.close(notify_fd)
            notify_fd = None

    runner = ScriptRunner(fd, args.tty, args.out, gate)
    status = runner.run(steps)
    os.close(fd)
    if status == 0:
        gate()  # no gate step: the launcher exits 0 with the finished script
    return status


# --------------------------------------------------------------------------- attach


def wait_for_ok(fd: int, command: str, timeout: float) -> list[str]:
    """Send ``command`` + CR on the line; the lines received up to ``OK``; StepFailed otherwise."""
    reader = LineReader(fd, time.monotonic())
    termios.tcflush(fd, termios.TCIFLUSH)
    write_all(fd, command.encode() + b"\r", timeout)
    deadline = time.monotonic() + timeout
    final = re.compile(FINAL_FAILURE)
    while True:
        for _, text in reader.lines:
            if text == "OK":
                return [t for _, t in reader.lines]
            if final.search(text):
                raise StepFailed(f"{command!r} answered {text!r}; lines {[t for _, t in reader.lines]}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepFailed(f"no OK to {command!r} within {timeout:g} s; lines {[t for _, t in reader.lines]}")
        try:
            reader.pump(min(left, 0.5))
        except Hangup as exc:
            raise StepFailed(f"{command!r}: {exc}") from exc


def gsm_get_config(fd: int) -> dict[str, int]:
    raw = fcntl.ioctl(fd, GSMIOC_GETCONF, bytes(GSM_CONFIG.size))
    values = GSM_CONFIG.unpack(raw)
    return dict(zip(GSM_CONFIG_FIELDS, values, strict=False))


def gsm_set_config(fd: int, config: dict[str, int]) -> None:
    values = [config[name] for name in GSM_CONFIG_FIELDS] + [0] * 8
    fcntl.ioctl(fd, GSMIOC_SETCONF, GSM_CONFIG.pack(*values))


def wait_for_ports(ports: int, timeout: float) -> dict[int, tuple[int, int]]:
    """gsmtty number -> (major, minor), from /sys/class/tty/gsmttyN/dev once they all exist."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[int, tuple[int, int]] = {}
        for n in range(1, ports + 1):
            with contextlib.suppress(OSError, ValueError):
                with open(f"/sys/class/tty/gsmtty{n}/dev") as f:
                    major, minor = f.read().strip().split(":")
                found[n] = (int(major), int(minor))
        if len(found) == ports:
            return found
        if time.monotonic() >= deadline:
            raise StepFailed(f"only gsmtty {sorted(found)} of 1..{ports} appeared in /sys within {timeout:g} s")
        time.sleep(0.05)


def make_nodes(dev_dir: str, numbers: dict[int, tuple[int, int]]) -> dict[int, str]:
    os.makedirs(dev_dir, exist_ok=True)
    paths = {}
    for n, (major, minor) in numbers.items():
        path = os.path.join(dev_dir, f"gsmtty{n}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.mknod(path, stat.S_IFCHR | 0o660, os.makedev(major, minor))
        paths[n] = path
    return paths


class Stop:
    """SIGTERM/SIGINT/SIGHUP -> a flag and a wake-up of the waiting select()."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.write_end, False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.signal = signum
        with contextlib.suppress(OSError):
            os.write(self.write_end, b"s")

    def wait(self) -> int:
        while self.signal is None:
            with contextlib.suppress(InterruptedError):
                select.select([self.read_end], [], [])
        return self.signal


def attach_line(args: argparse.Namespace, state: dict[str, Any]) -> tuple[int, list[int]]:
    """Everything up to the ready file: (the line's fd, the held ports' fds)."""
    fd = os.open(args.line, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    make_raw(fd)
    if args.command:
        state["command_lines"] = wait_for_ok(fd, args.command, args.ok_timeout)
    state["ldisc_before"] = struct.unpack("i", fcntl.ioctl(fd, termios.TIOCGETD, bytes(4)))[0]
    fcntl.ioctl(fd, termios.TIOCSETD, struct.pack("i", N_GSM0))
    config = gsm_get_config(fd)
    state["config_default"] = dict(config)
    # 27.010 §5.1: basic option (encapsulation 0), UIH information frames (i=1), convergence layer 1
    config.update(encapsulation=0, initiator=1, i=1, adaption=args.adaption)
    for name in ("mru", "mtu", "t1", "t2", "n2", "k"):
        value = getattr(args, name)
        if value is not None:
            config[name] = value
    gsm_set_config(fd, config)  # the initiator sends SABM on DLCI 0 now (27.010 §5.4.1)
    state["config"] = gsm_get_config(fd)
    numbers = wait_for_ports(args.ports, args.ports_timeout)
    state["devices"] = {str(n): f"{mm[0]}:{mm[1]}" for n, mm in numbers.items()}
    paths = make_nodes(args.dev_dir, numbers)
    state["nodes"] = {str(n): p for n, p in paths.items()}
    # ready means "DLCI 0 is open" when ports are held: their open waits for it
    held = [open_gsmtty(paths[n], args.mux_timeout) for n in args.hold]
    state["held"] = list(args.hold)
    return fd, held


def detach_line(fd: int, held: list[int], close_mux: bool) -> dict[str, Any]:
    """Close the held ports, then give the line back to N_TTY.

    Linux 6.1 sends nothing on DLCI 0 when the line discipline goes away; with ``close_mux``
    a GSMIOC_SETCONF back to responder first makes n_gsm close DLCI 0 itself (27.010 §5.8.2).
    """
    outcome: dict[str, Any] = {}
    started = time.monotonic()
    for port_fd in held:
        with contextlib.suppress(OSError):
            os.close(port_fd)
    if close_mux:
        try:
            config = gsm_get_config(fd)
            config["initiator"] = 0
            gsm_set_config(fd, config)  # a changed initiator flag: n_gsm shuts the multiplexer down first
            outcome["mux_closed_by_setconf"] = True
        except OSError as exc:
            outcome["close_mux_error"] = str(exc)
    try:
        fcntl.ioctl(fd, termios.TIOCSETD, struct.pack("i", N_TTY))
        outcome["ldisc"] = "N_TTY"
    except OSError as exc:
        outcome["ldisc_error"] = str(exc)
    with contextlib.suppress(OSError):
        os.close(fd)
    outcome["detach_seconds"] = round(time.monotonic() - started, 3)
    return outcome


def cmd_attach(args: argparse.Namespace) -> int:
    state: dict[str, Any] = {"ok": False, "line": args.line, "command": args.command}
    stop = Stop()
    try:
        fd, held = attach_line(args, state)
    except (StepFailed, OSError, ValueError) as exc:
        state["error"] = f"{type(exc).__name__}: {exc}"
        write_json_atomic(args.ready, state)
        say(f"attach failed: {state['error']}")
        return 1
    child = os.fork()
    if child:
        state.update(ok=True, pid=child)
        if args.pid_file:
            with open(args.pid_file, "w") as f:
                f.write(f"{child}\n")
        write_json_atomic(args.ready, state)  # after the pid file: ready means "pid file written"
        say(f"n_gsm attached on {args.line}, gsmtty1..{args.ports} in {args.dev_dir}; holder pid {child}")
        os._exit(0)  # the child owns the fds now; no cleanup here
    os.setsid()
    signum = stop.wait()
    outcome = detach_line(fd, held, args.close_mux)
    outcome["signal"] = signum
    if args.done:
        write_json_atomic(args.done, outcome)
    say(f"detached on signal {signum}: {outcome}")
    return 0


def port_list(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p.strip()]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="guest_cmux.py", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command_name", required=True)
    attach = sub.add_parser("attach", help="AT+CMUX, then n_gsm as initiator; hold the line until SIGTERM")
    attach.add_argument("--line", default="/dev/ttyS1")
    attach.add_argument("--command", default="AT+CMUX=0", help="sent before attaching; '' to send nothing")
    attach.add_argument("--ok-timeout", type=float, default=10.0)
    attach.add_argument("--dev-dir", default="/tmp/dev")
    attach.add_argument("--ports", type=int, default=4)
    attach.add_argument("--ports-timeout", type=float, default=10.0)
    attach.add_argument("--hold", type=port_list, default=[], help="comma list of gsmtty numbers kept open")
    attach.add_argument("--mux-timeout", type=float, default=10.0, help="wait for DLCI 0 to open (held ports)")
    attach.add_argument("--adaption", type=int, default=1)
    for name in ("mru", "mtu", "t1", "t2", "n2", "k"):
        attach.add_argument(f"--{name}", type=int, default=None)
    attach.add_argument("--ready", required=True, help="JSON written once attached (or with the error)")
    attach.add_argument("--done", default=None, help="JSON written once detached")
    attach.add_argument("--pid-file", default=None)
    attach.add_argument("--close-mux", action="store_true", help="on SIGTERM make n_gsm close DLCI 0 first")
    at = sub.add_parser("at", help="run a JSON script of AT steps on a tty")
    at.add_argument("--tty", required=True)
    at.add_argument("--script", required=True)
    at.add_argument("--out", required=True)
    at.add_argument("--lock-timeout", type=float, default=60.0)
    at.add_argument("--open-timeout", type=float, default=30.0, help="retry EL2NSYNC (DLCI 0 not open) this long")
    at.add_argument("--detach-at-gate", action="store_true", help="return at the first gate step")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "attach": cmd_attach,
        "at": cmd_at,
    }
    return commands[args.command_name](args)


if __name__ == "__main__":
    sys.exit(main())
