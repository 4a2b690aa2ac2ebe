"""wipstack as a router between a real pppd (UML guest) and a host behind a TUN device.

Topology (all TEST-NET)::

    UML guest (pppd, Linux)  --PPP--  wipstack (forwarding)  --TUN--  netns host (Linux)
    192.0.2.2                 192.0.2.1          198.51.100.1          198.51.100.2

The guest pings wipstack itself over PPP, then the host in the namespace through wipstack,
and exchanges UDP with it; the namespace host pings the guest and talks UDP back to it.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from tests.harness.netns import NetNamespace, skip_unless_netns_tun
from tests.harness.uml import PppdGuest, skip_unless_uml
from wipstack.drivers.link import SocketLink
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import PppPort, TunPort
from wipstack.drivers.tun import TunDevice
from wipstack.net import Interface, Stack, StackConfig
from wipstack.net.icmp import PingConfig
from wipstack.ppp.config import CpConfig, IpcpConfig, PppConfig
from wipstack.ppp.session import PppSession
from wipstack.wire.ipv4 import address

pytestmark = pytest.mark.interop

PPP_LOCAL = "192.0.2.1"  # wipstack on the PPP link
GUEST = "192.0.2.2"  # pppd's end
TUN_LOCAL = "198.51.100.1"  # wipstack on the TUN link
HOST = "198.51.100.2"  # the Linux host in the namespace
UDP_PORT = 9999
FAST = ["lcp-restart", "1", "ipcp-restart", "1"]

# runs in the guest once IPCP is up (bash; the guest's / is the host's, so python3 is there)
GUEST_CMD = textwrap.dedent(
    f"""\
    set -x
    busybox ping -c 3 -W 2 {PPP_LOCAL}; echo "ping-wipstack rc=$?"
    busybox ping -c 3 -W 2 -s 3000 {HOST}; echo "ping-host rc=$?"
    python3 - <<'EOF'
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    ok = 0
    for i in range(20):
        data = bytes([i]) * (100 + i * 150)
        # like any UDP application, retry: Linux sets DF (path MTU discovery), so the first
        # datagram larger than the PPP MRU is answered with ICMP fragmentation-needed
        for attempt in range(3):
            s.sendto(data, ("{HOST}", {UDP_PORT}))
            try:
                reply, _ = s.recvfrom(65535)
                ok += reply == data
                break
            except OSError as exc:
                print("udp-to-host retry", i, len(data), exc)
    print("udp-to-host ok=%d" % ok)
    EOF
    # serve UDP echo for the namespace host until the test says it is done
    python3 - <<'EOF' &
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", {UDP_PORT}))
    s.settimeout(0.5)
    while True:
        try:
            data, peer = s.recvfrom(65535)
        except OSError:
            continue
        s.sendto(data, peer)
    EOF
    echo "guest-udp-echo-ready"
    for i in $(seq 600); do [ -e /run/test-done ] && break; sleep 0.1; done
    """
)

HOST_UDP_ECHO = textwrap.dedent(
    f"""\
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("{HOST}", {UDP_PORT}))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)
    """
)

HOST_UDP_CLIENT = textwrap.dedent(
    f"""\
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    ok = 0
    for i in range(20):
        data = bytes([255 - i]) * (50 + i * 200)
        for attempt in range(3):  # retried: see the guest's client (path MTU discovery)
            s.sendto(data, ("{GUEST}", {UDP_PORT}))
            try:
                reply, _ = s.recvfrom(65535)
                ok += reply == data
                break
            except OSError as exc:
                print("retry", i, exc)
    print("ok", ok)
    """
)


@pytest.fixture
def router() -> Iterator[tuple[PppdGuest, NetNamespace, NetLoop, PppPort]]:
    skip_unless_uml()
    skip_unless_netns_tun()
    ns = NetNamespace()
    options = ["nodetach", "debug", "local", "noauth", f"{GUEST}:{PPP_LOCAL}", "defaultroute", "mru", "296", *FAST]
    guest = PppdGuest(options, cmd=GUEST_CMD, name="router")
    loop: NetLoop | None = None
    try:
        ns.ip("link", "set", "lo", "up")
        device = TunDevice(mtu=1500)
        device.move_to_netns(ns.name)
        device.configure_kernel_side(TUN_LOCAL, HOST, netns=ns.name)
        for network in ("192.0.2.0/24", "203.0.113.0/24"):  # both through wipstack
            ns.ip("route", "add", network, "dev", device.name)
        stack = Stack(random.Random(11), StackConfig(forwarding=True))
        loop = NetLoop(stack)
        loop.add_port(TunPort(stack, Interface(device.name, address(TUN_LOCAL), peer=address(HOST)), device))
        sock = guest.start()
        config = PppConfig(
            ipcp=IpcpConfig(local_address=IPv4Address(PPP_LOCAL), peer_address=IPv4Address(GUEST)),
            cp=CpConfig(restart_interval=1.0),
        )
        port = PppPort(stack, PppSession(config, random.Random(12)), SocketLink(sock))
        loop.add_port(port)
        port.open()
        loop.start()
        yield guest, ns, loop, port
    finally:
        if loop is not None:
            loop.close()
        guest.close(grace=0)
        ns.close()


def wait_cmd_output(guest: PppdGuest, text: str, timeout: float) -> str:
    """Poll the guest's cmd.out until ``text`` shows up (or the command ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = guest.cmd_output()
        if text in out or guest.cmd_status() is not None:
            return out
        time.sleep(0.2)
    return guest.cmd_output()


def test_guest_and_namespace_host_reach_each_other_through_wipstack(
    router: tuple[PppdGuest, NetNamespace, NetLoop, PppPort],
) -> None:
    guest, ns, loop, port = router
    echo = ns.popen(sys.executable, "-c", HOST_UDP_ECHO, stdout=subprocess.PIPE)
    assert echo.stdout is not None and echo.stdout.readline().strip() == b"ready"
    guest.wait_ip_up(30)
    out = wait_cmd_output(guest, "guest-udp-echo-ready", 90)
    # the guest pinged wipstack itself (over PPP) and the namespace host (forwarded, fragmented)
    assert "ping-wipstack rc=0" in out, out
    assert "ping-host rc=0" in out, out
    assert "udp-to-host ok=20" in out, out
    # the namespace host reaches the guest back: ICMP and UDP through wipstack
    ping = ns.run("busybox", "ping", "-c", "3", "-W", "2", GUEST, check=False)
    assert ping.returncode == 0, ping.stdout.decode() + ping.stderr.decode()
    client = ns.run(sys.executable, "-c", HOST_UDP_CLIENT, check=False, timeout=90)
    assert b"ok 20" in client.stdout, client.stdout.decode() + client.stderr.decode()
    # wipstack pings both ends itself (before the guest's command ends, which stops pppd)
    for target in (GUEST, HOST):
        session = loop.call(lambda t=target: loop.stack.ping(t, PingConfig(count=3, interval=0.05), time.monotonic()))
        deadline = time.monotonic() + 10
        while not loop.call(lambda s=session: s.done) and time.monotonic() < deadline:
            time.sleep(0.05)
        results = loop.call(lambda s=session: list(s.results))
        assert all(r is not None and r.rtt is not None for r in results), (target, results)
    (guest.run_dir / "test-done").touch()
    counters = loop.call(loop.stack.counters)
    assert counters["forwarded"] >= 3 * 2 + 20 * 2, counters
    # Linux's path MTU discovery met wipstack's MRU-296 link: fragmentation-needed was sent
    assert counters.get("drop_needs_fragmentation", 0) >= 1, counters
    assert counters["fragments_out"] > 0, counters  # the host's 1500-octet fragments re-fragmented to MRU 296


def test_forwarding_errors_reach_the_guest(router: tuple[PppdGuest, NetNamespace, NetLoop, PppPort]) -> None:
    guest, ns, loop, port = router
    guest.wait_ip_up(30)
    # the namespace routes 203.0.113.0/24 to wipstack, which has no route for it: net unreachable
    unreachable = ns.run("busybox", "ping", "-c", "1", "-W", "2", "203.0.113.77", check=False)
    assert unreachable.returncode != 0
    counters = loop.call(loop.stack.counters)
    assert counters.get("drop_no_route", 0) >= 1, counters
    assert counters["icmp_errors_out"] >= 1, counters
