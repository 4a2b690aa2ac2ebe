"""wipstack's FTP client over its own PPP, against an FTP server in a User-Mode-Linux guest.

Topology (TEST-NET-1)::

    UML guest: pppd, Linux TCP, python3 tiny FTP server  --PPP over a socketpair--  wipstack: PPP server,
    192.0.2.2:21                                                                     FtpSession, 192.0.2.1

pyftpdlib is not installed for the guest's python3 (the host's /usr/bin/python3 through hostfs),
so the guest runs ``ftp_helpers.TINY_FTP_SERVER``, a small RFC 959 server in the standard
library, from its run dir (``guest.run_dir`` on the host is ``/run`` in the guest).  It serves
``/run/ftproot`` and stores uploads there, so the host checks both directions itself.

5 MB each way, passive (EPSV) and active (PORT: the guest connects to our listener), SHA-256
checked.  Rates are printed (``pytest -s``): towards the guest the link runs at ~5 Mbit/s (UML's
serial input costs one host read per octet), from it several times faster.
"""

from __future__ import annotations

import random
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from tests.harness.uml import PppdGuest, skip_unless_uml
from tests.interop.ftp_helpers import PASSWORD, TINY_FTP_SERVER, USER, WipFtp, random_bytes, sha
from wipstack.drivers.link import SocketLink
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import PppPort
from wipstack.net import Stack
from wipstack.ppp.config import CpConfig, IpcpConfig, PppConfig
from wipstack.ppp.session import PppSession
from wipstack.tcp.state import TcpState

pytestmark = pytest.mark.interop

LOCAL = "192.0.2.1"  # wipstack
GUEST = "192.0.2.2"  # pppd's end, where the FTP server listens
SIZE = 5 * 1024 * 1024
FAST = ["lcp-restart", "1", "ipcp-restart", "1"]
TRANSFER_TIMEOUT = 60.0  # seconds for one 5 MB transfer (measured: ~10 s towards the guest)

GUEST_CMD = textwrap.dedent(
    f"""\
    python3 /run/ftpd.py /run/ftproot {GUEST} 21 {USER} {PASSWORD} /run/ftpd.log 85 &
    # serve until the test is done (85 s at most)
    for i in $(seq 850); do [ -e /run/test-done ] && break; sleep 0.1; done
    echo "ftp server done"
    """
)


@dataclass
class GuestFtp:
    """A guest whose pppd dialled wipstack, with the tiny FTP server listening in it."""

    guest: PppdGuest
    loop: NetLoop
    port: PppPort

    def run_file(self, name: str) -> str:
        try:
            return (self.guest.run_dir / name).read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, what: str, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.loop.error is not None:
                raise AssertionError(f"the network loop died: {self.loop.error!r}") from self.loop.error
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not done after {timeout:g} s\n{self.story()}")
            time.sleep(0.05)

    def story(self) -> str:
        return (
            f"--- guest ftpd.log:\n{self.run_file('ftpd.log')[-3000:]}\n"
            f"--- guest cmd output:\n{self.guest.cmd_output()[-2000:]}\n"
            f"--- guest log tail:\n{self.guest.log_tail(25)}"
        )


@pytest.fixture
def guest_ftp() -> Iterator[Callable[[str, dict[str, bytes]], GuestFtp]]:
    """``guest_ftp(name, files)``: boot a guest whose pppd dials wipstack (PPP server), with
    ``files`` in its /run/ftproot and the tiny FTP server listening on 192.0.2.2:21."""
    skip_unless_uml()
    guests: list[PppdGuest] = []
    loops: list[NetLoop] = []

    def boot(name: str, files: dict[str, bytes]) -> GuestFtp:
        guest = PppdGuest(["debug", "local", "noauth", f"{GUEST}:{LOCAL}", *FAST], cmd=GUEST_CMD, name=name,
                          up_timeout=30)  # fmt: skip
        guests.append(guest)
        sock = guest.start()
        # wipstack has not answered yet, so the guest's cmd (run once IPCP is up) cannot have started
        (guest.run_dir / "ftpd.py").write_text(TINY_FTP_SERVER)
        root = guest.run_dir / "ftproot"
        root.mkdir()
        for fname, data in files.items():
            (root / fname).write_bytes(data)
        stack = Stack(random.Random(41))
        loop = NetLoop(stack)
        loops.append(loop)
        config = PppConfig(
            ipcp=IpcpConfig(local_address=IPv4Address(LOCAL), peer_address=IPv4Address(GUEST)),
            cp=CpConfig(restart_interval=1.0),
        )
        port = PppPort(stack, PppSession(config, random.Random(42)), SocketLink(sock))
        loop.add_port(port)
        port.open()
        loop.start()
        link = GuestFtp(guest, loop, port)
        info = guest.wait_ip_up(30)
        assert info["local"] == GUEST and info["remote"] == LOCAL, info
        link.wait("wipstack IPCP up", lambda: loop.call(lambda: port.is_up), 10)
        # python3 starts slowly in UML (~1-2 s)
        link.wait("the guest's FTP server", lambda: (guest.run_dir / "ftp.ready").exists(), 30)
        return link

    try:
        yield boot
    finally:
        for guest in guests:
            if guest._run_dir is not None:
                (guest.run_dir / "test-done").touch()
        for loop in loops:
            loop.close()
        for guest in guests:
            guest.close(grace=0)


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_5mb_each_way_with_a_guest_ftp_server(guest_ftp: Callable[[str, dict[str, bytes]], GuestFtp],
                                              mode: str) -> None:  # fmt: skip
    down_data = random_bytes(SIZE, seed=51)
    up_data = random_bytes(SIZE, seed=52)
    link = guest_ftp(f"ftp-{mode}", {"down.bin": down_data})
    client = WipFtp(link.loop, GUEST, user=USER, password=PASSWORD, passive=mode == "passive", timeout=60)
    assert client.login(), f"{client.closed}\n{link.story()}"

    down = client.download("down.bin", timeout=TRANSFER_TIMEOUT)
    assert down.ok, f"{down.describe()}\n{link.story()}"
    assert (down.size, down.sha256) == (SIZE, sha(down_data)), down.describe()

    up = client.upload("up.bin", up_data, timeout=TRANSFER_TIMEOUT)
    assert up.ok, f"{up.describe()}\n{link.story()}"
    stored = link.guest.run_dir / "ftproot" / "up.bin"
    assert stored.stat().st_size == SIZE and sha(stored.read_bytes()) == sha(up_data), link.story()
    log = link.run_file("ftpd.log")
    assert re.search(rf"^STOR up\.bin {SIZE} octets wire={SIZE} sha256={sha(up_data)} ", log, re.M), log
    verbs = re.findall(r"^< (\w+)", log, re.M)
    if mode == "passive":
        assert "EPSV" in verbs and "PORT" not in verbs, verbs
    else:
        assert "PORT" in verbs and "EPSV" not in verbs and "PASV" not in verbs, verbs

    closed = client.quit()
    assert closed.error is None, closed
    (link.guest.run_dir / "test-done").touch()
    retransmitted = link.loop.call(
        lambda: sum(c.retransmitted_segments for c in link.loop.stack.tcp.connections if c.state != TcpState.CLOSED)
    )
    print(
        f"\n[PPP/UML {mode}] from the guest: {down.describe()}"
        f"\n[PPP/UML {mode}] to the guest: {up.describe()}"
        f"\n[PPP/UML {mode}] retransmitted segments on connections still known: {retransmitted}"
    )
