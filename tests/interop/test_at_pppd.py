"""The virtual module (``python -m wipstack modem``) as a PPP server on UART2, dialled by a real pppd.

AT commands on UART1 open bearer 2 (PPP over UART2) in server mode with PAP; a real Linux pppd
in a User-Mode-Linux guest dials UART2's pty (``guest.start_on_tty``)::

    this test --AT--> UART1  wipstack modem  UART2 <--PPP over the pty--> pppd in the UML guest
                             192.0.2.1                                    192.0.2.2

In the guest (once IPCP is up) a python3 agent (:data:`~tests.interop.at_helpers.AGENT_SCRIPT`,
the host's python3 through hostfs, its files in ``guest.run_dir`` = the guest's ``/run``) runs a
TCP echo server, a UDP echo server, and the client jobs the tests hand it.  Covered:

* PAP and IPCP: ``+WIPBR: 2,1,192.0.2.1,192.0.2.2,...`` on UART1, pppd's ip-up in the guest;
* a TCP client socket in continuous data mode: all 256 octet values both ways, ETX ->
  ``SHUTDOWN``, the guest's FIN -> ``SHUTDOWN``, ``+++`` -> ``OK``, ``+WIPPEERCLOSE: 2,1``;
* a TCP server socket with two guest clients (``+WIPACCEPT: 1,5`` / ``1,6``), data both ways;
* UDP both ways (to the guest's echo, and a listening socket answering a guest client);
* ``AT+WIPPING`` of the guest;
* ``AT+WIPBR=5,2`` stops the bearer: pppd receives the LCP Terminate-Request and exits;
* a wrong PAP password gives ``+CME ERROR: 814`` then ``+WIPBR: 2,0``; pppd hanging up a
  running link gives ``+CME ERROR: 816`` then ``+WIPBR: 2,0``.

The data tests share one guest (a module-scoped fixture: one boot for all of them); the bearer
stop and the failures have a guest each.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.uml import PppdGuest, skip_unless_uml
from tests.interop.at_helpers import (
    AGENT_SCRIPT,
    ETX_B,
    SHUTDOWN,
    AtClient,
    AtError,
    ModemProcess,
    PeerAgent,
    all_byte_values,
    dle_escape,
    start_modem,
    tcp_clients_job,
    udp_exchange_job,
)

pytestmark = pytest.mark.interop

MODULE = "192.0.2.1"  # the module's end of the PPP link (option 15)
GUEST = "192.0.2.2"  # pppd's end (option 16)
USER, PASSWORD = "user", "pass"
FAST = ["lcp-restart", "1", "ipcp-restart", "1", "pap-restart", "1"]
PPPD_OPTIONS = ["nodetach", "debug", "local", "noauth", "noipdefault", "user", USER, *FAST]
TCP_ECHO_PORT = 7007
UDP_ECHO_PORT = 7008
AGENT_LIFETIME = 400  # seconds: the guest's agent (and so the guest) ends by itself after that
BEARER_UP = r"\+WIPBR: 2,1,([0-9.]+),([0-9.]+),([0-9.]+),([0-9.]+)"


@dataclass
class PppRig:
    """A modem whose UART2 carries PPP to a guest pppd; UART1 open; the guest's agent listening."""

    modem: ModemProcess
    at: AtClient
    guest: PppdGuest
    agent: PeerAgent | None
    up: re.Match[str]

    def story(self) -> str:
        agent_log = self.agent.log() if self.agent is not None else ""
        return (
            f"{self.at.story()}\n--- modem stderr:\n{self.modem.stderr}\n--- guest agent log:\n{agent_log}\n"
            f"--- guest log tail:\n{self.guest.log_tail(25)}"
        )


@dataclass
class _Resources:
    modem: ModemProcess | None = None
    at: AtClient | None = None
    guest: PppdGuest | None = None
    agent: PeerAgent | None = None

    def close(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        if self.guest is not None:
            self.guest.close(grace=0)
        if self.at is not None:
            self.at.close()
        if self.modem is not None:
            self.modem.stop()


def start_ppp_server(at: AtClient) -> None:
    """UART1: the IP stack, bearer 2 (UART2) as a PPP server that requires PAP user/pass."""
    at.command("AT+CMEE=1")
    at.command("AT+WIPCFG=1")
    at.command("AT+WIPBR=1,2")
    at.command(f'AT+WIPBR=2,2,15,"{MODULE}"')
    at.command(f'AT+WIPBR=2,2,16,"{GUEST}"')
    at.command(f'AT+WIPBR=4,2,1,"{USER}","{PASSWORD}"')


def boot_guest(res: _Resources, directory: Path, *, name: str, cmd: str | None = None,
               password: str = PASSWORD) -> None:  # fmt: skip
    """The modem with its PPP server waiting on UART2, and a guest whose pppd dials it."""
    res.modem = start_modem(directory, "--seed", "5")
    res.at = res.modem.client(1)
    start_ppp_server(res.at)
    res.guest = PppdGuest(PPPD_OPTIONS, secrets=[f"{USER} * {password} *"], cmd=cmd, name=name, up_timeout=40)
    res.guest.start_on_tty(str(res.modem.uart2))  # the run dir exists now; cmd runs only after IPCP


def bring_up(res: _Resources, directory: Path, *, with_agent: bool, name: str) -> PppRig:
    cmd = None
    if with_agent:
        cmd = f"exec python3 /run/agent.py {GUEST} /run {TCP_ECHO_PORT} {UDP_ECHO_PORT} {AGENT_LIFETIME}"
    boot_guest(res, directory, name=name, cmd=cmd)
    assert res.guest is not None and res.at is not None and res.modem is not None
    if with_agent:
        (res.guest.run_dir / "agent.py").write_text(AGENT_SCRIPT)
        res.agent = PeerAgent(res.guest.run_dir)
    up = res.at.wait_for(BEARER_UP, 40)
    info = res.guest.wait_ip_up(20)
    assert info["local"] == GUEST and info["remote"] == MODULE, info
    if res.agent is not None:
        # python3 starts slowly in UML
        res.agent.wait_ready(40, alive=res.guest.is_running)
    return PppRig(res.modem, res.at, res.guest, res.agent, up)


@pytest.fixture(scope="module")
def ppp_rig() -> Iterator[PppRig]:
    skip_unless_uml()
    res = _Resources()
    with tempfile.TemporaryDirectory(prefix="ws-atppp-") as tmp:
        try:
            yield bring_up(res, Path(tmp), with_agent=True, name="at-pppd")
        finally:
            res.close()


@pytest.fixture
def rig(ppp_rig: PppRig) -> Iterator[PppRig]:
    """The shared link; a test that failed in data mode leaves it back in AT mode for the next one."""
    yield ppp_rig
    at = ppp_rig.at
    if at.data_mode and not at.closed:
        with contextlib.suppress(AtError):
            at.escape()


# ---------------------------------------------------------------------------- the link


def test_pap_and_ipcp_bring_the_bearer_up(rig: PppRig) -> None:
    assert rig.up[1] == MODULE and rig.up[2] == GUEST, rig.up[0]
    assert rig.at.command("AT+WIPBR?").lines == ["+WIPBR: 2,1"]
    assert rig.at.command("AT+WIPBR=3,2,16").lines == [f'+WIPBR: 2,16,"{GUEST}"']
    log = rig.guest.log()
    assert "PAP authentication succeeded" in log, rig.guest.log_tail()
    assert f"local  IP address {GUEST}" in log and f"remote IP address {MODULE}" in log, rig.guest.log_tail()


# ---------------------------------------------------------------------------- sockets


def test_tcp_client_data_mode_all_octets_both_ways(rig: PppRig) -> None:
    at = rig.at
    data = all_byte_values(65536, seed=11)
    at.command(f'AT+WIPCREATE=2,1,"{GUEST}",{TCP_ECHO_PORT}')
    at.wait_for(r"\+WIPREADY: 2,1", 20)
    at.command("AT+WIPDATA=2,1,1", expect="CONNECT")
    at.send(dle_escape(data))
    echoed = at.read_unescaped(len(data), timeout=60)
    assert echoed == data, rig.story()
    at.send(ETX_B)  # end of data: the module half-closes, the UART shows SHUTDOWN
    assert at.read_data_until(SHUTDOWN, 20) == b"", rig.story()
    # the guest's echo server sees EOF and closes: its FIN shows as SHUTDOWN too
    assert at.read_data_until(SHUTDOWN, 20) == b"", rig.story()
    assert at.escape() == b"", rig.story()
    at.wait_for(r"\+WIPPEERCLOSE: 2,1", 10)
    at.command("AT+WIPCLOSE=2,1")
    assert rig.agent is not None
    rig.agent.wait_log(rf"^tcp-echo {MODULE}:\d+ {len(data)} octets sha256={hashlib.sha256(data).hexdigest()}$", 15)


def test_tcp_server_accepts_two_guest_clients(rig: PppRig) -> None:
    at, agent = rig.at, rig.agent
    assert agent is not None
    port = 7100
    at.command(f"AT+WIPCREATE=3,1,{port},5,6")
    payloads = {"A": all_byte_values(700, seed=12), "B": all_byte_values(1100, seed=13)}
    job = agent.submit(tcp_clients_job(MODULE, port, payloads))
    at.wait_for(r"\+WIPACCEPT: 1,5", 30)
    at.wait_for(r"\+WIPACCEPT: 1,6", 30)
    seen: dict[str, int] = {}
    for idx in (5, 6):
        at.wait_for(rf"\+WIPDATA: 2,{idx},\d+", 30)
        at.command(f"AT+WIPDATA=2,{idx},1", expect="CONNECT")
        head = at.read_unescaped(2, 20)
        name = head[:1].decode("latin-1")
        assert head[1:] == b":" and name in payloads and name not in seen, (head, rig.story())
        assert at.read_unescaped(len(payloads[name]), 30) == payloads[name], rig.story()
        seen[name] = idx
        at.send(dle_escape(b"reply-" + name.encode() + b":" + payloads[name][::-1]))
        # the clients close once both have their replies: the last one's FIN may show as SHUTDOWN
        assert at.escape() in (b"", SHUTDOWN), rig.story()
    # an accepted socket is announced by +WIPACCEPT alone (no +WIPREADY)
    assert not [line for line in at.transcript if line in ("+WIPREADY: 2,5", "+WIPREADY: 2,6")], at.story()
    assert seen == {"A": 5, "B": 6}  # accepted in the order they connected
    replies = agent.result(job, 40)
    assert isinstance(replies, dict)
    for name, payload in payloads.items():
        assert bytes.fromhex(replies[name]) == b"reply-" + name.encode() + b":" + payload[::-1], name
    at.wait_for(r"\+WIPPEERCLOSE: 2,5", 20)
    at.wait_for(r"\+WIPPEERCLOSE: 2,6", 20)
    at.command("AT+WIPCLOSE=2,5")
    at.command("AT+WIPCLOSE=2,6")
    at.command("AT+WIPCLOSE=3,1")


def test_udp_both_ways(rig: PppRig) -> None:
    at, agent = rig.at, rig.agent
    assert agent is not None
    # a connected socket to the guest's echo
    at.command(f'AT+WIPCREATE=1,1,7200,"{GUEST}",{UDP_ECHO_PORT}')
    at.wait_for(r"\+WIPREADY: 1,1", 10)
    at.command("AT+WIPDATA=1,1,1", expect="CONNECT")
    datagrams = [bytes(range(256)) * 4, all_byte_values(1400, seed=14), b"\x10\x03\x10"]
    for datagram in datagrams:
        at.send(dle_escape(datagram) + ETX_B)
        assert at.read_datagrams(1, 20) == [datagram], rig.story()
    assert at.escape() == b"", rig.story()
    at.command("AT+WIPCLOSE=1,1")
    agent.wait_log(rf"^udp-echo {MODULE}:7200 1400 octets$", 10)
    # a listening socket answers a guest client
    at.command("AT+WIPCREATE=1,2,7201")
    at.wait_for(r"\+WIPREADY: 1,2", 10)
    question = all_byte_values(900, seed=15)
    job = agent.submit(udp_exchange_job(MODULE, 7201, 7301, question))
    at.wait_for(rf'\+WIPDATA: 1,2,{len(question)},"{GUEST}",7301', 30)
    at.command("AT+WIPDATA=1,2,1", expect="CONNECT")
    assert at.read_datagrams(1, 20) == [question], rig.story()
    answer = question[::-1]
    at.send(dle_escape(answer) + ETX_B)
    result = agent.result(job, 40)
    assert isinstance(result, dict)
    assert bytes.fromhex(result["reply"]) == answer and result["peer"] == [MODULE, 7201], result
    assert at.escape() == b"", rig.story()
    at.command("AT+WIPCLOSE=1,2")


def test_ping_the_guest(rig: PppRig) -> None:
    rig.at.command(f'AT+WIPPING="{GUEST}",3,500')
    replies = rig.at.wait_all(r"\+WIPPING: (\d+),(\d+),(\d+)", 3, 20)
    assert [(m[1], m[2]) for m in replies] == [("0", "0"), ("0", "1"), ("0", "2")], rig.story()


# ---------------------------------------------------------------------------- stopping


def test_bearer_stop_terminates_pppd(tmp_path: Path) -> None:
    skip_unless_uml()
    res = _Resources()
    try:
        rig = bring_up(res, tmp_path, with_agent=False, name="at-stop")
        rig.at.command("AT+WIPBR=5,2")
        rig.guest.wait_for_log(r'rcvd \[LCP TermReq id=0x\w+ "User request"\]', 15)
        rig.guest.wait(20)  # pppd exits (the guest's init then powers off)
        assert "Connection terminated" in rig.guest.log(), rig.guest.log_tail()
        assert rig.guest.ip_down() is not None, rig.guest.log_tail()
        assert rig.at.command("AT+WIPBR?").lines == ["+WIPBR: 2,0"], rig.story()
        # a stopped bearer can be closed
        rig.at.command("AT+WIPBR=0,2")
        assert rig.at.command("AT+WIPBR?").lines == []
    finally:
        res.close()


def test_wrong_pap_password_gives_814(tmp_path: Path) -> None:
    skip_unless_uml()
    res = _Resources()
    try:
        boot_guest(res, tmp_path, name="at-badpap", password="wrong")
        assert res.at is not None and res.guest is not None
        res.at.wait_for(r"\+CME ERROR: 814", 40)
        res.at.wait_for(r"\+WIPBR: 2,0", 10)
        assert not res.at.lines_matching(r"\+WIPBR: 2,1.*"), res.at.story()
        assert res.guest.wait(20) == 19  # pppd: "authentication failed"
        assert res.at.command("AT+WIPBR?").lines == ["+WIPBR: 2,0"]
    finally:
        res.close()


def test_pppd_hangup_gives_816(tmp_path: Path) -> None:
    skip_unless_uml()
    res = _Resources()
    try:
        # the guest stops pppd (SIGTERM: LCP Terminate-Request) as soon as cmd ends
        boot_guest(res, tmp_path, name="at-hangup", cmd="sleep 1")
        assert res.at is not None and res.guest is not None
        res.at.wait_for(BEARER_UP, 40)
        res.at.wait_for(r"\+CME ERROR: 816", 30)
        res.at.wait_for(r"\+WIPBR: 2,0", 10)
        res.guest.wait(20)
        assert "Terminating on signal" in res.guest.log(), res.guest.log_tail()
        assert res.at.command("AT+WIPBR?").lines == ["+WIPBR: 2,0"]
    finally:
        res.close()
