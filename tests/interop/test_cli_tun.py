"""``wipstack tun`` as users run it: the CLI moves its TUN device into a test namespace.

The test makes the namespace; ``python -m wipstack tun --netns NS`` creates the TUN device,
moves the kernel's end into NS and configures it (192.0.2.1 there, wipstack 192.0.2.2).  The
kernel then pings wipstack and exchanges UDP with its echo service; the pcapng capture the
CLI writes is read back with tshark.  Only TEST-NET addresses are used.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.harness.netns import REQUIRE_ENV, NetNamespace, ping_command, which
from tests.harness.netns_fixtures import KERNEL_ADDRESS, WIPSTACK_ADDRESS, netns  # noqa: F401

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
REPLY_LINE = re.compile(r"^(\d+) bytes from (\S+): icmp_seq=(\d+) ttl=(\d+) time=([\d.]+) ms$")

UDP_ONE_LINER = (
    "import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); "
    "s.sendto(b'hello wipstack', (sys.argv[1], 7)); data, peer = s.recvfrom(100); print(data.decode(), *peer)"
)


def require(tool: list[str] | str | None, reason: str) -> None:
    """The skip/fail rule of the interop tests for a missing tool."""
    if tool is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)


class Cli:
    """``python -m wipstack tun ...`` in the background; its stderr lines collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wipstack", "tun", *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            assert self.proc.poll() is None, f"wipstack tun exited ({self.proc.returncode}):\n{self.stderr}"
            assert time.monotonic() < deadline, f"no line matching {pattern!r} in {timeout} s:\n{self.stderr}"
            time.sleep(0.02)

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"wipstack tun still running after {timeout} s:\n{self.stderr}")
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """End the CLI (by its PID) if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def tshark_rows(pcap: Path) -> list[list[str]]:
    """One row per frame: interface, Protocol column, direction flags, IP protocol, ICMP type, UDP ports."""
    fields = [
        "frame.interface_name", "_ws.col.Protocol", "frame.packet_flags_direction",
        "ip.proto", "icmp.type", "udp.srcport", "udp.dstport",
    ]  # fmt: skip
    argv = [str(which("tshark")), "-n", "-r", str(pcap), "-T", "fields"]
    for field in fields:
        argv += ["-e", field]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return [line.split("\t") for line in proc.stdout.decode().splitlines() if line.strip()]


def direction(flags: str) -> str:
    """frame.packet_flags_direction (``0x00000001``, or ``1`` in some versions) as in/out."""
    value = int(flags, 0) if flags else 0
    return {1: "in", 2: "out"}.get(value & 3, "?")


def test_tun_serves_ping_and_udp_echo_and_captures(netns: NetNamespace, tmp_path: Path) -> None:  # noqa: F811
    ping = ping_command()
    require(ping, "no ping: install iputils-ping (or busybox-static)")
    require(which("tshark"), "no tshark: install tshark")
    assert ping is not None
    pcap = tmp_path / "tun.pcapng"
    cli = Cli(
        "--local", WIPSTACK_ADDRESS, "--peer", KERNEL_ADDRESS, "--netns", netns.name,
        "--udp-echo", "7", "--pcap", str(pcap), "--duration", "6", "--seed", "1",
    )  # fmt: skip
    try:
        name = cli.wait_line(rf"^(\S+): {WIPSTACK_ADDRESS} peer {KERNEL_ADDRESS} mtu 1500", 15)[1]
        cli.wait_line(r"^UDP echo service on port 7$", 5)
        addr = netns.run("ip", "-o", "addr", "show", "dev", name).stdout.decode()
        assert f"inet {KERNEL_ADDRESS} peer {WIPSTACK_ADDRESS}/32" in addr, addr

        pinged = netns.run(*ping, "-c", "3", "-i", "0.2", "-W", "2", WIPSTACK_ADDRESS, check=False, timeout=20)
        assert pinged.returncode == 0 and b"3 received" in pinged.stdout, pinged.stdout + pinged.stderr
        echoed = netns.run(sys.executable, "-c", UDP_ONE_LINER, WIPSTACK_ADDRESS, check=False, timeout=20)
        assert echoed.stdout.decode().split() == ["hello", "wipstack", WIPSTACK_ADDRESS, "7"], echoed

        assert cli.wait(20) == 0, cli.stderr
    finally:
        cli.kill()
    counters = cli.wait_line(r"^ip: (.*)$", 1)[1]
    assert "echo_replies_out=3" in counters.split(), cli.stderr
    assert f"capture written: {pcap}" in cli.lines, cli.stderr

    rows = tshark_rows(pcap)
    assert rows and all(row[0] == name for row in rows), rows
    seen = [(row[1], direction(row[2]), row[3], row[4], row[5], row[6]) for row in rows]
    requests = [s for s in seen if s[0] == "ICMP" and s[3] == "8"]
    replies = [s for s in seen if s[0] == "ICMP" and s[3] == "0"]
    assert len(requests) == 3 and {s[1] for s in requests} == {"in"}, seen
    assert len(replies) == 3 and {s[1] for s in replies} == {"out"}, seen
    udp = [s for s in seen if s[2] == "17"]  # the Protocol column says ECHO (tshark's port-7 dissector)
    assert {s[0] for s in udp} <= {"UDP", "ECHO"}, seen
    assert [s[1] for s in udp if s[5] == "7"] == ["in"], seen  # to the echo service
    assert [s[1] for s in udp if s[4] == "7"] == ["out"], seen  # and back


def test_tun_ping_prints_replies_and_exits_0(netns: NetNamespace) -> None:  # noqa: F811
    cli = Cli(
        "--local", WIPSTACK_ADDRESS, "--peer", KERNEL_ADDRESS, "--netns", netns.name,
        "--ping", KERNEL_ADDRESS, "--count", "3", "--interval", "0.2",
    )  # fmt: skip
    try:
        code = cli.wait(30)
    finally:
        cli.kill()
    assert code == 0, cli.stderr
    replies = [m for line in cli.lines if (m := REPLY_LINE.match(line))]
    assert len(replies) == 3, cli.stderr
    assert [int(m[3]) for m in replies] == [0, 1, 2] and all(m[2] == KERNEL_ADDRESS for m in replies), cli.stderr
    assert all(int(m[1]) == 64 and int(m[4]) == 64 and float(m[5]) > 0 for m in replies), cli.stderr
    assert f"--- {KERNEL_ADDRESS} ping statistics: 3 transmitted, 3 received, 0% loss" in cli.lines, cli.stderr


def test_tun_ping_without_replies_exits_1(netns: NetNamespace) -> None:  # noqa: F811
    """198.51.100.7 is routed to the kernel, which does not forward: every request times out."""
    cli = Cli(
        "--local", WIPSTACK_ADDRESS, "--peer", KERNEL_ADDRESS, "--netns", netns.name, "--default-route",
        "--ping", "198.51.100.7", "--count", "2", "--interval", "0.1", "--ping-timeout", "0.5",
    )  # fmt: skip
    try:
        code = cli.wait(30)
    finally:
        cli.kill()
    assert code == 1, cli.stderr
    assert [line for line in cli.lines if line.startswith("icmp_seq=")] == ["icmp_seq=0 timeout", "icmp_seq=1 timeout"]
    assert "--- 198.51.100.7 ping statistics: 2 transmitted, 0 received, 100% loss" in cli.lines, cli.stderr


def test_tun_ping_without_route_reports_cleanly(netns: NetNamespace) -> None:  # noqa: F811
    cli = Cli(
        "--local", WIPSTACK_ADDRESS, "--peer", KERNEL_ADDRESS, "--netns", netns.name,
        "--ping", "198.51.100.7", "--count", "1",
    )  # fmt: skip
    try:
        code = cli.wait(30)
    finally:
        cli.kill()
    assert "Traceback" not in cli.stderr, cli.stderr
    assert code == 1, cli.stderr
    assert any("198.51.100.7" in line and "no route" in line for line in cli.lines), cli.stderr
