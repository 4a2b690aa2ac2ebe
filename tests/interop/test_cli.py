"""``wipstack ppp`` as users run it: on a pty that pppd opens, and on an inherited fd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness.uml import PppdGuest, skip_unless_uml

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
FAST = ["lcp-restart", "1", "ipcp-restart", "1", "pap-restart", "1"]


def wipstack_cli(*args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wipstack", "ppp", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        pass_fds=pass_fds,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def wait_for_path(path: Path, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_symlink():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_pppd_dials_wipstack_ppp_server_on_its_pty() -> None:
    skip_unless_uml()
    with tempfile.TemporaryDirectory(prefix="ws-cli-") as tmp:
        link = Path(tmp) / "ppp0"
        server = wipstack_cli(
            "--pty",
            str(link),
            "192.0.2.1:192.0.2.2",
            "--dns",
            "198.51.100.53",
            "--require-pap",
            "--secret",
            "alice:s3cret",
            "--passive",
            "--restart",
            "1",
        )
        try:
            wait_for_path(link, server, 15)
            with PppdGuest(
                ["nodetach", "debug", "local", "noauth", "noipdefault", "user", "alice", "usepeerdns", *FAST],
                secrets=["alice * s3cret *"],
            ) as guest:
                guest.start_on_tty(str(link))
                info = guest.wait_ip_up(30)
                assert info["local"] == "192.0.2.2" and info["remote"] == "192.0.2.1"
                assert info.get("DNS1") == "198.51.100.53"
                server.send_signal(signal.SIGTERM)
                output = server.communicate(timeout=20)[0]
                assert server.returncode == 0, output
                guest.wait_for_log(r'rcvd \[LCP TermReq id=0x\w+ "User request"\]', 10)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()
    assert "PAP peer authentication succeeded for alice" in output
    assert "local  IP address 192.0.2.1" in output and "remote IP address 192.0.2.2" in output
    assert "Terminating on signal SIGTERM" in output
    assert "rcvd [LCP TermAck" in output
    assert not link.exists()  # the symlink is removed on exit


def test_wipstack_ppp_client_on_an_inherited_fd_against_pppd_server() -> None:
    skip_unless_uml()
    with PppdGuest(
        ["nodetach", "debug", "local", "require-pap", "192.0.2.1:192.0.2.2", *FAST], secrets=["alice * s3cret *"]
    ) as guest:
        sock = guest.start()
        client = wipstack_cli(
            "--fd",
            str(sock.fileno()),
            "--user",
            "alice",
            "--password",
            "s3cret",
            "--usepeerdns",
            "--up-time",
            "2",
            "--restart",
            "1",
            pass_fds=(sock.fileno(),),
        )
        try:
            output = client.communicate(timeout=60)[0]
        finally:
            if client.poll() is None:
                client.kill()
        assert client.returncode == 0, output
        assert "local  IP address 192.0.2.2" in output
        assert "PAP authentication succeeded" in output
        assert "sent [LCP TermReq" in output and "rcvd [LCP TermAck" in output
        guest.wait_for_log(r"PAP peer authentication succeeded for alice", 5)
