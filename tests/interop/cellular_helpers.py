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
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.interop.at_helpers import LoggedProcess

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ModemSimProcess(LoggedProcess):
    """A running ``wipstack modem-sim``."""

    what: str = field(default="wipstack modem-sim", kw_only=True)

    @property
    def dte(self) -> Path:
        return self.directory / "modem"

    @property
    def network(self) -> Path:
        return self.directory / "net"

    @property
    def control_path(self) -> Path:
        return self.directory / "ctl"

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
    sim.start_reader()
    try:
        sim.wait_line(r"modem-sim ready", ready_timeout)
    except BaseException:
        sim.kill9()
        raise
    return sim
