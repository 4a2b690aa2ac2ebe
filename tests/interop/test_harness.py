"""Self-tests of the UML pppd harness (tests/harness/uml.py).

They check the harness itself against a real pppd, without any wipstack
code: the PPP framing below is decoded by hand.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time

import pytest

from tests.harness import uml
from tests.harness.uml import PppdGuest, process_group_pids, skip_unless_uml, uml_unavailable_reason

pytestmark = pytest.mark.interop

# lcp-restart 1: pppd retransmits its LCP Configure-Request every second
PPPD_OPTIONS = ["noauth", "local", "debug", "192.0.2.1:192.0.2.2", "lcp-restart", "1"]
# lcp-max-terminate 1: on SIGTERM, one Terminate-Request and a 1 s wait for the ack
QUICK_STOP = [*PPPD_OPTIONS, "lcp-max-terminate", "1"]
BOOT_TIMEOUT = 15.0
LCP_CONF_REQ = bytes.fromhex("ff03c02101")
LCP_TERM_REQ = bytes.fromhex("ff03c02105")


def recv_some(sock: socket.socket, timeout: float) -> bytes:
    """Whatever arrives within timeout (b"" if nothing); EOFError once the guest has gone."""
    ready, _, _ = select.select([sock], [], [], timeout)
    if not ready:
        return b""
    data = sock.recv(65536)
    if not data:
        raise EOFError("serial line closed")
    return data


def unescape(frame: bytes) -> bytes:
    """Undo RFC 1662 async control-character escaping: 0x7D x -> x ^ 0x20."""
    out = bytearray()
    escaped = False
    for byte in frame:
        if escaped:
            out.append(byte ^ 0x20)
            escaped = False
        elif byte == 0x7D:
            escaped = True
        else:
            out.append(byte)
    return bytes(out)


class FrameReader:
    """Collects 0x7E-delimited frames from a socket, with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def next_frame(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            start = self.buf.find(b"\x7e")
            end = self.buf.find(b"\x7e", start + 1) if start >= 0 else -1
            if end > start + 1:
                frame, self.buf = self.buf[start + 1 : end], self.buf[end:]
                return unescape(frame)
            if end == start + 1:  # two flags in a row: an empty "frame"
                self.buf = self.buf[end:]
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete frame within {timeout:g} s (have {self.buf.hex()})")
            self.buf += recv_some(self.sock, left)

    def frame_starting(self, prefix: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next_frame(max(0.0, deadline - time.monotonic()))
            if frame.startswith(prefix):
                return frame


def test_first_frame_is_lcp_configure_request() -> None:
    skip_unless_uml()
    with PppdGuest(PPPD_OPTIONS) as guest:
        sock = guest.start()
        frame = FrameReader(sock).next_frame(BOOT_TIMEOUT)
        boot = time.monotonic() - (guest.started_at or 0.0)
        assert frame.startswith(LCP_CONF_REQ), frame.hex()
        guest.wait_for_log(r"sent \[LCP ConfReq id=0x1", timeout=5)
        assert "pppd" in guest.log() and "Connect: ppp0 <--> /dev/ttyS1" in guest.log()
        assert guest.ip_up() is None and guest.pppd_exit_status() is None
        print(f"boot to first LCP frame: {boot:.2f} s")


def test_close_leaves_no_process_and_no_run_dir() -> None:
    skip_unless_uml()
    # closed at once, while the guest is still booting
    early = PppdGuest(PPPD_OPTIONS, name="early")
    early.start()
    early_pgid, early_dir = early.pid, early.run_dir
    assert early_pgid is not None and process_group_pids(early_pgid)
    early.close()
    assert process_group_pids(early_pgid) == [] and not early_dir.exists()

    # closed after pppd is running; the log survives close()
    with PppdGuest(PPPD_OPTIONS) as guest:
        sock = guest.start()
        FrameReader(sock).next_frame(BOOT_TIMEOUT)
        pgid, run_dir = guest.pid, guest.run_dir
        assert pgid is not None and len(process_group_pids(pgid)) >= 2  # UML runs helper processes
        assert (run_dir / "etc-ppp" / "options").read_text() == ""
    assert process_group_pids(pgid) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert not run_dir.exists()
    assert "sent [LCP ConfReq" in guest.log()
    guest.close()  # idempotent


def test_close_on_exception_kills_guest() -> None:
    skip_unless_uml()
    pgid = None
    with pytest.raises(RuntimeError, match="boom"), PppdGuest(PPPD_OPTIONS, name="boom") as guest:
        guest.start()
        pgid = guest.pid
        raise RuntimeError("boom")
    assert pgid is not None and process_group_pids(pgid) == []


def test_freeze_silences_peer_and_thaw_resumes() -> None:
    skip_unless_uml()
    with PppdGuest(QUICK_STOP) as guest:
        sock = guest.start()
        FrameReader(sock).next_frame(BOOT_TIMEOUT)
        guest.freeze()
        time.sleep(0.1)
        while recv_some(sock, 0.05):  # drain what was in flight
            pass
        silent_until = time.monotonic() + 1.2  # pppd would retransmit within 1 s
        while (left := silent_until - time.monotonic()) > 0:
            assert recv_some(sock, left) == b"", "bytes arrived from a frozen guest"
        guest.thaw()
        reader = FrameReader(sock)
        frame = reader.next_frame(5)
        assert frame.startswith(LCP_CONF_REQ), frame.hex()

        # graceful close: pppd sends LCP Terminate-Request before the guest goes
        reader.sock = sock.dup()  # close() closes sock; the dup keeps what was sent
        started = time.monotonic()
        guest.close(grace=5)
        assert time.monotonic() - started < 6
        assert reader.frame_starting(LCP_TERM_REQ, timeout=1)
        assert guest.pppd_exit_status() in (5, 16)
        reader.sock.close()


def test_stop_pppd_sends_terminate_request() -> None:
    skip_unless_uml()
    with PppdGuest(QUICK_STOP) as guest:
        sock = guest.start()
        reader = FrameReader(sock)
        reader.next_frame(BOOT_TIMEOUT)
        status = guest.stop_pppd(timeout=10)
        assert reader.frame_starting(LCP_TERM_REQ, timeout=2)
        # 5 (EXIT_USER_REQUEST) if the TermReq is acked; unanswered, pppd reports 16 (EXIT_HANGUP)
        assert guest.wait(timeout=10) == status == guest.pppd_exit_status()
        assert status in (5, 16)
        guest.wait_for_log(r"Terminating on signal 15", timeout=1)
        assert not guest.is_running()


def relay(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways between two guests' serial lines until EOF or stop."""
    peer = {a: b, b: a}
    with contextlib.suppress(OSError, ValueError):  # a guest went away
        while not stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.1)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                peer[sock].sendall(data)


def test_two_guests_cmd_ip_up_and_peer_dns() -> None:
    skip_unless_uml()
    # the server asks for PAP, checks alice's secret and hands out a DNS server address
    server = PppdGuest(
        ["auth", "require-pap", "local", "debug", "192.0.2.1:192.0.2.2", "ms-dns", "192.0.2.53"]
        + ["noccp", "lcp-restart", "1"],
        secrets=["alice * s3cret *"],
        pre_cmd="echo pre_cmd ran as $(id -u)",
        name="server",
    )
    client = PppdGuest(
        ["noauth", "user", "alice", "local", "debug", "noipdefault", "usepeerdns", "noccp"] + ["lcp-restart", "1"],
        secrets=["alice * s3cret"],
        cmd='echo "up $PPP_IFACE $PPP_LOCAL $PPP_REMOTE $DNS1"; exit 3',
        name="client",
    )
    stop = threading.Event()
    with server, client:
        thread = threading.Thread(target=relay, args=(server.start(), client.start(), stop), daemon=True)
        thread.start()
        try:
            assert server.wait_ip_up(timeout=20) == {
                "interface": "ppp0",
                "local": "192.0.2.1",
                "remote": "192.0.2.2",
            }
            assert client.wait(timeout=20) == 5  # cmd done -> init stopped pppd
            assert client.cmd_status() == 3
            assert client.cmd_output() == "up ppp0 192.0.2.2 192.0.2.1 192.0.2.53\n"
            assert client.ip_up() == {
                "interface": "ppp0",
                "local": "192.0.2.2",
                "remote": "192.0.2.1",
                "DNS1": "192.0.2.53",
                "DNS2": "192.0.2.53",
            }  # pppd repeats DNS1
            assert "192.0.2.53" in (client.etc_ppp_file("resolv.conf") or "")
            server.wait_for_log(r"rcvd \[LCP TermReq", timeout=5)
            assert isinstance(server.wait(timeout=10), int)  # the server's pppd exits when the link ends
            assert "pre_cmd ran as 0" in server.log()
            assert "PAP peer authentication succeeded for alice" in server.log()
        finally:
            stop.set()
            thread.join(timeout=2)
    assert client.cmd_status() == 3 and "192.0.2.53" in (client.etc_ppp_file("resolv.conf") or "")


def test_skip_unless_uml_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uml, "uml_unavailable_reason", lambda: "no UML here")
    monkeypatch.delenv("WIPSTACK_REQUIRE_INTEROP", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no UML here"):
        skip_unless_uml()
    monkeypatch.setenv("WIPSTACK_REQUIRE_INTEROP", "1")
    with pytest.raises(pytest.fail.Exception, match="no UML here"):
        skip_unless_uml()


def test_uml_available_here() -> None:
    skip_unless_uml()
    assert uml_unavailable_reason() is None
