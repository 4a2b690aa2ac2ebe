"""``--pcap`` end to end: two ``wipstack ppp`` processes over a pty, the capture read by tshark.

The server publishes a pty and answers pings; the client opens it with pyserial, pings the
server and asks it a DNS question (UDP to port 53, answered with ICMP port unreachable).
tshark must find LCP, PAP, IPCP, ICMP and UDP in the server's capture, in both directions.
No root needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "WIPSTACK_REQUIRE_INTEROP"


def need_tshark() -> str:
    tshark = shutil.which("tshark")
    if tshark is None:
        reason = "tshark is not on PATH (Debian package tshark)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return tshark


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wipstack", "ppp", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def test_pcap_of_a_ppp_session_reads_back_in_tshark(tmp_path: Path) -> None:
    tshark = need_tshark()
    link = tmp_path / "ppp-pty"
    capture = tmp_path / "server.pcapng"
    server = cli(
        "--pty", str(link), "192.0.2.1:192.0.2.2", "--require-pap", "--secret", "alice:s3cret",
        "--passive", "--restart", "1", "--pcap", str(capture), "--quiet",
    )  # fmt: skip
    client: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 15
        while not link.is_symlink():
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "the server's pty never appeared"
            time.sleep(0.02)
        client = cli(
            "--device", str(link), "--user", "alice", "--password", "s3cret", "--restart", "1",
            "--nameserver", "192.0.2.1", "--resolve", "nothing.example",
            "--ping", "192.0.2.1", "--count", "3", "--interval", "0.1", "--up-time", "0.5", "--quiet",
        )  # fmt: skip
        client_log, _ = client.communicate(timeout=60)
        assert client.returncode == 0, client_log
        assert "3 transmitted, 3 received" in client_log, client_log
        server_log, _ = server.communicate(timeout=30)  # the client's Terminate-Request ends it
        assert server.returncode == 0, server_log
        assert "capture written" in server_log, server_log
    finally:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    fields = subprocess.run(
        [tshark, "-r", str(capture), "-T", "fields", "-e", "frame.interface_name",
         "-e", "frame.packet_flags_direction", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(tmp_path)),
    )  # fmt: skip
    assert fields.returncode == 0, fields.stderr
    rows = [line.split("\t") for line in fields.stdout.splitlines()]
    seen = {(row[2], int(row[1], 16)) for row in rows if len(row) >= 3 and row[1]}
    inbound, outbound = 1, 2  # pcapng epb_flags direction (tshark shows the whole flags word)
    for protocol in ("PPP LCP", "PPP PAP", "PPP IPCP", "ICMP"):
        assert (protocol, inbound) in seen and (protocol, outbound) in seen, (protocol, sorted(seen))
    assert any(p == "DNS" and d == inbound for p, d in seen), sorted(seen)  # the client's query (UDP)
    assert all(row[0] == "ppp0" for row in rows), rows[:5]
    unreachable = [row for row in rows if len(row) >= 4 and "Port unreachable" in row[3]]
    assert unreachable, "no ICMP port unreachable for the DNS query"
