"""Helpers for the cellular interop tests: ``python -m wipstack modem-sim`` as a process.

:func:`start_modem_sim` runs the simulator with its DTE pty at ``<dir>/modem`` (what ``wipstack
modem --modem`` opens), its network pty at ``<dir>/net`` (what a UML guest's serial line is
booted on: the guest's pppd is the operator's access server or the caller) and its control
socket at ``<dir>/ctl`` (:meth:`ModemSimProcess.control` sends ``ring <number>``, ``drop``,
``dial-result busy`` ... and returns the one-line answer).  Stopped with SIGTERM, then
SIGKILL, always by PID.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ModemSimProcess:
    """A running ``wipstack modem-sim``."""

    proc: subprocess.Popen[bytes]
    directory: Path
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def dte(self) -> Path:
        return self.directory / "modem"

    @property
    def network(self) -> Path:
        return self.directory / "net"

    @property
    def control_path(self) -> Path:
        return self.directory / "ctl"

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
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                match = regex.search(self.lines[seen])
                seen += 1
                if match:
                    return match
            if self.proc.poll() is not None and seen >= len(self.lines):
                break
            time.sleep(0.02)
        raise AssertionError(f"modem-sim: no line matching {pattern!r} within {timeout} s:\n{self.stderr}")

    def control(self, line: str, timeout: float = 5.0) -> str:
        """One control command; its one-line answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.control_path))
            sock.sendall(line.encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        return answer.decode().strip()

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.reader is not None:
            self.reader.join(2)
        return self.proc.returncode


def start_modem_sim(directory: Path, *args: str, ready_timeout: float = 20.0,
                    network_exec: str | None = None) -> ModemSimProcess:  # fmt: skip
    """``python -m wipstack modem-sim --pty D/modem --network-pty D/net --control D/ctl --log <args>``.

    ``network_exec``: the network peer is that command, started per call, instead of the pty.
    """
    network = ["--network-exec", network_exec] if network_exec else ["--network-pty", str(directory / "net")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "wipstack", "modem-sim", "--pty", str(directory / "modem"),
         *network, "--control", str(directory / "ctl"), "--log", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    sim = ModemSimProcess(proc, directory)
    sim.reader = threading.Thread(target=sim._read, daemon=True)
    sim.reader.start()
    try:
        sim.wait_line(r"modem-sim ready", ready_timeout)
    except BaseException:
        sim.stop(2)
        raise
    return sim
