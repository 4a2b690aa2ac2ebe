"""Self-tests of the TUN driver (wipstack/drivers/tun.py) and the namespace harness (tests/harness/netns.py).

The kernel in a throw-away network namespace pings across a TUN link; the echo
request is read from the fd and the echo reply is built by hand here, without any
other wipstack code.  Only TEST-NET-1 addresses (192.0.2.0/24) are used.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.netns import (
    REQUIRE_ENV,
    NetNamespace,
    list_netns,
    ping_command,
    skip_unless_netns_tun,
)
from tests.harness.netns_fixtures import (  # noqa: F401
    KERNEL_ADDRESS,
    WIPSTACK_ADDRESS,
    netns,
    tun_in_netns,
)
from wipstack.drivers.tun import TunDevice

pytestmark = pytest.mark.interop

IPPROTO_ICMP = 1
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8


# --------------------------------------------------------------------------
# hand-made IPv4/ICMP (deliberately independent of wipstack's own code)
# --------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def addr(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def is_echo_request(packet: bytes) -> bool:
    return (
        len(packet) >= 28
        and packet[0] >> 4 == 4
        and packet[9] == IPPROTO_ICMP
        and packet[(packet[0] & 0x0F) * 4] == ICMP_ECHO_REQUEST
    )


def echo_reply(request: bytes) -> bytes:
    """The echo reply to an IPv4 ICMP echo request: addresses swapped, type 0, both checksums redone."""
    ihl = (request[0] & 0x0F) * 4
    total_length = struct.unpack_from("!H", request, 2)[0]
    header = bytearray(request[:ihl])
    icmp = bytearray(request[ihl:total_length])
    header[12:16], header[16:20] = request[16:20], request[12:16]
    header[8] = 64  # TTL
    header[10:12] = b"\0\0"
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    icmp[0] = ICMP_ECHO_REPLY
    icmp[2:4] = b"\0\0"
    icmp[2:4] = struct.pack("!H", checksum(bytes(icmp)))
    return bytes(header + icmp)


def echo_request(src: str, dst: str, payload: bytes = b"wipstack") -> bytes:
    icmp = bytearray(struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, 0x1234, 1) + payload)
    icmp[2:4] = struct.pack("!H", checksum(bytes(icmp)))
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, 1, 0, addr(src), addr(dst)))
    header[10:12] = struct.pack("!H", checksum(bytes(header)))
    return bytes(header + icmp)


def read_until(tun: TunDevice, wanted: Callable[[bytes], bool], timeout: float) -> bytes:
    """The first datagram read from tun that satisfies wanted(packet) (others, e.g. IPv6 noise, are skipped)."""
    deadline = time.monotonic() + timeout
    seen: list[bytes] = []
    while (left := deadline - time.monotonic()) > 0:
        select.select([tun.fileno()], [], [], left)
        while (packet := tun.read_packet()) is not None:
            if wanted(packet):
                return packet
            seen.append(packet)
    raise AssertionError(f"no matching packet within {timeout} s; other packets: {[p[:24].hex() for p in seen]}")


def ping_or_skip() -> list[str]:
    ping = ping_command()
    if ping is None:
        reason = "no ping: install iputils-ping (or busybox-static)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    return ping


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def link_exists(name: str, namespace: str | None = None) -> bool:
    argv = ["ip", *(["-n", namespace] if namespace else []), "link", "show", "dev", name]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False).returncode == 0


# --------------------------------------------------------------------------
# (a) the namespace harness
# --------------------------------------------------------------------------


def test_namespace_created_and_deleted_processes_killed() -> None:
    skip_unless_netns_tun()
    ns = NetNamespace()
    try:
        assert ns.name.startswith(f"wipstack-test-{os.getpid()}-")
        assert ns.name in list_netns()
        tracked = ns.popen("sh", "-c", "sleep 60 & exec sleep 61")
        # an untracked process that left the tracked process group: close() must find it by PID
        started = ns.run("sh", "-c", "setsid sleep 62 </dev/null >/dev/null 2>&1 & echo $!")
        escaped = int(started.stdout)
        deadline = time.monotonic() + 5
        while len(ns.pids()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        in_ns = ns.pids()
        assert tracked.pid in in_ns and escaped in in_ns and len(in_ns) == 3, in_ns
        # the namespace is really separate: only loopback in it
        links = ns.run("ip", "-o", "link", "show").stdout.decode()
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    finally:
        ns.close()
    assert ns.closed
    assert ns.name not in list_netns()
    assert tracked.returncode is not None
    for pid in in_ns:
        assert wait_gone(pid), f"process {pid} of the namespace survived close()"
    ns.close()  # idempotent
    with pytest.raises(RuntimeError):
        ns.run("true")


def test_namespace_names_are_unique_and_run_reports_failure() -> None:
    skip_unless_netns_tun()
    with NetNamespace() as first, NetNamespace(prefix="wipstack-other") as second:
        assert first.name != second.name
        assert second.name.startswith("wipstack-other-test-")
        assert first.run("sh", "-c", "exit 3", check=False).returncode == 3
        with pytest.raises(subprocess.CalledProcessError):
            first.run("false")
        assert first.run("cat", input=b"hello").stdout == b"hello"
    assert first.name not in list_netns() and second.name not in list_netns()


def test_netns_fixture_has_loopback_up(netns: NetNamespace) -> None:  # noqa: F811
    out = netns.run("ip", "-o", "link", "show", "lo").stdout.decode()
    assert "UP" in out.split("<", 1)[1].split(">", 1)[0].split(","), out


# --------------------------------------------------------------------------
# (b) the kernel pings wipstack's side of the TUN link
# --------------------------------------------------------------------------


def test_tun_in_netns_is_configured(tun_in_netns: tuple[NetNamespace, TunDevice]) -> None:  # noqa: F811
    ns, tun = tun_in_netns
    assert tun.netns == ns.name
    assert not link_exists(tun.name), "the interface should have left the host namespace"
    shown = ns.run("ip", "-o", "addr", "show", "dev", tun.name).stdout.decode()
    assert f"inet {KERNEL_ADDRESS} peer {WIPSTACK_ADDRESS}/32" in shown, shown
    link = ns.run("ip", "-o", "link", "show", "dev", tun.name).stdout.decode()
    assert "mtu 1500" in link and ",UP" in link, link


@pytest.mark.parametrize("size", [56, 1472])  # 1472 + 8 + 20 = 1500: a datagram as large as the MTU
def test_kernel_ping_answered_over_tun(tun_in_netns: tuple[NetNamespace, TunDevice], size: int) -> None:  # noqa: F811
    ns, tun = tun_in_netns
    ping = ping_or_skip()
    proc = ns.popen(*ping, "-c", "1", "-W", "1", "-s", str(size), WIPSTACK_ADDRESS, stdout=subprocess.PIPE)
    request = read_until(tun, is_echo_request, timeout=5)

    assert request[0] >> 4 == 4  # IPv4
    assert request[9] == IPPROTO_ICMP
    assert request[12:16] == addr(KERNEL_ADDRESS)
    assert request[16:20] == addr(WIPSTACK_ADDRESS)
    ihl = (request[0] & 0x0F) * 4
    assert checksum(request[:ihl]) == 0, "bad IP header checksum from the kernel"
    assert len(request) == struct.unpack_from("!H", request, 2)[0] == 20 + 8 + size
    assert checksum(request[ihl:]) == 0, "bad ICMP checksum from the kernel"

    reply = echo_reply(request)
    assert checksum(reply[:20]) == 0 and checksum(reply[20:]) == 0
    assert tun.write_packet(reply) is True
    assert tun.tx_dropped == 0
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, out.decode(errors="replace")
    assert b"1 packets received" in out or b"1 received" in out, out


# --------------------------------------------------------------------------
# (c) devices disappear
# --------------------------------------------------------------------------


def test_device_gone_after_close(netns: NetNamespace) -> None:  # noqa: F811
    with TunDevice(mtu=1400) as tun:
        name = tun.name
        assert name.startswith("tun")
        assert link_exists(name)
        tun.move_to_netns(netns.name)
        assert link_exists(name, netns.name) and not link_exists(name)
        tun.configure_kernel_side(WIPSTACK_ADDRESS, KERNEL_ADDRESS)
        tun.configure_kernel_side(WIPSTACK_ADDRESS, KERNEL_ADDRESS)  # idempotent
        assert "mtu 1400" in netns.run("ip", "link", "show", "dev", name).stdout.decode()
    assert tun.closed
    deadline = time.monotonic() + 5
    while link_exists(name, netns.name) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not link_exists(name, netns.name), "the TUN interface outlived its fd"
    assert not link_exists(name)
    tun.close()  # idempotent
    with pytest.raises(ValueError):
        tun.fileno()


def test_named_persistent_device_can_be_reattached() -> None:
    skip_unless_netns_tun()
    name = f"wipt{os.getpid() % 100000}"
    try:
        with TunDevice(name, persist=True) as first:
            assert first.name == name
        assert link_exists(name), "a persistent device outlives its fd"
        with TunDevice(name) as second:  # attach, and drop the persist flag (persist=False)
            assert second.name == name
        assert not link_exists(name)
    finally:
        if link_exists(name):
            subprocess.run(["ip", "link", "del", "dev", name], stdin=subprocess.DEVNULL, check=False)


def test_bad_arguments_rejected() -> None:
    with pytest.raises(ValueError):
        TunDevice("a-name-longer-than-15")
    with pytest.raises(ValueError):
        TunDevice(mtu=20)


# --------------------------------------------------------------------------
# (d) writes the kernel does not take are counted, not raised
# --------------------------------------------------------------------------


def test_write_while_kernel_side_down_is_a_drop() -> None:
    skip_unless_netns_tun()
    with TunDevice() as tun:  # never configured, so the interface is down: the kernel says EIO
        assert tun.read_packet() is None
        assert tun.write_packet(echo_request(WIPSTACK_ADDRESS, KERNEL_ADDRESS)) is False
        assert tun.tx_dropped == 1


def test_write_when_queue_full_is_a_drop() -> None:
    """EAGAIN from a full queue: the device's fd number is made to point at a full non-blocking pipe."""
    skip_unless_netns_tun()
    tun = TunDevice()
    read_end, write_end = os.pipe()
    try:
        os.set_blocking(write_end, False)
        try:
            while True:
                os.write(write_end, bytes(65536))
        except BlockingIOError:
            pass
        os.dup2(write_end, tun.fileno())  # closes the real TUN fd; the same number is now the full pipe
        assert tun.write_packet(bytes(28)) is False
        assert tun.write_packet(bytes(28)) is False
        assert tun.tx_dropped == 2
    finally:
        tun.close()
        os.close(read_end)
        os.close(write_end)
