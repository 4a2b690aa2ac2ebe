"""``wipstack modem-sim`` end to end: a real process on a pty, an echoing network peer, the control socket.

The test plays the DTE on the pty (raw mode, O_NOCTTY): it dials a packet call, sends data
that the ``--network-exec`` peer (a Python one-liner echoing stdin to stdout) returns,
escapes and hangs up, then rings the modem through ``--control``, answers, has the network
drop the call, and stops the simulator with SIGTERM.  Only ptys and a UNIX socket; no network.
Processes are always killed by PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ECHO = 'import os\nfor d in iter(lambda: os.read(0, 4096), b""): os.write(1, d)'
WAIT = 15.0  # generous limits: these bound a hang, they are not measurements


class Dte:
    """Our end of the simulator's pty."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.seen = bytearray()

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, wanted: bytes) -> bytes:
        """Read until ``wanted`` arrives; everything up to and including it."""
        deadline = time.monotonic() + WAIT
        while wanted not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"waited for {wanted!r}, got {bytes(self.seen)!r}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    self.seen += os.read(self.fd, 4096)
        end = self.seen.index(wanted) + len(wanted)
        taken = bytes(self.seen[:end])
        del self.seen[:end]
        return taken

    def command(self, line: str, final: bytes = b"\r\nOK\r\n") -> bytes:
        self.send(line.encode() + b"\r")
        return self.expect(final)


def control(path: Path, line: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(str(path))
        sock.sendall(line.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(4096)
            assert chunk, "the control socket closed without an answer"
            answer += chunk
    return answer.decode().strip()


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)


def start(tmp_path: Path, *network: str) -> subprocess.Popen[bytes]:
    """``wipstack modem-sim`` on ``tmp_path/modem`` with ``network`` options; waits until it is ready."""
    log = tmp_path / "modem-sim.log"
    command = [
        sys.executable, "-m", "wipstack", "modem-sim", "--pty", str(tmp_path / "modem"), *network,
        "--control", str(tmp_path / "control"), "--connect-delay", "0.2", "--ring-interval", "0.3", "--log",
    ]  # fmt: skip
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                   env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
    try:
        wait_for(lambda: "modem-sim ready" in log.read_text(), process, log)
    except BaseException:
        stop(process, log)
        raise
    return process


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """Kill the simulator and any network peer it started, by PID."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(WAIT)
    for pid in peer_pids(log):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # the echo peers ran in their own sessions


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    process = start(tmp_path, "--network-exec", f"{shlex.quote(sys.executable)} -c {shlex.quote(ECHO)}")
    try:
        yield process, tmp_path
    finally:
        stop(process, tmp_path / "modem-sim.log")


def peer_pids(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"network peer started, pid (\d+)", log.read_text())]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_modem_sim_cli_dial_echo_ring_drop_and_sigterm(simulator: tuple[subprocess.Popen[bytes], Path]) -> None:
    process, tmp = simulator
    log = tmp / "modem-sim.log"
    dte = Dte(tmp / "modem")
    try:
        assert dte.command("ATE0") == b"ATE0\r\r\nOK\r\n"
        assert dte.command('AT+CGDCONT=1,"IP","internet"') == b"\r\nOK\r\n"
        assert dte.command("ATD*99***1#", b"\r\nCONNECT\r\n") == b"\r\nCONNECT\r\n"
        dte.send(b"\x7e through the echo peer \x7e")
        assert dte.expect(b"\x7e through the echo peer \x7e") == b"\x7e through the echo peer \x7e"
        assert control(tmp / "control", "ring 555") == "ERROR busy or no service"
        time.sleep(1.2)  # the escape's guard times (S12 = 1 s)
        dte.send(b"+++")
        assert dte.expect(b"\r\nOK\r\n").endswith(b"+++\r\nOK\r\n")  # the peer echoed the "+" first
        assert dte.command("ATH") == b"\r\nOK\r\n"
        first_peer = peer_pids(log)[0]
        wait_for(lambda: gone(first_peer), process, log)  # killed by PID at the end of the call

        assert dte.command("AT+CLIP=1") == b"\r\nOK\r\n"
        assert control(tmp / "control", "ring +4930123") == "OK"
        assert dte.expect(b'+CLIP: "+4930123",145\r\n') == b'\r\nRING\r\n\r\n+CLIP: "+4930123",145\r\n'
        assert dte.command("ATA", b"\r\nCONNECT\r\n").endswith(b"\r\nCONNECT\r\n")
        dte.send(b"incoming data")
        assert dte.expect(b"incoming data").endswith(b"incoming data")
        assert control(tmp / "control", "drop") == "OK"
        assert dte.expect(b"\r\nNO CARRIER\r\n").endswith(b"\r\nNO CARRIER\r\n")
        assert control(tmp / "control", "status").startswith("OK state=command ")
        assert dte.command("AT") == b"\r\nOK\r\n"
    finally:
        os.close(dte.fd)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(WAIT) == 0
    text = log.read_text()
    assert "stopped by SIGTERM" in text, text
    assert "modem-sim ready: DTE " in text
    assert not (tmp / "control").exists() and not (tmp / "modem").exists()
    for pid in peer_pids(log):
        deadline = time.monotonic() + WAIT
        while not gone(pid):
            assert time.monotonic() < deadline, f"network peer {pid} outlived the simulator"
            time.sleep(0.02)


def test_modem_sim_cli_network_pty_carries_only_the_call(tmp_path: Path) -> None:
    process = start(tmp_path, "--network-pty", str(tmp_path / "network"))
    dte = Dte(tmp_path / "modem")
    peer = Dte(tmp_path / "network")  # the access server's end, e.g. a UML guest's serial line
    try:
        peer.send(b"before the call")  # discarded: no call is online
        assert dte.command("ATE0") == b"ATE0\r\r\nOK\r\n"
        assert dte.command("ATD*99#", b"\r\nCONNECT\r\n") == b"\r\nCONNECT\r\n"
        dte.send(b"to the server")
        assert peer.expect(b"to the server") == b"to the server"
        peer.send(b"to the client")
        assert dte.expect(b"to the client") == b"to the client"
        assert control(tmp_path / "control", "drop") == "OK"
        assert dte.expect(b"\r\nNO CARRIER\r\n") == b"\r\nNO CARRIER\r\n"
        assert "to_peer=13 from_peer=13" in control(tmp_path / "control", "status")
    finally:
        os.close(dte.fd)
        os.close(peer.fd)
        stop(process, tmp_path / "modem-sim.log")


def test_modem_sim_cli_network_tcp_per_call(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        process = start(tmp_path, "--network-tcp", f"127.0.0.1:{port}")
        dte = Dte(tmp_path / "modem")
        try:
            assert dte.command("ATE0") == b"ATE0\r\r\nOK\r\n"
            assert dte.command("ATD*99#", b"\r\nCONNECT\r\n") == b"\r\nCONNECT\r\n"
            server.settimeout(WAIT)
            connection, _ = server.accept()
            with connection:
                connection.settimeout(WAIT)
                dte.send(b"over tcp")
                assert connection.recv(100) == b"over tcp"
                connection.sendall(b"and back")
                assert dte.expect(b"and back") == b"and back"
            assert dte.expect(b"\r\nNO CARRIER\r\n") == b"\r\nNO CARRIER\r\n"  # the peer closed
        finally:
            os.close(dte.fd)
            stop(process, tmp_path / "modem-sim.log")
    # nobody listens any more: the next call cannot reach its peer
    process = start(tmp_path, "--network-tcp", f"127.0.0.1:{port}")
    dte = Dte(tmp_path / "modem")
    try:
        dte.send(b"ATE0\r")
        dte.expect(b"OK\r\n")
        dte.send(b"ATD*99#\r")
        assert dte.expect(b"\r\nNO CARRIER\r\n").endswith(b"\r\nCONNECT\r\n\r\nNO CARRIER\r\n")
    finally:
        os.close(dte.fd)
        stop(process, tmp_path / "modem-sim.log")


def test_modem_sim_cli_answers_many_control_connections(simulator: tuple[subprocess.Popen[bytes], Path]) -> None:
    _, tmp = simulator
    for number in range(20):  # each closed client frees an fd number the next one reuses
        assert control(tmp / "control", "status").startswith("OK state=command "), number
        if number % 5 == 0:
            assert control(tmp / "control", f"creg {1 + number % 2}") == "OK"
