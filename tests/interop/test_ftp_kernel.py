"""wipstack's FTP client against real FTP servers (pyftpdlib and vsftpd) in a test namespace.

Topology (TEST-NET-1)::

    wipstack (this process, or the CLI / the modem)  192.0.2.2  <-- tun -->  192.0.2.1  the kernel in a
                                                                                           namespace: pyftpdlib
                                                                                           or vsftpd on port 21

Covered, each against both servers unless said otherwise:

1. passive and active mode, files of 0 B, 1 B, all 256 octet values, 1 MB and 20 MB: the
   SHA-256 is the same after a download and after an upload (:class:`FtpSession`, its transfers
   pumped from TransferEvents and on every loop round, as ``wipstack ftp`` does; the
   event-driven-only cases have tests of their own);
2. TYPE A: a text file with LF line ends arrives with LF; our uploads carry CRLF on the wire
   (RFC 959 §3.1.1.1), as ``Transfer.bytes`` and the server's own record show;
3. errors: a wrong password, a missing file, the server killed in the middle of a 20 MB
   transfer, a data connection that cannot be made (passive and active); the session ends
   cleanly each time;
4. 5 MB each way with 5 % loss on the link (FaultyTunPort, seeded);
5. ``+WIPFILE`` on the AT UART of ``python -m wipstack modem --tun-netns`` (bearer 4, and GPRS
   over TUN once), the test de-escaping DLE/ETX itself: 0 B, 1 B, 256 values, 1 MB, passive and
   active, TYPE A; the same errors (841 for the create, before CONNECT, or after the ETX);
6. ``python -m wipstack ftp`` get/put/ls, its exit codes and its ``.part`` file.

Rates are printed (``pytest -s``), never asserted.

Bugs this module found stay as regression tests: an active-mode data connection accepted after
the server's 150 got no TransferEvent, so an event-driven upload stalled after 64 KiB; an empty
active upload whose
``finish()`` came before the accept never ended; a completed download's data connection stayed in
CLOSE-WAIT; a TYPE A upload stalled when a converted chunk did not fit (the AT TYPE A upload hung).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.netns import NetNamespace
from tests.harness.netns_fixtures import netns, tun_in_netns  # noqa: F401
from tests.interop.at_helpers import ETX_B, AtClient, ModemProcess, dle_escape, running_modem
from tests.interop.ftp_helpers import (
    KERNEL,
    SERVER_KINDS,
    SIZES,
    FtpServer,
    WipFtp,
    at_download,
    at_final_after_data,
    cli_argv,
    ftp_server,
    mbit,
    payload,
    random_bytes,
    run_cli,
    sha,
    start_bearer,
    start_cli,
    text_payload,
    wait_until,
)
from tests.interop.tcp_kernel_helpers import Wip, running_wip
from wipstack.apps.ftp import FtpErrorKind, SessionState
from wipstack.drivers.faults import FaultConfig
from wipstack.drivers.tun import TunDevice
from wipstack.tcp.state import TcpState

pytestmark = pytest.mark.interop

MODES = ("passive", "active")


@pytest.fixture
def wip(tun_in_netns: tuple[NetNamespace, TunDevice]) -> Iterator[Wip]:  # noqa: F811
    ns, tun = tun_in_netns
    with running_wip(ns, tun) as w:
        yield w


def session(
    wip: Wip, server: FtpServer, *, passive: bool = True, binary: bool = True, poll: bool = True, timeout: float = 30.0
) -> WipFtp:
    """A logged-in FtpSession to ``server``; ``poll=False`` pumps transfers from TransferEvents only."""
    client = WipFtp(wip.loop, KERNEL, user=server.user, password=server.password, passive=passive, binary=binary,
                    poll=poll, timeout=timeout)  # fmt: skip
    assert client.login(), f"login failed: {client.closed}\n{server.log()}"
    return client


# ==========================================================================
# 1. sizes, passive and active, through the API
# ==========================================================================


MATRIX = [
    pytest.param(kind, mode, size, id=f"{kind}-{mode}-{size}")
    for kind in SERVER_KINDS
    for mode in MODES
    for size in SIZES
]


def transfer_timeout(size: int) -> float:
    return 10.0 + size / 1e6  # generous (20 MB takes well under 2 s here); a hang fails in bounded time


@pytest.mark.parametrize(("kind", "mode", "size"), MATRIX)
def test_download_intact(wip: Wip, kind: str, mode: str, size: str) -> None:
    data = payload(size, seed=11)
    with ftp_server(kind, wip.ns) as server:
        remote = server.put(f"file-{size}.bin", data)
        client = session(wip, server, passive=mode == "passive")
        down = client.download(remote, timeout=transfer_timeout(len(data)))
        print(f"\n[{kind} {mode}] {down.describe()}")
        assert down.ok, f"{down.describe()}\n{server.log()}"
        assert (down.size, down.sha256) == (len(data), sha(data)), down.describe()
        assert down.wire == len(data) and down.reply is not None and down.reply.code == 226, down
        closed = client.quit()
        assert closed.error is None, closed


@pytest.mark.parametrize(("kind", "mode", "size"), MATRIX)
def test_upload_intact(wip: Wip, kind: str, mode: str, size: str) -> None:
    data = payload(size, seed=12)
    with ftp_server(kind, wip.ns) as server:
        client = session(wip, server, passive=mode == "passive")
        name = server.upload_name(f"up-{size}.bin")
        up = client.upload(name, data, timeout=transfer_timeout(len(data)))
        print(f"\n[{kind} {mode}] {up.describe()}")
        assert up.ok, f"{up.describe()}\n{server.log()}"
        stored = server.read(name)
        assert (len(stored), sha(stored)) == (len(data), sha(data)), f"{kind} stored something else"
        assert up.wire == len(data) and up.reply is not None and up.reply.code == 226, up
        closed = client.quit()
        assert closed.error is None, closed


def test_active_upload_to_pyftpdlib_event_driven(wip: Wip) -> None:
    """pyftpdlib connects at PORT time, long before the 150: an upload pumped only from
    TransferEvents works (the control case of the next test)."""
    data = payload("1MB", seed=13)
    with ftp_server("pyftpdlib", wip.ns) as server:
        client = session(wip, server, passive=False, poll=False)
        up = client.upload("event-driven.bin", data, timeout=15)
        print(f"\n[pyftpdlib active, event-driven] {up.describe()}")
        assert up.ok and sha(server.read("event-driven.bin")) == sha(data), f"{up.describe()}\n{server.log()}"
        assert client.quit().error is None


@pytest.mark.parametrize(
    ("size", "poll"),
    [
        pytest.param("0B", False, id="0B"),  # finish() before the data connection exists
        pytest.param("1MB", True, id="1MB-polled"),
        pytest.param("1MB", False, id="1MB-event-driven"),  # fmt: skip
    ],
)
def test_active_upload_when_150_precedes_the_connection(wip: Wip, size: str, poll: bool) -> None:
    """The tiny server answers STOR with 150 and only then connects to our PORT listener
    (RFC 959 §5.4 allows it; vsftpd does it too, racing with our accept): an empty upload, and an
    upload pumped from TransferEvents only, must still complete."""
    data = payload(size, seed=14)
    with ftp_server("tiny", wip.ns) as server:
        client = session(wip, server, passive=False, poll=poll)
        up = client.upload("late.bin", data, timeout=8)
        print(f"\n[tiny active, {'polled' if poll else 'event-driven'}] {up.describe()}")
        if not up.ok:
            client.abort()
        assert up.ok, f"{up.describe()}\n{server.log()}"
        assert sha(server.read("late.bin")) == sha(data)


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_download_closes_its_data_connection(wip: Wip, kind: str) -> None:
    """After the FIN and the 226 our end of the data connection closes too (it used to stay in
    CLOSE-WAIT for good, the server's end in FIN-WAIT-2)."""
    with ftp_server(kind, wip.ns) as server:
        server.put("small.bin", payload("256values"))
        client = session(wip, server)
        assert client.download("small.bin").ok
        assert client.quit().error is None
        time.sleep(0.5)
        kernel = wip.ns.run("ss", "-tanH", "state", "fin-wait-2").stdout.decode().strip()
        print(f"\n[{kind}] wipstack: {wip.connections()}\n[{kind}] kernel FIN-WAIT-2: {kernel or '-'}")
        assert not kernel, f"the server's end waits for our FIN: {kernel}"
        assert_no_live_connections(wip, 3)


# ==========================================================================
# 2. TYPE A
# ==========================================================================


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_ascii_line_ends(wip: Wip, kind: str, mode: str) -> None:
    """RFC 959 §3.1.1.1: NVT-ASCII on the wire (CRLF), the local convention (LF) at both ends.

    Download: the file (LF on the server) arrives with LF, and CRLF crossed the wire
    (``Transfer.bytes`` = octets + lines).  Upload: we send CRLF; pyftpdlib stores LF again
    (its conversion, and its transfer log counts the CRLF octets); vsftpd (ascii_upload_enable=NO)
    stores what came over the wire verbatim, i.e. CRLF.  A local CRLF is not doubled.
    """
    text = text_payload()
    lines = text.count(b"\n")
    crlf = text.replace(b"\n", b"\r\n")
    with ftp_server(kind, wip.ns) as server:
        server.put("notes.txt", text)
        client = session(wip, server, passive=mode == "passive", binary=False)
        # an odd read size so that some CRLF pairs straddle two reads
        down = client.download("notes.txt", keep=True, recv_size=4099)
        assert down.ok, f"{down.describe()}\n{server.log()}"
        assert down.data == text, "the TYPE A download differs from the LF text"
        assert down.wire == len(crlf), f"{down.wire} octets on the wire, expected {len(crlf)} (CRLF line ends)"
        name = server.upload_name("notes-up.txt")
        up = client.upload(name, text)
        assert up.ok, f"{up.describe()}\n{server.log()}"
        assert up.wire == len(text) + lines, "our TYPE A upload did not put CRLF on the wire"
        stored = server.read(name)
        if kind == "pyftpdlib":
            assert stored == text, "pyftpdlib should store the upload with LF again"
            assert f"bytes={len(crlf)}" in server.log(), server.log()
        else:
            assert stored == crlf, "vsftpd stores TYPE A uploads verbatim: the wire must have been CRLF"
        mixed = b"one\r\ntwo\nthree\r\n\r\nfour\n"
        name2 = server.upload_name("mixed.txt")
        up2 = client.upload(name2, mixed)
        assert up2.ok and up2.wire == len(b"one\r\ntwo\r\nthree\r\n\r\nfour\r\n"), up2.describe()
        stored2 = server.read(name2)
        expected2 = b"one\ntwo\nthree\n\nfour\n" if kind == "pyftpdlib" else b"one\r\ntwo\r\nthree\r\n\r\nfour\r\n"
        assert stored2 == expected2, stored2
        assert client.quit().error is None
        print(f"\n[{kind} {mode} TYPE A] {down.describe()}\n[{kind} {mode} TYPE A] {up.describe()}")


def test_ascii_upload_event_driven(wip: Wip) -> None:
    """A 1.2 MB text offered 64 KiB at a time (~65.5 KB on the wire each), pumped from TransferEvents
    only: it goes on when room comes (Transfer.send() in TYPE A used to refuse a converted chunk larger
    than the free room without ever getting a SendSpace, and the upload stalled for good)."""
    text = text_payload()
    with ftp_server("pyftpdlib", wip.ns) as server:
        client = session(wip, server, binary=False, poll=False)
        up = client.upload("event-driven.txt", text, timeout=8)
        print(f"\n[pyftpdlib TYPE A, event-driven] {up.describe()}")
        if not up.ok:
            client.abort()
        assert up.ok, up.describe()
        assert server.read("event-driven.txt") == text


# ==========================================================================
# 3. errors through the API
# ==========================================================================


def assert_no_live_connections(wip: Wip, timeout: float = 5.0) -> None:
    """Every wipstack connection ended (closed, or in TIME-WAIT)."""
    done = (TcpState.CLOSED, TcpState.TIME_WAIT)
    deadline = time.monotonic() + timeout
    while True:
        live = [c for c in wip.connections() if c[0] not in done]
        if not live or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert not live, f"connections still open: {live}"


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_wrong_password(wip: Wip, kind: str) -> None:
    with ftp_server(kind, wip.ns) as server:
        client = WipFtp(wip.loop, KERNEL, user=server.user, password=server.wrong_password)
        assert not client.login(), "logged in with a wrong password"
        closed = client.closed
        assert closed is not None and closed.error is not None
        assert closed.error.kind is FtpErrorKind.LOGIN, closed.error
        assert closed.error.reply is not None and closed.error.reply.code == 530, closed.error
        assert client.state() is SessionState.CLOSED
        assert_no_live_connections(wip)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_missing_file(wip: Wip, kind: str, mode: str) -> None:
    """550: REFUSED, and the session goes on (a download after it works, QUIT is clean)."""
    with ftp_server(kind, wip.ns) as server:
        server.put("present.bin", payload("256values"))
        client = session(wip, server, passive=mode == "passive")
        missing = client.download("no-such-file.bin", timeout=15)
        assert not missing.ok and missing.state == "failed", missing.describe()
        assert missing.error is not None and missing.error.kind is FtpErrorKind.REFUSED, missing.error
        assert missing.error.reply is not None and missing.error.reply.code == 550, missing.error
        assert client.state() is SessionState.READY
        again = client.download("present.bin")
        assert again.ok and again.sha256 == sha(payload("256values")), again.describe()
        assert client.quit().error is None
        assert_no_live_connections(wip)


KILL_RATE = 2_000_000  # octets/s: the server's rate limit, so that the kill falls inside the 20 MB


@pytest.mark.parametrize("direction", ["download", "upload"])
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_server_killed_mid_transfer(wip: Wip, kind: str, direction: str) -> None:
    """The server dies (SIGKILL) after 1 MB of a 20 MB transfer: the transfer fails, never ok."""
    data = payload("20MB", seed=15)
    with ftp_server(kind, wip.ns, rate=KILL_RATE) as server:
        remote = server.put("big.bin", data) if direction == "download" else server.upload_name("big-up.bin")
        client = session(wip, server)
        started = time.monotonic()
        job = client.start(remote, None if direction == "download" else data, threshold=1_000_000)
        assert job.reached.wait(20), f"1 MB not moved within 20 s\n{server.log()}"
        server.kill()
        result = client.finish(job, remote, started, 30)
        print(f"\n[{kind} killed during {direction}] {result.describe()}")
        assert not result.ok and result.state == "failed", result.describe()
        assert result.error is not None and result.error.kind in (FtpErrorKind.CLOSED, FtpErrorKind.DATA), result
        assert result.wire < len(data)
        closed = client.quit()  # nothing left to QUIT: the server's end went away
        assert closed.error is not None and closed.error.kind is FtpErrorKind.CLOSED, closed
        assert_no_live_connections(wip, 10)


def refusing_server(kind: str, mode: str) -> dict[str, object]:
    if kind == "pyftpdlib":  # a passive port nobody listens on / an active connection to a closed port
        return {"quirk": "closed-pasv" if mode == "passive" else "wrong-port"}
    return {"pasv": False} if mode == "passive" else {"active": False}  # vsftpd: PASV/EPSV or PORT refused


REFUSED_REPLY = {("pyftpdlib", "active"): 425, ("vsftpd", "passive"): 550, ("vsftpd", "active"): 550}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_data_connection_refused(wip: Wip, kind: str, mode: str) -> None:
    """No data connection can be made; the session stays usable and QUITs cleanly.

    pyftpdlib passive: it advertises a closed port, our SYN gets a RST (DATA).  pyftpdlib active:
    it connects to our port + 1 (closed) and answers PORT with 425.  vsftpd with pasv_enable=NO /
    port_enable=NO answers EPSV and PASV / PORT with 550.  The session's contract (as its own
    tests say): a passive-mode failure is DATA, a 4xx/5xx to PORT is REFUSED, with the reply.
    """
    with ftp_server(kind, wip.ns, **refusing_server(kind, mode)) as server:
        server.put("file.bin", payload("1MB"))
        client = session(wip, server, passive=mode == "passive")
        result = client.download("file.bin", timeout=20)
        print(f"\n[{kind} {mode}, data refused] {result.describe()}")
        assert not result.ok and result.state == "failed", result.describe()
        expected = FtpErrorKind.DATA if mode == "passive" else FtpErrorKind.REFUSED
        assert result.error is not None and result.error.kind is expected, result.error
        code = result.error.reply.code if result.error.reply is not None else None
        assert code == REFUSED_REPLY.get((kind, mode)), result.error
        assert result.size == 0
        assert client.state() is SessionState.READY
        assert client.quit().error is None
        assert_no_live_connections(wip)


# ==========================================================================
# 4. loss
# ==========================================================================


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_5mb_each_way_with_5_percent_loss(tun_in_netns: tuple[NetNamespace, TunDevice], kind: str) -> None:  # noqa: F811
    ns, tun = tun_in_netns
    data = random_bytes(5_000_000, seed=16)
    faults = FaultConfig(loss=0.05)
    with running_wip(ns, tun, faults=faults, seed=1234) as wip, ftp_server(kind, ns) as server:
        server.put("lossy.bin", data)
        client = session(wip, server, timeout=60)
        down = client.download("lossy.bin", timeout=80)
        assert down.ok and down.sha256 == sha(data), f"{down.describe()}\n{server.log()}"
        name = server.upload_name("lossy-up.bin")
        up = client.upload(name, data, timeout=80)
        assert up.ok, f"{up.describe()}\n{server.log()}"
        assert sha(server.read(name)) == sha(data)
        assert client.quit().error is None
        counters = wip.call(lambda: wip.port.counters)  # type: ignore[union-attr]
        print(f"\n[{kind}, 5% loss] {down.describe()}\n[{kind}, 5% loss] {up.describe()}\n  faults: {counters}")


# ==========================================================================
# 5. +WIPFILE on the AT UART of `python -m wipstack modem --tun-netns`
# ==========================================================================


@dataclass
class AtRig:
    ns: NetNamespace
    modem: ModemProcess
    at: AtClient
    server: FtpServer

    def story(self) -> str:
        return f"{self.at.story()}\n--- modem stderr:\n{self.modem.stderr[-3000:]}\n{self.server.log()}"

    def create(self, *, password: str | None = None, expect: str = "OK") -> None:
        password = self.server.password if password is None else password
        self.at.command(f'AT+WIPCREATE=4,1,"{KERNEL}","{self.server.user}","{password}"', 20, expect=expect)

    def download(self, name: str, timeout: float = 60, **kw: Any) -> tuple[bytes, str, float]:
        """``+WIPFILE=4,1,1``: the de-escaped file, the final result after the ETX, the seconds."""
        started = time.monotonic()
        self.at.command(f'AT+WIPFILE=4,1,1,"{name}"', 20, expect="CONNECT")
        data, final = at_download(self.at, timeout, **kw)
        return data, final, time.monotonic() - started

    def upload(self, name: str, data: bytes, timeout: float = 60) -> tuple[str, float]:
        """``+WIPFILE=4,1,2``: the DLE-escaped file and an ETX; the final result, the seconds."""
        started = time.monotonic()
        self.at.command(f'AT+WIPFILE=4,1,2,"{name}"', 20, expect="CONNECT")
        self.at.send(dle_escape(data) + ETX_B, timeout)
        return at_final_after_data(self.at, timeout), time.monotonic() - started


@pytest.fixture
def at_rig(netns: NetNamespace) -> Iterator[Callable[..., AtRig]]:  # noqa: F811
    """``at_rig(kind, gprs=False, **server_options)``: the FTP server in ``netns``, then the modem
    with its TUN bearer (4, or 6 over TUN) whose kernel side is in ``netns``."""
    with contextlib.ExitStack() as stack:

        def make(kind: str, *, gprs: bool = False, **options: Any) -> AtRig:
            server = stack.enter_context(ftp_server(kind, netns, **options))
            args = ["--tun-netns", netns.name, "--seed", "7"] + (["--gprs-over-tun"] if gprs else [])
            modem = stack.enter_context(running_modem(*args))
            at = stack.enter_context(modem.client(1))
            start_bearer(at, gprs=gprs)
            return AtRig(netns, modem, at, server)

        yield make


def at_cases() -> list[Any]:
    cases: list[Any] = [pytest.param(kind, "passive", size, id=f"{kind}-passive-{size}")
             for kind in SERVER_KINDS for size in ("0B", "1B", "256values", "1MB")]  # fmt: skip
    cases += [pytest.param(kind, "active", size, id=f"{kind}-active-{size}")
              for kind in SERVER_KINDS for size in ("1B", "1MB")]  # fmt: skip
    return cases


@pytest.mark.parametrize(("kind", "mode", "size"), at_cases())
def test_at_wipfile_download_and_upload(at_rig: Callable[..., AtRig], kind: str, mode: str, size: str) -> None:
    rig = at_rig(kind)
    data = payload(size, seed=21)
    rig.server.put("at.bin", data)
    rig.create()
    if mode == "active":
        rig.at.command("AT+WIPOPT=4,1,2,41,0")
        assert rig.at.command("AT+WIPOPT=4,1,1,41").lines == ["+WIPOPT: 4,41,0"], rig.story()
    got, final, down_s = rig.download("at.bin")
    assert final == "OK", rig.story()
    assert (len(got), sha(got)) == (len(data), sha(data)), f"download differs ({len(got)} octets)\n{rig.story()}"
    name = rig.server.upload_name("at-up.bin")
    final, up_s = rig.upload(name, data)
    assert final == "OK", rig.story()
    stored = rig.server.read(name)
    assert (len(stored), sha(stored)) == (len(data), sha(data)), f"{kind} stored {len(stored)} other octets"
    rig.at.command("AT+WIPCLOSE=4,1")
    print(f"\n[AT {kind} {mode} {size}] +WIPFILE get {mbit(len(data), down_s):.2f} Mbit/s ({down_s:.2f} s), "
          f"put {mbit(len(data), up_s):.2f} Mbit/s ({up_s:.2f} s)")  # fmt: skip


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_at_wipfile_ascii_download(at_rig: Callable[..., AtRig], kind: str) -> None:
    """Option 40 = 0 (TYPE A): the LF text (CRLF on the wire) arrives with LF."""
    rig = at_rig(kind)
    text = text_payload(seed=22)
    rig.server.put("at.txt", text)
    rig.create()
    rig.at.command("AT+WIPOPT=4,1,2,40,0")
    assert rig.at.command("AT+WIPOPT=4,1,1,40").lines == ["+WIPOPT: 4,40,0"], rig.story()
    got, final, seconds = rig.download("at.txt")
    assert final == "OK" and got == text, f"{len(got)} octets\n{rig.story()}"
    rig.at.command("AT+WIPCLOSE=4,1")
    print(f"\n[AT {kind} TYPE A] get {len(text):,} octets in {seconds:.2f} s")


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_at_wipfile_ascii_upload(at_rig: Callable[..., AtRig], kind: str) -> None:
    """Option 40 = 0: a 1.2 MB LF text uploaded is stored as the server's TYPE A rules say (with
    CRLF on the wire); with the module's 10240-octet send buffer it used to hang after ~60 KB."""
    rig = at_rig(kind)
    text = text_payload(seed=22)
    rig.create()
    rig.at.command("AT+WIPOPT=4,1,2,40,0")
    name = rig.server.upload_name("at-up.txt")
    final, seconds = rig.upload(name, text, timeout=30)
    assert final == "OK", rig.story()
    print(f"\n[AT {kind} TYPE A] put {len(text):,} octets in {seconds:.2f} s")
    expected = text if kind == "pyftpdlib" else text.replace(b"\n", b"\r\n")  # see test_ascii_line_ends
    assert rig.server.read(name) == expected
    rig.at.command("AT+WIPCLOSE=4,1")


def test_at_wipfile_over_gprs_over_tun(at_rig: Callable[..., AtRig]) -> None:
    rig = at_rig("pyftpdlib", gprs=True)
    data = payload("256values")
    rig.server.put("gprs.bin", data)
    rig.create()
    got, final, _ = rig.download("gprs.bin")
    assert final == "OK" and got == data, rig.story()
    final, _ = rig.upload("gprs-up.bin", data)
    assert final == "OK" and rig.server.read("gprs-up.bin") == data, rig.story()
    rig.at.command("AT+WIPCLOSE=4,1")


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_at_wrong_password_and_missing_file(at_rig: Callable[..., AtRig], kind: str) -> None:
    rig = at_rig(kind)
    rig.server.put("there.bin", payload("1B"))
    rig.create(password=rig.server.wrong_password, expect="+CME ERROR: 841")
    rig.create()  # the index is free again, the right password works
    rig.at.command('AT+WIPFILE=4,1,1,"no-such-file.bin"', 20, expect="+CME ERROR: 841")
    got, final, _ = rig.download("there.bin")  # the session goes on
    assert final == "OK" and got == payload("1B"), rig.story()
    rig.at.command("AT+WIPCLOSE=4,1")
    rig.at.command("AT")  # the UART is in AT mode, nothing pending


@pytest.mark.parametrize("direction", ["download", "upload"])
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_at_server_killed_mid_transfer(at_rig: Callable[..., AtRig], kind: str, direction: str) -> None:
    """Killed after ~1 MB of 20 MB: a download ends with ETX then 841, an upload with 841; never OK."""
    rig = at_rig(kind, rate=KILL_RATE)
    data = payload("20MB", seed=23)
    rig.create()
    if direction == "download":
        rig.server.put("big.bin", data)
        killed: list[int] = []

        def kill_after_1mb(count: int) -> None:
            if count >= 1_000_000 and not killed:
                killed.append(count)
                rig.server.kill()

        got, final, seconds = rig.download("big.bin", 60, on_data=kill_after_1mb)
        print(f"\n[AT {kind} killed during download] {len(got):,} octets before the ETX, then {final}")
        assert killed, rig.story()
        assert len(got) < len(data) and got == data[: len(got)], "the partial download is not a prefix"
    else:
        name = rig.server.upload_name("big-up.bin")
        rig.at.command(f'AT+WIPFILE=4,1,2,"{name}"', 20, expect="CONNECT")
        rig.at.send(dle_escape(data[:1_000_000]), 60)
        # kill once the module has read (nearly) all of it from the UART: what it had not read yet
        # would be taken for AT commands once the failed upload ends data mode (pyftpdlib's file
        # buffer may hold back up to 8 KiB, which the module takes from the UART within ms)
        stored = rig.server.path(name)
        wait_until(lambda: stored.exists() and stored.stat().st_size >= 1_000_000 - 8192, 20, "1 MB stored")
        time.sleep(0.3)
        rig.server.kill()
        final = at_final_after_data(rig.at, 30)  # the module ends the upload on its own
        print(f"\n[AT {kind} killed during upload] {final}")
    assert final == "+CME ERROR: 841", rig.story()
    rig.at.wait_for(r"\+WIPPEERCLOSE: 4,1", 15)
    rig.at.command("AT+WIPCLOSE=4,1")
    rig.at.command("AT")


def test_at_active_upload_when_150_precedes_the_connection(at_rig: Callable[..., AtRig]) -> None:
    """Option 41 = 0 with a server that answers STOR with 150 and connects 0.5 s later: the host's
    octets after CONNECT fill the 64 KiB stage before the data connection exists, and the upload
    goes on once it does (an API user pumping from TransferEvents only too: the accept emits one)."""
    rig = at_rig("tiny", connect_delay=0.5)
    data = payload("1MB", seed=24)
    rig.create()
    rig.at.command("AT+WIPOPT=4,1,2,41,0")
    final, seconds = rig.upload("late.bin", data, timeout=15)
    assert final == "OK", rig.story()
    assert sha(rig.server.read("late.bin")) == sha(data)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_at_data_connection_refused(at_rig: Callable[..., AtRig], kind: str, mode: str) -> None:
    rig = at_rig(kind, **refusing_server(kind, mode))
    rig.server.put("file.bin", payload("1B"))
    rig.create()
    if mode == "active":
        rig.at.command("AT+WIPOPT=4,1,2,41,0")
    rig.at.command('AT+WIPFILE=4,1,1,"file.bin"', 20, expect="+CME ERROR: 841")
    rig.at.command("AT+WIPCLOSE=4,1")
    rig.at.command("AT")


# ==========================================================================
# 6. the CLI: python -m wipstack ftp
# ==========================================================================


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_cli_get_put_ls(netns: NetNamespace, tmp_path: Path, kind: str, mode: str) -> None:  # noqa: F811
    data = payload("1MB", seed=31)
    extra = ["--active"] if mode == "active" else []
    with ftp_server(kind, netns) as server:
        server.put("cli.bin", data)
        got = run_cli(cli_argv(netns, server, *extra, "get", "cli.bin", "fetched.bin"), tmp_path)
        assert got.code == 0, got.stderr + server.log()
        assert sha((tmp_path / "fetched.bin").read_bytes()) == sha(data)
        assert not (tmp_path / "fetched.bin.part").exists()
        assert re.search(r"get cli\.bin: 1,000,000 octets in [\d.]+ s, [\d.]+ Mbit/s", got.stderr), got.stderr
        to_stdout = run_cli(cli_argv(netns, server, *extra, "get", "cli.bin", "-"), tmp_path)
        assert to_stdout.code == 0 and sha(to_stdout.stdout) == sha(data), to_stdout.stderr
        (tmp_path / "local.bin").write_bytes(data[::-1])
        name = server.upload_name("cli-up.bin")
        put = run_cli(cli_argv(netns, server, *extra, "put", "local.bin", name), tmp_path)
        assert put.code == 0, put.stderr + server.log()
        assert sha(server.read(name)) == sha(data[::-1])
        listing = run_cli(cli_argv(netns, server, *extra, "ls", "--names"), tmp_path)
        assert listing.code == 0, listing.stderr
        assert "cli.bin" in listing.stdout.decode(), listing.stdout
        long = run_cli(cli_argv(netns, server, *extra, "ls"), tmp_path)
        assert long.code == 0 and re.search(rb"1000000 .*cli\.bin", long.stdout), long.stdout
        print(f"\n[CLI {kind} {mode}] {got.stderr.strip().splitlines()[-1]}\n[CLI {kind} {mode}] "
              f"{put.stderr.strip().splitlines()[-1]}")  # fmt: skip


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_cli_failures_and_part_file(netns: NetNamespace, tmp_path: Path, kind: str) -> None:  # noqa: F811
    """Exit 1 for a wrong password, a missing remote file (no file, no .part left), a missing local
    file; a download cut by the server's death keeps its partial octets in ``<name>.part`` only."""
    data = payload("20MB", seed=32)
    with ftp_server(kind, netns, rate=KILL_RATE) as server:
        server.put("big.bin", data)
        wrong = run_cli(cli_argv(netns, server, "get", "big.bin", password=server.wrong_password), tmp_path)
        assert wrong.code == 1 and "530" in wrong.stderr, wrong.stderr
        assert not (tmp_path / "big.bin").exists() and not (tmp_path / "big.bin.part").exists()
        missing = run_cli(cli_argv(netns, server, "get", "absent.bin"), tmp_path)
        assert missing.code == 1 and "550" in missing.stderr, missing.stderr
        assert not (tmp_path / "absent.bin").exists() and not (tmp_path / "absent.bin.part").exists()
        no_local = run_cli(cli_argv(netns, server, "put", "no-such-local.bin"), tmp_path)
        assert no_local.code == 1, no_local.stderr
        # the server dies after >= 1 MB of the 20 MB (it sends 2 MB/s)
        proc = start_cli(cli_argv(netns, server, "get", "big.bin"), tmp_path)
        try:
            part = tmp_path / "big.bin.part"
            wait_until(lambda: part.exists() and part.stat().st_size >= 1_000_000, 30, "1 MB in big.bin.part")
            server.kill()
            out, err = proc.communicate(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        stderr = err.decode(errors="replace")
        print(f"\n[CLI {kind} killed] exit {proc.returncode}; {stderr.strip().splitlines()[-2:]}")
        assert proc.returncode == 1, stderr
        assert not (tmp_path / "big.bin").exists(), "an incomplete download got the real name"
        kept = part.read_bytes()
        assert 1_000_000 <= len(kept) < len(data) and kept == data[: len(kept)], len(kept)
        assert "big.bin.part" in stderr, stderr
