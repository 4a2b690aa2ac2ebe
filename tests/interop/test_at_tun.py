"""The virtual module (``python -m wipstack modem``) driven by AT commands, over its TUN bearer.

The test makes a network namespace; the modem runs with ``--tun-netns`` so that ``AT+WIPBR=4,4,0``
(or GPRS with ``--gprs-over-tun``) creates a TUN device whose kernel side lives there::

    UART1 (this test, AT commands)  ->  wipstack modem  192.0.2.2  <-- tun -->  192.0.2.1  Linux in the netns

Linux programs in the namespace (:data:`~tests.interop.at_helpers.AGENT_SCRIPT`: a TCP echo
server, a UDP echo server and a job runner for clients) are the sockets' peers.  Covered:

* a TCP client socket in continuous data mode: all 256 octet values both ways (DLE-escaped),
  ETX -> ``SHUTDOWN``, the kernel's FIN -> ``SHUTDOWN``, ``+++`` -> ``OK``, ``+WIPPEERCLOSE``;
* a TCP server socket with two kernel clients (``+WIPACCEPT: 1,5`` / ``1,6``), data both ways;
* UDP both ways (a connected socket to a kernel echo, a listening socket answering a kernel client);
* ``+WIPPING`` to the kernel and to an unreachable TEST-NET address;
* GPRS over TUN (``--gprs-over-tun``, bearer 6, APN option 11) with a TCP exchange;
* the flash store survives a restart, and a ``kill -9`` while storing never corrupts it.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.netns import NetNamespace
from tests.harness.netns_fixtures import netns  # noqa: F401
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
    running_modem,
    start_modem,
    tcp_clients_job,
    udp_exchange_job,
)

pytestmark = pytest.mark.interop

MODULE = "192.0.2.2"  # the module's end of the TUN link (option 15)
KERNEL = "192.0.2.1"  # the kernel's end, inside the test namespace (option 16)
UNREACHABLE = "203.0.113.77"  # TEST-NET-3: routed to the kernel, which does not forward it
TCP_ECHO_PORT = 7007
UDP_ECHO_PORT = 7008


@dataclass
class TunRig:
    """A modem whose network bearer is up, UART1 open, and the kernel-side agent listening."""

    ns: NetNamespace
    modem: ModemProcess
    at: AtClient
    agent: PeerAgent
    bid: int
    agent_proc: subprocess.Popen[bytes]

    def story(self) -> str:
        return f"{self.at.story()}\n--- modem stderr:\n{self.modem.stderr}\n--- kernel agent log:\n{self.agent.log()}"


def start_network_bearer(at: AtClient, bid: int, *, apn: str | None = None) -> None:
    at.command("AT+CMEE=1")
    at.command("AT+WIPCFG=1")
    at.command(f"AT+WIPBR=1,{bid}")
    if apn is not None:
        at.command(f'AT+WIPBR=2,{bid},11,"{apn}"')
    at.command(f'AT+WIPBR=2,{bid},15,"{MODULE}"')
    at.command(f'AT+WIPBR=2,{bid},16,"{KERNEL}"')
    at.command(f"AT+WIPBR=4,{bid},0", timeout=20)


RigFactory = Callable[..., TunRig]


@pytest.fixture
def tun_rig(netns: NetNamespace, tmp_path: Path) -> Iterator[RigFactory]:  # noqa: F811
    """``tun_rig(gprs=False)``: start the modem in ``netns``, its bearer (4, or 6 over TUN), the agent."""
    cleanups: list[Callable[[], object]] = []

    def make(gprs: bool = False) -> TunRig:
        args = ["--tun-netns", netns.name, "--seed", "7"] + (["--gprs-over-tun"] if gprs else [])
        modem_dir = tmp_path / "modem"
        modem_dir.mkdir()
        modem = start_modem(modem_dir, *args)
        cleanups.append(modem.stop)
        at = modem.client(1)
        cleanups.append(at.close)
        bid = 6 if gprs else 4
        start_network_bearer(at, bid, apn="internet.test" if gprs else None)
        addr = netns.run("ip", "-o", "-4", "addr", "show").stdout.decode()
        assert f"inet {KERNEL} peer {MODULE}/32" in addr, addr + "\n" + modem.stderr
        peer_dir = tmp_path / "peer"
        peer_dir.mkdir()
        proc = netns.popen(
            sys.executable, "-c", AGENT_SCRIPT, KERNEL, str(peer_dir), str(TCP_ECHO_PORT), str(UDP_ECHO_PORT)
        )
        agent = PeerAgent(peer_dir)
        cleanups.append(agent.stop)
        agent.wait_ready(20, alive=lambda: proc.poll() is None)
        return TunRig(netns, modem, at, agent, bid, proc)

    try:
        yield make
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def tcp_echo_round_trip(rig: TunRig, idx: int, data: bytes) -> None:
    """A TCP client socket to the kernel's echo: ``data`` both ways in continuous mode, then the close."""
    at = rig.at
    at.command(f'AT+WIPCREATE=2,{idx},"{KERNEL}",{TCP_ECHO_PORT}')
    at.wait_for(rf"\+WIPREADY: 2,{idx}", 15)
    at.command(f"AT+WIPDATA=2,{idx},1", expect="CONNECT")
    at.send(dle_escape(data))
    echoed = at.read_unescaped(len(data), timeout=60)
    assert echoed == data, f"echo differs (first difference at {_first_difference(echoed, data)})\n{rig.story()}"
    at.send(ETX_B)  # end of data: the module half-closes
    assert at.read_data_until(SHUTDOWN, 15) == b"", rig.story()
    # the echo server sees EOF and closes: the kernel's FIN shows as a second SHUTDOWN
    assert at.read_data_until(SHUTDOWN, 15) == b"", rig.story()
    assert at.escape() == b"", rig.story()
    at.wait_for(rf"\+WIPPEERCLOSE: 2,{idx}", 10)
    at.command(f"AT+WIPCLOSE=2,{idx}")
    rig.agent.wait_log(rf"^tcp-echo {MODULE}:\d+ {len(data)} octets sha256={hashlib.sha256(data).hexdigest()}$", 10)


def _first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


# ---------------------------------------------------------------------------- network bearer (4)


def test_tcp_client_data_mode_all_octets_both_ways(tun_rig: RigFactory) -> None:
    rig = tun_rig()
    assert rig.at.command("AT+WIPBR?").lines == ["+WIPBR: 4,1"]
    assert rig.at.command("AT+WIPBR=3,4,15").lines == [f'+WIPBR: 4,15,"{MODULE}"']
    tcp_echo_round_trip(rig, 1, all_byte_values(65536, seed=1))
    # the bearer stops cleanly: the TUN device leaves the namespace
    rig.at.command("AT+WIPBR=5,4")
    rig.at.command("AT+WIPBR=0,4")
    addr = rig.ns.run("ip", "-o", "-4", "addr", "show").stdout.decode()
    assert KERNEL not in addr, addr


def test_tcp_server_accepts_two_kernel_clients(tun_rig: RigFactory) -> None:
    rig = tun_rig()
    at = rig.at
    port = 7100
    at.command(f"AT+WIPCREATE=3,1,{port},5,6")
    payloads = {"A": all_byte_values(600, seed=2), "B": all_byte_values(900, seed=3)}
    job = rig.agent.submit(tcp_clients_job(MODULE, port, payloads))
    at.wait_for(r"\+WIPACCEPT: 1,5", 20)
    at.wait_for(r"\+WIPACCEPT: 1,6", 20)
    seen = {}
    for idx in (5, 6):
        at.wait_for(rf"\+WIPDATA: 2,{idx},\d+", 20)
        at.command(f"AT+WIPDATA=2,{idx},1", expect="CONNECT")
        head = at.read_unescaped(2, 20)
        name = head[:1].decode()
        assert head[1:] == b":" and name in payloads and name not in seen, (head, rig.story())
        body = at.read_unescaped(len(payloads[name]), 20)
        assert body == payloads[name], rig.story()
        seen[name] = idx
        at.send(dle_escape(b"reply-" + name.encode() + b":" + payloads[name][::-1]))
        # the clients close once both have their replies: the last one's FIN may show as SHUTDOWN
        assert at.escape() in (b"", SHUTDOWN), rig.story()
    # an accepted socket is announced by +WIPACCEPT alone (no +WIPREADY)
    assert not [line for line in at.transcript if line in ("+WIPREADY: 2,5", "+WIPREADY: 2,6")], at.story()
    assert seen == {"A": 5, "B": 6}  # accepted in connection order
    replies = rig.agent.result(job, 30)
    assert isinstance(replies, dict)
    for name, payload in payloads.items():
        assert bytes.fromhex(replies[name]) == b"reply-" + name.encode() + b":" + payload[::-1], name
    at.wait_for(r"\+WIPPEERCLOSE: 2,5", 15)
    at.wait_for(r"\+WIPPEERCLOSE: 2,6", 15)
    at.command("AT+WIPCLOSE=2,5")
    at.command("AT+WIPCLOSE=2,6")
    at.command("AT+WIPCLOSE=3,1")


def test_udp_both_ways(tun_rig: RigFactory) -> None:
    rig = tun_rig()
    at = rig.at
    # a connected socket to the kernel's echo: datagrams out, the same datagrams back
    at.command(f'AT+WIPCREATE=1,1,7200,"{KERNEL}",{UDP_ECHO_PORT}')
    at.wait_for(r"\+WIPREADY: 1,1", 10)
    at.command("AT+WIPDATA=1,1,1", expect="CONNECT")
    datagrams = [bytes(range(256)) * 4, all_byte_values(1400, seed=4), b"\x03\x10\x03"]
    for datagram in datagrams:
        at.send(dle_escape(datagram) + ETX_B)
        assert at.read_datagrams(1, 15) == [datagram], rig.story()
    assert at.escape() == b"", rig.story()
    at.command("AT+WIPCLOSE=1,1")
    rig.agent.wait_log(rf"^udp-echo {MODULE}:7200 1400 octets$", 5)
    # a listening socket: a kernel client's datagram shows as +WIPDATA; the answer goes back to it
    at.command("AT+WIPCREATE=1,2,7201")
    at.wait_for(r"\+WIPREADY: 1,2", 10)
    question = all_byte_values(700, seed=5)
    job = rig.agent.submit(udp_exchange_job(MODULE, 7201, 7301, question))
    at.wait_for(rf'\+WIPDATA: 1,2,{len(question)},"{KERNEL}",7301', 20)
    at.command("AT+WIPDATA=1,2,1", expect="CONNECT")
    assert at.read_datagrams(1, 15) == [question], rig.story()
    answer = question[::-1] + b"\x10\x03"
    at.send(dle_escape(answer) + ETX_B)
    result = rig.agent.result(job, 30)
    assert isinstance(result, dict)
    assert bytes.fromhex(result["reply"]) == answer and result["peer"] == [MODULE, 7201], result
    assert at.escape() == b"", rig.story()
    at.command("AT+WIPCLOSE=1,2")


def test_ping_kernel_and_unreachable(tun_rig: RigFactory) -> None:
    rig = tun_rig()
    at = rig.at
    at.command(f'AT+WIPPING="{KERNEL}",3,500')
    replies = at.wait_all(r"\+WIPPING: (\d+),(\d+),(\d+)", 3, 15)
    assert [(m[1], m[2]) for m in replies] == [("0", "0"), ("0", "1"), ("0", "2")], rig.story()
    at.command(f'AT+WIPPING="{UNREACHABLE}",2,300,500')
    timeouts = at.wait_all(r"\+WIPPING: (\d+),(\d+),(\d+)", 2, 15)
    assert [(m[1], m[2], m[3]) for m in timeouts] == [("1", "0", "500"), ("1", "1", "500")], rig.story()


def test_tcp_connect_refused_reports_842_and_the_module_lives_on(tun_rig: RigFactory) -> None:
    """A refused connect once crashed the modem process (a TCP callback clearing itself)."""
    rig = tun_rig()
    at = rig.at
    at.command(f'AT+WIPCREATE=2,1,"{KERNEL}",7399')  # nothing listens there: the kernel answers RST
    try:
        at.wait_for(r"\+CME ERROR: 842", 15)
    except AtError as exc:
        with contextlib.suppress(subprocess.TimeoutExpired):
            rig.modem.proc.wait(2)
        time.sleep(0.2)  # the stderr reader catches the last lines
        raise AssertionError(
            f"{exc}\n--- modem exit code {rig.modem.proc.poll()}, stderr:\n{rig.modem.stderr}"
        ) from None
    at.command("AT")
    assert rig.modem.proc.poll() is None, rig.modem.stderr
    at.command(f'AT+WIPCREATE=2,1,"{KERNEL}",{TCP_ECHO_PORT}')  # the index is free again
    at.wait_for(r"\+WIPREADY: 2,1", 15)
    at.command("AT+WIPCLOSE=2,1")


#: A kernel client whose handshake ACK rides on its first data segment (a client-side
#: TCP_DEFER_ACCEPT makes Linux delay the third ACK until data is written): so the module's
#: server accepts a connection that already holds 100 octets, all of them in one arrival.
DEFERRED_ACK_CLIENT = r"""
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(b"x" * 100)
time.sleep(3)
s.close()
"""


def test_accepted_connection_with_data_gives_one_wipdata_urc(tun_rig: RigFactory) -> None:
    rig = tun_rig()
    at = rig.at
    at.command("AT+WIPCREATE=3,1,7110,1,8")
    client = rig.ns.popen(sys.executable, "-c", DEFERRED_ACK_CLIENT, MODULE, "7110")
    at.wait_for(r"\+WIPACCEPT: 1,1", 15)
    at.wait_for(r"\+WIPPEERCLOSE: 2,1", 15)  # the client closes after 3 s: every URC of it is in
    assert client.wait(10) == 0
    lines = [line for line in at.transcript if line.startswith(("+WIPDATA: 2,1,", "+WIPREADY: 2,1"))]
    assert [line for line in lines if line.startswith("+WIPDATA")] == ["+WIPDATA: 2,1,100"], lines
    at.command("AT+WIPDATA=2,1,1", expect="CONNECT")
    assert at.read_unescaped(100, 10) == b"x" * 100
    assert at.read_data_until(SHUTDOWN, 10) == b""
    assert at.escape() == b""
    at.command("AT+WIPCLOSE=2,1")
    at.command("AT+WIPCLOSE=3,1")


# ---------------------------------------------------------------------------- GPRS over TUN (6)


def test_gprs_over_tun_tcp_exchange(tun_rig: RigFactory) -> None:
    rig = tun_rig(gprs=True)
    assert rig.bid == 6
    assert rig.at.command("AT+WIPBR?").lines == ["+WIPBR: 6,1"]
    assert rig.at.command("AT+WIPBR=3,6,11").lines == ['+WIPBR: 6,11,"internet.test"']
    tcp_echo_round_trip(rig, 2, all_byte_values(4096, seed=6))
    rig.at.command("AT+WIPBR=5,6")


# ---------------------------------------------------------------------------- the flash store


def read_ttl(at: AtClient) -> int:
    lines = at.command("AT+WIPCFG?").lines
    ttl = [line for line in lines if line.startswith("+WIPCFG: 0,")]
    assert len(ttl) == 1, lines
    return int(ttl[0].split(",")[1])


def test_flash_store_survives_a_restart(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    with running_modem(flash=flash, directory=tmp_path) as modem, modem.client(1) as at:
        at.command("AT+CMEE=1")
        assert read_ttl(at) == 64
        at.command("AT+WIPCFG=2,0,32")
        at.command("AT+WIPCFG=4,1")
    assert flash.exists()
    with running_modem(flash=flash, directory=tmp_path) as modem, modem.client(1) as at:
        at.command("AT")
        assert read_ttl(at) == 32
        assert not [line for line in at.transcript if line.startswith("+CME ERROR")], at.story()


def test_kill_9_while_storing_never_corrupts_the_store(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    rng = random.Random(1234)
    written: set[int] = set()
    with running_modem(flash=flash, directory=tmp_path) as modem, modem.client(1) as at:
        at.command("AT+CMEE=1")
        at.command("AT+WIPCFG=2,0,100")
        at.command("AT+WIPCFG=4,1")
        written.add(100)
    stores_seen = 0
    for round_ in range(10):
        modem = start_modem(tmp_path, flash=flash)
        try:
            at = modem.client(1)
            try:
                at.command("AT")
                assert not [line for line in at.transcript if "+CME ERROR" in line], at.story()
                assert read_ttl(at) in written, (read_ttl(at), sorted(written))
                at.command("AT+CMEE=1")
                errors: list[str] = []
                done: list[int] = []

                def store_loop(
                    at: AtClient = at, base: int = 1 + round_ * 20, errors: list[str] = errors, done: list[int] = done
                ) -> None:
                    n = 0
                    try:
                        while True:
                            value = base + n % 20
                            written.add(value)
                            at.command(f"AT+WIPCFG=2,0,{value}", timeout=5)
                            at.command("AT+WIPCFG=4,1", timeout=5)
                            done.append(value)
                            n += 1
                    except (AtError, OSError) as exc:  # the modem died under us (or answered wrongly)
                        errors.append(str(exc))

                thread = threading.Thread(target=store_loop, daemon=True)
                thread.start()
                time.sleep(rng.uniform(0.05, 0.6))
                modem.kill9()  # at a random moment of the store loop
                thread.join(15)
                assert not thread.is_alive()
                # the loop ends when the line goes away, never on a wrong answer (+CME ERROR: 820 ...)
                assert len(errors) == 1 and ", expected OK" not in errors[0], errors
                stores_seen += len(done)
            finally:
                at.close()
        finally:
            modem.kill9()
    # a last start after the last kill
    with running_modem(flash=flash, directory=tmp_path) as modem, modem.client(1) as at:
        at.command("AT")
        assert not [line for line in at.transcript if "+CME ERROR" in line], at.story()
        assert read_ttl(at) in written
    assert stores_seen > 0  # the loop did store (the kills did not all land before the first store)
