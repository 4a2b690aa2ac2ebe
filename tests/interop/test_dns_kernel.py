"""wipstack's DNS resolver against a real DNS server (Debian's dnsmasq) in a test namespace.

wipstack (192.0.2.2) reaches the namespace over TUN; dnsmasq listens on the kernel's end
(192.0.2.1) and is authoritative for ``example`` from a hosts file plus one CNAME.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.netns import REQUIRE_ENV, NetNamespace, skip_unless_netns_tun
from wipstack.dns import DnsError, LookupResult, ResolverConfig
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import TunPort
from wipstack.drivers.tun import TunDevice
from wipstack.net import Interface, Stack
from wipstack.net.dns_client import DnsClient
from wipstack.wire.ipv4 import address

pytestmark = pytest.mark.interop

WIPSTACK = "192.0.2.2"
KERNEL = "192.0.2.1"
SILENT = "192.0.2.99"  # routed to the namespace, where nothing answers


def _dnsmasq() -> str:
    path = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if Path(p).exists()), None
    )
    if path is None:
        reason = "dnsmasq is not installed (Debian package dnsmasq-base)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def dns_setup(tmp_path: Path) -> Iterator[tuple[NetNamespace, NetLoop]]:
    skip_unless_netns_tun()
    dnsmasq = _dnsmasq()
    hosts = tmp_path / "hosts"
    hosts.write_text("198.51.100.10 host.example\n198.51.100.11 host.example\n203.0.113.5 other.example\n")
    ns = NetNamespace()
    loop: NetLoop | None = None
    try:
        ns.ip("link", "set", "lo", "up")
        device = TunDevice(mtu=1500)
        device.move_to_netns(ns.name)
        device.configure_kernel_side(WIPSTACK, KERNEL, netns=ns.name)
        server = ns.popen(
            dnsmasq, "--no-daemon", "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}",
            "--cname=alias.example,host.example", "--cname=chain.example,alias.example",
            "--local=/example/", "--local-ttl=300", f"--listen-address={KERNEL}", "--bind-interfaces",
            f"--pid-file={tmp_path / 'dnsmasq.pid'}", "--user=root", "--log-queries",
        )  # fmt: skip
        stack = Stack(random.Random(5))
        stack.routes.add_default(device.name)
        loop = NetLoop(stack)
        loop.add_port(TunPort(stack, Interface(device.name, address(WIPSTACK), peer=address(KERNEL)), device))
        loop.start()
        # dnsmasq needs a moment to bind its socket
        deadline = time.monotonic() + 10
        while f"{KERNEL}:53 " not in ns.run("ss", "-uln").stdout.decode():
            assert server.poll() is None and time.monotonic() < deadline, "dnsmasq did not start"
            time.sleep(0.05)
        yield ns, loop
    finally:
        if loop is not None:
            loop.close()
        ns.close()


def resolve(loop: NetLoop, name: str, timeout: float = 20.0) -> LookupResult:
    """Resolve ``name`` on the loop's stack and wait for the result."""
    dns: DnsClient = loop.stack.dns
    handle = loop.call(lambda: dns.resolve(name, time.monotonic()))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = loop.call(lambda: dns.result(handle))
        if result is not None:
            return result
        time.sleep(0.01)
    raise AssertionError(f"no result for {name} in {timeout} s")


def test_a_records_cname_chain_and_nxdomain(dns_setup: tuple[NetNamespace, NetLoop]) -> None:
    ns, loop = dns_setup
    loop.call(lambda: setattr(loop.stack.dns, "servers", [address(KERNEL)]))
    found = resolve(loop, "host.example")
    assert found.error is None
    assert sorted(found.addresses) == sorted([address("198.51.100.10"), address("198.51.100.11")])
    alias = resolve(loop, "chain.example")  # chain -> alias -> host
    assert alias.error is None and alias.canonical_name == "host.example"
    assert sorted(alias.addresses) == sorted(found.addresses)
    missing = resolve(loop, "nope.example")
    assert missing.error is DnsError.NXDOMAIN
    dotted = resolve(loop, "203.0.113.9")
    assert dotted.addresses == (address("203.0.113.9"),)
    # a second lookup is served from the cache: no new query reaches the server
    sent_before = loop.call(lambda: loop.stack.counters()["datagrams_out"])
    again = resolve(loop, "host.example")
    assert again.addresses == found.addresses
    assert loop.call(lambda: loop.stack.counters()["datagrams_out"]) == sent_before


def test_silent_first_server_then_the_live_one(dns_setup: tuple[NetNamespace, NetLoop]) -> None:
    ns, loop = dns_setup
    stack = loop.stack

    def configure() -> None:
        stack.dns = DnsClient(stack, ResolverConfig(timeout=0.3, attempts=2))
        stack.dns.servers = [address(SILENT), address(KERNEL)]

    loop.call(configure)
    found = resolve(loop, "other.example")
    assert found.error is None and found.addresses == (address("203.0.113.5"),)

    def only_silent() -> None:
        stack.dns = DnsClient(stack, ResolverConfig(timeout=0.2, attempts=2))
        stack.dns.servers = [address(SILENT)]

    loop.call(only_silent)
    started = time.monotonic()
    lost = resolve(loop, "other.example")
    assert lost.error is DnsError.TIMEOUT
    assert time.monotonic() - started < 5
