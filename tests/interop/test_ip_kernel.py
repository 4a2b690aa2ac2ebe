"""wipstack's IPv4 layer (ICMP, UDP, fragmentation) against the real Linux kernel over TUN.

wipstack runs in this process (Stack + NetLoop + TunPort, the loop in a background thread,
touched only through ``loop.call``) on the ``tun_in_netns`` fixture's device::

    wipstack (this process)  192.0.2.2  <-- tun -->  192.0.2.1  the kernel in a test namespace

The kernel side is driven by ``ping`` and by small Python scripts run inside the namespace
(``ip netns exec NS python -c SCRIPT``).  Every script has a hard time limit, a bounded count
and a bounded window of outstanding packets, and prints one JSON line that the test checks.
Only TEST-NET-1 addresses are used, and no packet can leave the namespace: wipstack's only
route is the point-to-point one to 192.0.2.1.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.netns import REQUIRE_ENV, NetNamespace, ping_command
from tests.harness.netns_fixtures import (  # noqa: F401
    KERNEL_ADDRESS,
    WIPSTACK_ADDRESS,
    netns,
    tun_in_netns,
)
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import TunPort
from wipstack.drivers.tun import TunDevice
from wipstack.net import Interface, Stack
from wipstack.net.icmp import PingConfig, PingReply, PingSession
from wipstack.net.udp import SocketError, UdpSocket
from wipstack.wire.ipv4 import address

pytestmark = pytest.mark.interop

T = TypeVar("T")

SEED = 20240611
ECHO_PORT = 7
CLOSED_PORT = 9
UDP_COUNT = 10_000
UDP_MAX_SIZE = 5840  # four fragments on a 1500-octet link
UDP_WINDOW = 32
FLOOD_COUNT = 10_000
FLOOD_WINDOW = 100  # well under the TUN's 500-packet txqueuelen
MTU = 1500


# --------------------------------------------------------------------------
# wipstack in this process
# --------------------------------------------------------------------------


@dataclass
class Wip:
    """wipstack on the TUN device, its loop running in a background thread."""

    ns: NetNamespace
    tun: TunDevice
    stack: Stack
    iface: Interface
    loop: NetLoop
    echo_failures: list[str] = field(default_factory=list)  # replies udp_echo() could not send

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        return self.loop.call(function, timeout)

    def counters(self) -> dict[str, int]:
        return self.call(self.stack.counters)

    def udp_echo(self, port: int = ECHO_PORT) -> UdpSocket:
        """An echo service on ``port`` (answers from the loop's thread)."""

        failures = self.echo_failures

        def make() -> UdpSocket:
            sock = self.stack.udp_socket()
            sock.bind(port=port)

            def echo(data: bytes, source: tuple[bytes, int], now: float) -> None:
                try:
                    sock.sendto(data, *source)
                except SocketError as exc:  # an exception here would end the loop's thread
                    failures.append(str(exc))

            sock.on_datagram = echo
            return sock

        return self.call(make)


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Counters that changed, and by how much."""
    keys = sorted(set(before) | set(after))
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)}


def drops(counters: dict[str, int]) -> int:
    return sum(v for k, v in counters.items() if k.startswith("drop_"))


@pytest.fixture
def wip(tun_in_netns: tuple[NetNamespace, TunDevice]) -> Iterator[Wip]:  # noqa: F811
    ns, tun = tun_in_netns
    # no IPv6 on the link (router solicitations would be counted as drop_bad_version noise)
    ns.run("sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{tun.name}/disable_ipv6", check=False)
    stack = Stack(random.Random(SEED))
    iface = Interface(tun.name, address(WIPSTACK_ADDRESS), peer=address(KERNEL_ADDRESS), mtu=MTU)
    loop = NetLoop(stack)
    loop.add_port(TunPort(stack, iface, tun))
    loop.start()
    try:
        yield Wip(ns, tun, stack, iface, loop)
        assert loop.error is None, f"the loop thread died: {loop.error!r}"
    finally:
        loop.close()  # stops the thread, closes the port (and so the device; the fixture's close is idempotent)


def require(tool: list[str] | None, reason: str) -> list[str]:
    """The skip/fail rule of the interop tests for a missing tool."""
    if tool is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    return tool


def ping_argv() -> list[str]:
    return require(ping_command(), "no ping: install iputils-ping (or busybox-static)")


@dataclass
class PingResult:
    transmitted: int
    received: int
    rtt_avg_ms: float | None
    output: str


def parse_ping(output: str) -> PingResult:
    stats = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", output)
    assert stats, output
    rtt = re.search(r"= [\d.]+/([\d.]+)/", output)
    return PingResult(int(stats[1]), int(stats[2]), float(rtt[1]) if rtt else None, output)


def kernel_ping(ns: NetNamespace, *args: str, timeout: float = 30) -> PingResult:
    proc = ns.run(*ping_argv(), *args, check=False, timeout=timeout)
    return parse_ping(proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace"))


def run_script(ns: NetNamespace, script: str, *args: object, timeout: float, stdin: bytes | None = None) -> Any:
    """Run a Python script inside the namespace; its last stdout line is JSON."""
    proc = ns.popen(
        sys.executable,
        "-c",
        script,
        *map(str, args),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"script timed out after {timeout} s: {err.decode(errors='replace')[-2000:]}")
    lines = out.decode(errors="replace").strip().splitlines()
    assert proc.returncode == 0 and lines, f"script failed ({proc.returncode}): {err.decode(errors='replace')[-3000:]}"
    return json.loads(lines[-1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# --------------------------------------------------------------------------
# the datagrams of the UDP tests (this code also runs inside the namespace scripts)
# --------------------------------------------------------------------------

DATAGRAMS_CODE = r'''
import hashlib, random, struct

def make_datagrams(seed, count, max_size):
    """count payloads of random sizes 1..max_size: index (4 octets) + SHA-256 (32) + random data.

    Payloads shorter than 36 octets cannot carry the check: they are random and matched by content.
    """
    rng = random.Random(seed)
    out = []
    for i in range(count):
        size = rng.randint(1, max_size)
        head = struct.pack("!I", i)
        if size >= 36:
            body = rng.randbytes(size - 36)
            out.append(head + hashlib.sha256(head + body).digest() + body)
        else:
            out.append((head + rng.randbytes(32))[:size])
    return out

def intact(data):
    """False when a payload long enough to carry its SHA-256 does not match it."""
    return len(data) < 36 or hashlib.sha256(data[:4] + data[36:]).digest() == data[4:36]
'''

_datagram_helpers: dict[str, Any] = {}
exec(DATAGRAMS_CODE, _datagram_helpers)
make_datagrams: Callable[[int, int, int], list[bytes]] = _datagram_helpers["make_datagrams"]
intact: Callable[[bytes], bool] = _datagram_helpers["intact"]


def fragments(size: int) -> int:
    """IPv4 packets that a UDP payload of ``size`` octets takes on a 1500-octet link."""
    return -(-(size + 8) // 1480)


def size_histogram(sizes: list[int]) -> dict[str, int]:
    """How many of ``sizes`` took 1, 2, 3... fragments."""
    hist = collections.Counter(fragments(s) for s in sizes)
    return {f"{n} fragment(s)": hist[n] for n in sorted(hist)}


def udp_diff(expected: list[bytes], received: list[bytes]) -> str:
    """What went wrong, for a failure message: missing, unexpected and corrupted datagrams."""
    want, got = collections.Counter(expected), collections.Counter(received)
    missing = list((want - got).elements())
    extra = list((got - want).elements())
    corrupt = [d for d in extra if not intact(d)]
    lines = [f"{len(received)} of {len(expected)} datagrams came back"]
    if missing:
        sizes = sorted(len(d) for d in missing)
        lines.append(f"{len(missing)} missing, sizes {sizes[:40]}{' ...' if len(sizes) > 40 else ''}")
        lines.append(f"missing by fragments: {size_histogram(sizes)}")
    if extra:
        sizes = sorted(map(len, extra))
        lines.append(f"{len(extra)} unexpected ({len(corrupt)} fail their SHA-256), sizes {sizes[:40]}")
    return "; ".join(lines)


# --------------------------------------------------------------------------
# scripts run inside the namespace
# --------------------------------------------------------------------------

# argv: dst count window size seconds.  Sends exactly `count` echo requests on a raw ICMP
# socket, at most `window` outstanding; a request unanswered after 2 s is lost.
FLOOD_SCRIPT = r"""
import json, os, select, socket, struct, sys, time
dst, count, window, size, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

ident = os.getpid() & 0xFFFF
def payload(seq):
    return struct.pack("!I", seq) + bytes((seq + i) & 0xFF for i in range(size - 4))
def request(seq):
    body = payload(seq)
    c = csum(struct.pack("!BBHHH", 8, 0, 0, ident, seq) + body)
    return struct.pack("!BBHHH", 8, 0, c, ident, seq) + body

sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
sock.setblocking(False)
want_src = socket.inet_aton(dst)
outstanding, got, lost, corrupt, rtts = {}, set(), set(), [], []
dups = late = seq = 0
start = time.monotonic()
deadline = start + limit
while len(got) + len(lost) < count and time.monotonic() < deadline:
    while seq < count and len(outstanding) < window:
        sock.sendto(request(seq), (dst, 0))
        outstanding[seq] = time.monotonic()
        seq += 1
    now = time.monotonic()
    for s, t in list(outstanding.items()):
        if now - t > 2.0:
            lost.add(s)
            del outstanding[s]
    if not select.select([sock], [], [], 0.05)[0]:
        continue
    while True:
        try:
            pkt = sock.recv(70000)
        except BlockingIOError:
            break
        now = time.monotonic()
        icmp = pkt[(pkt[0] & 15) * 4:]
        if len(icmp) < 8 or icmp[0] != 0 or pkt[12:16] != want_src:
            continue
        _, _, _, rid, rseq = struct.unpack_from("!BBHHH", icmp)
        if rid != ident:
            continue
        if csum(icmp) or rseq >= count or icmp[8:] != payload(rseq):
            corrupt.append(rseq)
            continue
        if rseq in got:
            dups += 1
            continue
        sent_at = outstanding.pop(rseq, None)
        if sent_at is None:
            late += 1
            lost.discard(rseq)
        else:
            rtts.append(now - sent_at)
        got.add(rseq)
elapsed = time.monotonic() - start
rtts.sort()
print(json.dumps({
    "sent": seq, "received": len(got), "lost": sorted(lost | set(outstanding))[:50],
    "n_lost": len(lost | set(outstanding)), "corrupt": corrupt[:50], "dups": dups, "late": late,
    "elapsed": elapsed,
    "rtt_ms": [1000 * rtts[0], 1000 * rtts[len(rtts) // 2], 1000 * rtts[-1]] if rtts else None,
}))
"""

# argv: dst port seed count max_size window seconds.  Sends make_datagrams(...) to dst:port on a
# connected UDP socket, at most `window` outstanding; an echo not back after 2 s is lost.
UDP_CLIENT_SCRIPT = (
    DATAGRAMS_CODE
    + r"""
import json, select, socket, sys, time
dst, port, seed, count, max_size, window, limit = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]),
    float(sys.argv[7]))
datagrams = make_datagrams(seed, count, max_size)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 23)
sock.connect((dst, port))
sock.setblocking(False)
pending = {}  # payload -> indices outstanding with that payload
outstanding, got, lost, unexpected, errors = {}, set(), set(), [], []
nxt = 0
start = time.monotonic()
deadline = start + limit
while len(got) + len(lost) < count and time.monotonic() < deadline:
    while nxt < count and len(outstanding) < window:
        data = datagrams[nxt]
        try:
            sock.send(data)
        except BlockingIOError:
            break
        except OSError as exc:
            errors.append(f"send #{nxt}: {exc}")
            lost.add(nxt)
            nxt += 1
            continue
        pending.setdefault(data, []).append(nxt)
        outstanding[nxt] = time.monotonic()
        nxt += 1
    now = time.monotonic()
    for i, t in list(outstanding.items()):
        if now - t > 2.0:
            lost.add(i)
            del outstanding[i]
            pending[datagrams[i]].remove(i)
    if not select.select([sock], [], [], 0.05)[0]:
        continue
    while True:
        try:
            data = sock.recv(70000)
        except BlockingIOError:
            break
        except OSError as exc:
            errors.append(f"recv: {exc}")
            break
        indices = pending.get(data)
        if not indices or not intact(data):
            unexpected.append([len(data), intact(data)])
            continue
        i = indices.pop(0)
        outstanding.pop(i, None)
        got.add(i)
elapsed = time.monotonic() - start
missing = sorted(lost | set(outstanding) | set(range(nxt, count)))
print(json.dumps({
    "sent": nxt, "received": len(got), "n_missing": len(missing),
    "missing": [[i, len(datagrams[i])] for i in missing[:60]],
    "missing_sizes": [len(datagrams[i]) for i in missing],
    "unexpected": unexpected[:60], "errors": errors[:20], "elapsed": elapsed,
    "octets": sum(len(datagrams[i]) for i in got),
}))
"""
)

# argv: address port count seconds.  Echoes `count` datagrams (or until the time limit).
UDP_ECHO_SERVER_SCRIPT = r"""
import json, select, socket, sys, time
addr, port, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 23)
sock.bind((addr, port))
sock.setblocking(False)
print("ready", flush=True)
echoed, errors = 0, []
deadline = time.monotonic() + limit
while echoed < count and time.monotonic() < deadline:
    if not select.select([sock], [], [], 0.1)[0]:
        continue
    while echoed < count:
        try:
            data, peer = sock.recvfrom(70000)
        except BlockingIOError:
            break
        try:
            sock.sendto(data, peer)
        except OSError as exc:
            errors.append(str(exc))
        echoed += 1
print(json.dumps({"echoed": echoed, "errors": errors[:20]}))
"""

# argv: dst closed_port echo_port size.  A datagram to a closed port, then one big echo.
UDP_EDGE_SCRIPT = r"""
import json, random, socket, sys
dst, closed, echo, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
result = {}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((dst, closed))
s.settimeout(3)
s.send(b"anyone there?")
try:
    s.recv(100)
    result["closed"] = "data"
except ConnectionRefusedError:
    result["closed"] = "ECONNREFUSED"
except socket.timeout:
    result["closed"] = "timeout"
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
b.connect((dst, echo))
b.settimeout(5)
data = random.Random(7).randbytes(size)
result["sent"] = b.send(data)
try:
    echo_data = b.recv(70000)
    result["echo_len"] = len(echo_data)
    result["intact"] = echo_data == data
except OSError as exc:
    result["echo_error"] = repr(exc)
print(json.dumps(result))
"""

# stdin: JSON list of hex packets.  argv: dst.  Sends each on an IPPROTO_RAW (IP_HDRINCL) socket.
RAW_SEND_SCRIPT = r"""
import json, socket, sys, time
dst = sys.argv[1]
packets = [bytes.fromhex(h) for h in json.load(sys.stdin)]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
results = []
for p in packets:
    try:
        s.sendto(p, (dst, 0))
        results.append("ok")
    except OSError as exc:
        results.append(str(exc))
    time.sleep(0.002)
print(json.dumps(results))
"""


# --------------------------------------------------------------------------
# hand-made packets (independent of wipstack's own wire code)
# --------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def ipv4_packet(
    payload: bytes,
    *,
    proto: int,
    src: str = KERNEL_ADDRESS,
    dst: str = WIPSTACK_ADDRESS,
    ident: int = 0x4242,
    flags_offset: int = 0,
    ttl: int = 64,
    version: int = 4,
    ihl: int = 5,
    total_length: int | None = None,
    options: bytes = b"",
    good_checksum: bool = True,
) -> bytes:
    length = 20 + len(options) + len(payload) if total_length is None else total_length
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s", version << 4 | ihl, 0, length, ident, flags_offset, ttl, proto, 0, ip4(src), ip4(dst)
        )
        + options
    )
    header[10:12] = struct.pack("!H", checksum(bytes(header[: max(20, ihl * 4)])))
    if not good_checksum:
        header[10] ^= 0x5A
    return bytes(header) + payload


def icmp_message(icmp_type: int, code: int, rest: int, data: bytes, *, good_checksum: bool = True) -> bytes:
    message = bytearray(struct.pack("!BBHI", icmp_type, code, 0, rest) + data)
    message[2:4] = struct.pack("!H", checksum(bytes(message)) ^ (0 if good_checksum else 0x1111))
    return bytes(message)


def udp_datagram(
    sport: int, dport: int, data: bytes, *, src: str = KERNEL_ADDRESS, dst: str = WIPSTACK_ADDRESS,
    length: int | None = None, csum: str = "good",
) -> bytes:  # fmt: skip
    ulen = 8 + len(data) if length is None else length
    datagram = bytearray(struct.pack("!HHHH", sport, dport, ulen, 0) + data)
    if csum != "zero":
        pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, 8 + len(data))
        value = checksum(pseudo + bytes(datagram)) or 0xFFFF
        datagram[6:8] = struct.pack("!H", value ^ (0 if csum == "good" else 0x0F0F))
    return bytes(datagram)


MF = 0x2000
DF = 0x4000


# ==========================================================================
# 1. Linux ping -> wipstack, fragmented both ways
# ==========================================================================


@pytest.mark.parametrize("size", [56, 1472, 4000, 65000])
def test_kernel_pings_wipstack(wip: Wip, size: int) -> None:
    count = 5
    before = wip.counters()
    result = kernel_ping(wip.ns, "-c", str(count), "-i", "0.05", "-W", "2", "-s", str(size), WIPSTACK_ADDRESS)
    after = wip.counters()
    change = delta(before, after)
    assert result.transmitted == count and result.received == count, result.output
    assert change.get("echo_replies_out") == count, change
    print(f"\nping -s {size} to wipstack: rtt avg {result.rtt_avg_ms} ms; counters {change}")
    packets = fragments(size)  # an ICMP message of size + 8 octets, like a UDP datagram of size
    if size + 8 + 20 > MTU:
        assert change.get("reassembled") == count, change
        assert change.get("fragments_out") == count * packets, change
        assert change.get("datagrams_in") == count * packets, change
    else:
        assert "reassembled" not in change and "fragments_out" not in change, change
    assert drops(change) == 0, change


def test_rtt_kernel_to_wipstack_vs_kernel_itself(wip: Wip) -> None:
    """Not a benchmark: both must answer; the numbers are printed for the record."""
    to_wipstack = kernel_ping(wip.ns, "-c", "20", "-i", "0.02", "-W", "2", WIPSTACK_ADDRESS)
    to_kernel = kernel_ping(wip.ns, "-c", "20", "-i", "0.02", "-W", "2", KERNEL_ADDRESS)
    assert to_wipstack.received == 20, to_wipstack.output
    assert to_kernel.received == 20, to_kernel.output
    print(f"\nrtt avg: kernel -> wipstack {to_wipstack.rtt_avg_ms} ms, kernel -> itself {to_kernel.rtt_avg_ms} ms")


# ==========================================================================
# 2. a bounded flood of 10,000 echo requests, no loss
# ==========================================================================


def test_echo_flood_10000_no_loss(wip: Wip) -> None:
    before = wip.counters()
    result = run_script(wip.ns, FLOOD_SCRIPT, WIPSTACK_ADDRESS, FLOOD_COUNT, FLOOD_WINDOW, 56, 40, timeout=50)
    change = delta(before, wip.counters())
    summary = (
        f"sent {result['sent']}, received {result['received']}, lost {result['n_lost']} (first {result['lost']}), "
        f"corrupt {result['corrupt']}, dups {result['dups']}, late {result['late']}, "
        f"{result['elapsed']:.2f} s, rtt min/median/max ms {result['rtt_ms']}; wipstack: {change}"
    )
    print(f"\nflood: {summary}; {result['received'] / result['elapsed']:.0f} echoes/s")
    assert result["sent"] == FLOOD_COUNT, summary
    assert result["received"] == FLOOD_COUNT and result["n_lost"] == 0, summary
    assert not result["corrupt"] and result["dups"] == 0, summary
    assert change.get("echo_replies_out") == FLOOD_COUNT, summary
    assert drops(change) == 0, summary
    assert wip.tun.tx_dropped == 0, summary


# ==========================================================================
# 3. wipstack pings Linux
# ==========================================================================


def wipstack_ping(wip: Wip, config: PingConfig, destination: str = KERNEL_ADDRESS) -> list[PingReply | None]:
    session: PingSession = wip.call(lambda: wip.stack.ping(destination, config, time.monotonic()))
    limit = config.count * config.interval + config.timeout + 5
    wait_for(lambda: wip.call(lambda: session.done), limit, "the ping session")
    return wip.call(lambda: list(session.results))


@pytest.mark.parametrize("size", [56, 4000])
def test_wipstack_pings_kernel(wip: Wip, size: int) -> None:
    before = wip.counters()
    results = wipstack_ping(wip, PingConfig(count=5, interval=0.05, timeout=2.0, size=size))
    replies = [r for r in results if r is not None and r.rtt is not None]
    assert [r.sequence for r in replies] == [0, 1, 2, 3, 4], results
    rtts = [r.rtt * 1000 for r in replies if r.rtt is not None]
    assert all(rtt > 0 for rtt in rtts) and all(r.size == size and r.ttl == 64 for r in replies), replies
    change = delta(before, wip.counters())
    if size > MTU - 28:
        assert change.get("reassembled") == 5 and change.get("fragments_out") == 5 * fragments(size), change
    summary = f"{min(rtts):.3f}/{sum(rtts) / len(rtts):.3f}/{max(rtts):.3f}"
    print(f"\nwipstack -> kernel ping -s {size}: rtt min/avg/max {summary} ms")


def test_kernel_icmp_errors_reach_wipstack_ping_and_udp(wip: Wip) -> None:
    """The kernel as a router (forwarding on, inside the namespace only) answers with ICMP errors.

    Order matters: Linux's host-unreachable errors (ip_error) draw on a per-peer bucket of 5
    that any ICMP error sent with icmp_ratelimit=0 empties, so they come first.
    """
    ns = wip.ns
    for knob, value in (("ipv4/ip_forward", 1), ("ipv4/icmp_ratelimit", 0)):
        ns.run("sh", "-c", f"echo {value} > /proc/sys/net/{knob}")
    # 203.0.113.0/24 is unreachable; 198.51.100.0/24 is routed back over the TUN (only TTL-1
    # datagrams go there, and they expire in the kernel)
    ns.run("ip", "route", "add", "unreachable", "203.0.113.0/24")
    ns.run("ip", "route", "add", "198.51.100.0/24", "dev", wip.tun.name)
    for network in ("203.0.113.0", "198.51.100.0"):
        wip.call(lambda network=network: wip.stack.routes.add(address(network), 24, wip.iface.name))

    def udp_error(host: str, port: int, ttl: int | None) -> str:
        def probe() -> UdpSocket:
            sock = wip.stack.udp_socket()
            sock.ttl = ttl
            sock.sendto(b"probe", host, port)
            return sock

        sock = wip.call(probe)
        try:
            wait_for(lambda: bool(wip.call(lambda: len(sock.errors))), 5, f"an ICMP error about UDP to {host}")
            error = wip.call(lambda: sock.errors[0])
            assert error.destination == (address(host), port), error
            return error.description
        finally:
            wip.call(sock.close)

    def ping_errors(host: str, ttl: int | None) -> list[str | None]:
        results = wipstack_ping(wip, PingConfig(count=2, interval=0.05, timeout=2.0, ttl=ttl), host)
        return [r.error if r is not None else "no result" for r in results]

    assert ping_errors("203.0.113.9", None) == ["host unreachable from 192.0.2.1"] * 2
    assert udp_error("203.0.113.9", 4444, None) == "host unreachable from 192.0.2.1"
    assert ping_errors("198.51.100.7", 1) == ["time to live exceeded from 192.0.2.1"] * 2
    assert udp_error("198.51.100.7", 4444, 1) == "time to live exceeded from 192.0.2.1"
    assert udp_error(KERNEL_ADDRESS, CLOSED_PORT, None) == "port unreachable from 192.0.2.1"


# ==========================================================================
# 4. UDP: 10,000 datagrams of 1..5840 octets both ways
# ==========================================================================


def test_udp_kernel_client_wipstack_echo(wip: Wip) -> None:
    service = wip.udp_echo()
    before = wip.counters()
    result = run_script(
        wip.ns, UDP_CLIENT_SCRIPT, WIPSTACK_ADDRESS, ECHO_PORT, SEED, UDP_COUNT, UDP_MAX_SIZE, UDP_WINDOW, 45,
        timeout=55,
    )  # fmt: skip
    change = delta(before, wip.counters())
    served = wip.call(lambda: (service.datagrams_in, service.datagrams_out))
    summary = (
        f"sent {result['sent']}, echoed back {result['received']}, missing {result['n_missing']} "
        f"{size_histogram(result['missing_sizes'])} first (index, size) {result['missing'][:20]}, "
        f"unexpected (size, intact) {result['unexpected'][:20]}, errors {result['errors']}; "
        f"service in/out {served}; wipstack {change}"
    )
    rate = result["received"] / result["elapsed"]
    print(f"\nUDP kernel -> wipstack echo: {result['elapsed']:.2f} s, {rate:.0f} datagrams/s, "
          f"{2 * result['octets'] / result['elapsed'] / 1e6:.1f} MB/s both ways; {change}")  # fmt: skip
    assert result["sent"] == UDP_COUNT, summary
    assert result["received"] == UDP_COUNT and result["n_missing"] == 0, summary
    assert not result["unexpected"] and not result["errors"], summary
    assert served == (UDP_COUNT, UDP_COUNT) and not wip.echo_failures, (summary, wip.echo_failures[:5])
    assert change.get("reassembled", 0) > 0 and change.get("fragments_out", 0) > 0, summary
    assert drops(change) == 0, summary


def test_udp_wipstack_client_kernel_echo(wip: Wip) -> None:
    datagrams = make_datagrams(SEED, UDP_COUNT, UDP_MAX_SIZE)
    port = 7007
    server = wip.ns.popen(
        sys.executable, "-c", UDP_ECHO_SERVER_SCRIPT, KERNEL_ADDRESS, str(port), str(UDP_COUNT), "45",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    if not select.select([server.stdout], [], [], 15)[0]:
        pytest.fail("the echo server did not start in 15 s")
    assert server.stdout.readline().strip() == b"ready", server.stderr.read() if server.stderr else b""

    received: list[bytes] = []
    cond = threading.Condition()

    def on_datagram(data: bytes, source: tuple[bytes, int], now: float) -> None:
        with cond:
            received.append(data if source == (address(KERNEL_ADDRESS), port) else b"<stranger>" + data)
            cond.notify()

    def make() -> UdpSocket:
        sock = wip.stack.udp_socket()
        sock.bind(WIPSTACK_ADDRESS, 0)
        sock.on_datagram = on_datagram
        return sock

    sock = wip.call(make)
    before = wip.counters()
    sent = 0
    start = time.monotonic()
    deadline = start + 45
    stalled = False
    while sent < UDP_COUNT and time.monotonic() < deadline:
        with cond:
            if not cond.wait_for(lambda sent=sent: sent - len(received) < UDP_WINDOW, timeout=3.0):
                stalled = True
                break
            room = UDP_WINDOW - (sent - len(received))
        batch = datagrams[sent : sent + room]
        wip.call(lambda batch=batch: [sock.sendto(d, KERNEL_ADDRESS, port) for d in batch])
        sent += len(batch)
    with cond:
        cond.wait_for(lambda: len(received) >= sent, timeout=3.0)
        got = list(received)
    elapsed = time.monotonic() - start
    try:
        out, err = server.communicate(timeout=10)
        echoed = json.loads(out.decode().strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        server.kill()
        echoed = {"echoed": "?", "errors": ["the echo server did not report"]}
    change = delta(before, wip.counters())
    sock_state = wip.call(lambda: (sock.datagrams_in, sock.datagrams_out, dict(sock.drops), list(sock.errors)))
    summary = (
        f"{udp_diff(datagrams, got)}; sent {sent}{' (stalled)' if stalled else ''}; server {echoed}; "
        f"socket in/out/drops/errors {sock_state}; tun tx_dropped {wip.tun.tx_dropped}; wipstack {change}"
    )
    octets = sum(map(len, got))
    print(f"\nUDP wipstack -> kernel echo: {elapsed:.2f} s, {len(got) / elapsed:.0f} datagrams/s, "
          f"{2 * octets / elapsed / 1e6:.1f} MB/s both ways; {change}")  # fmt: skip
    assert sent == UDP_COUNT, summary
    assert collections.Counter(got) == collections.Counter(datagrams), summary
    assert all(intact(d) for d in got), summary
    assert echoed.get("echoed") == UDP_COUNT and not echoed.get("errors"), summary
    assert change.get("reassembled", 0) > 0 and change.get("fragments_out", 0) > 0, summary
    assert drops(change) == 0, summary
    wip.call(sock.close)


# ==========================================================================
# 5. a closed port is refused; the largest datagram echoes
# ==========================================================================


def test_udp_closed_port_refused_and_largest_datagram_echoes(wip: Wip) -> None:
    wip.udp_echo()
    before = wip.counters()
    result = run_script(wip.ns, UDP_EDGE_SCRIPT, WIPSTACK_ADDRESS, CLOSED_PORT, ECHO_PORT, 65507, timeout=20)
    change = delta(before, wip.counters())
    assert result["closed"] == "ECONNREFUSED", (result, change)
    assert change.get("drop_port_unreachable") == 1 and change.get("icmp_errors_out") == 1, change
    assert result["sent"] == 65507 and result.get("echo_len") == 65507 and result.get("intact"), (result, change)
    assert change.get("reassembled") == 1 and change.get("fragments_out") == fragments(65507), change


# ==========================================================================
# 6. garbage: hypothesis packets through the loop, malformed packets from the namespace
# ==========================================================================

# Weighted towards the well-formed choices (by repetition), so that most packets reach ICMP and UDP
# before something in them is wrong.
FUZZ_SOURCES = [KERNEL_ADDRESS] * 4 + [
    "198.51.100.7", "203.0.113.9", WIPSTACK_ADDRESS, "0.0.0.0", "255.255.255.255", "224.0.0.1",
]  # fmt: skip
FUZZ_DESTINATIONS = [WIPSTACK_ADDRESS] * 6 + [KERNEL_ADDRESS, "198.51.100.7", "255.255.255.255", "224.0.0.1", "0.0.0.0"]
BREAKAGES = ["ip_checksum", "total_length", "truncate", "octets", "version", "ihl"]


@st.composite
def icmp_payloads(draw: st.DrawFn) -> bytes:
    icmp_type = draw(st.sampled_from([8, 0, 3, 11, 12, 4, 5, 13, 14, 17]) | st.integers(0, 255))
    code = draw(st.integers(0, 16))
    rest = draw(st.integers(0, 0xFFFFFFFF))
    if icmp_type in (3, 4, 5, 11, 12) and not draw(st.booleans()):
        # an error quoting "our" datagram: a UDP datagram or an echo request from wipstack
        quoted_proto = draw(st.sampled_from([17, 1, 6]))
        quoted = ipv4_packet(draw(st.binary(min_size=0, max_size=12)), proto=quoted_proto,
                             src=WIPSTACK_ADDRESS, dst=KERNEL_ADDRESS)  # fmt: skip
        data = quoted[: len(quoted) - draw(st.integers(0, len(quoted)))]
    else:
        data = draw(st.binary(max_size=64))
    return icmp_message(icmp_type, code, rest, data, good_checksum=not draw(st.booleans()))


@st.composite
def udp_payloads(draw: st.DrawFn, src: str, dst: str) -> bytes:
    data = draw(st.binary(max_size=64))
    length = draw(st.none() | st.integers(0, 0xFFFF))
    csum = draw(st.sampled_from(["good", "zero", "bad"]))
    ports = st.sampled_from([ECHO_PORT, CLOSED_PORT, 0, 53]) | st.integers(0, 0xFFFF)
    return udp_datagram(draw(ports), draw(ports), data, src=src, dst=dst, length=length, csum=csum)


@st.composite
def ipv4_garbage(draw: st.DrawFn) -> bytes:
    """Mostly well-formed IPv4 around ICMP/UDP/other, with up to two things broken (or plain noise)."""
    if draw(st.integers(0, 15)) == 15:
        return draw(st.binary(max_size=80))
    src, dst = draw(st.sampled_from(FUZZ_SOURCES)), draw(st.sampled_from(FUZZ_DESTINATIONS))
    proto = draw(st.sampled_from([1, 17, 253, 6, 0]) | st.integers(0, 255))
    if proto == 1:
        payload = draw(icmp_payloads())
    elif proto == 17:
        payload = draw(udp_payloads(src, dst))
    else:
        payload = draw(st.binary(max_size=64))
    n_broken = draw(st.sampled_from([0, 0, 0, 1, 1, 2]))
    broken = set(draw(st.lists(st.sampled_from(BREAKAGES), min_size=n_broken, max_size=n_broken)))
    options = draw(st.sampled_from([b"", b"\x01\x01\x01\x00", b"\x94\x04\x00\x00", b"\x07\x07\x04" + bytes(5)]))
    flags_offset = draw(st.sampled_from([0, 0, 0, DF, DF, MF, MF | 1, 2, 0x1FFF, 0x8000]) | st.integers(0, 0xFFFF))
    packet = ipv4_packet(
        payload,
        proto=proto,
        src=src,
        dst=dst,
        ident=draw(st.integers(0, 0xFFFF)),
        flags_offset=flags_offset,
        ttl=draw(st.integers(0, 255)),
        version=draw(st.sampled_from([6, 0, 15, 5])) if "version" in broken else 4,
        ihl=draw(st.integers(0, 15)) if "ihl" in broken else (20 + len(options)) // 4,
        total_length=draw(st.integers(0, 0xFFFF)) if "total_length" in broken else None,
        options=options,
        good_checksum="ip_checksum" not in broken,
    )
    mutable = bytearray(packet)
    if "octets" in broken:
        for _ in range(draw(st.integers(1, 3))):
            mutable[draw(st.integers(0, len(mutable) - 1))] = draw(st.integers(0, 255))
    if "truncate" in broken:
        del mutable[draw(st.integers(0, len(mutable) - 1)) :]
    return bytes(mutable)


def test_hypothesis_garbage_through_the_loop_while_kernel_pings(wip: Wip) -> None:
    wip.udp_echo()
    # incomplete datagrams the garbage leaves behind must expire before the fragmented ping at the end
    wip.call(lambda: wip.stack.set_config(replace(wip.stack.config, fragment_timeout=1.0)))
    before = wip.counters()
    pinger = wip.ns.popen(*ping_argv(), "-c", "100", "-i", "0.02", "-W", "2", WIPSTACK_ADDRESS,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    injected = 0

    @settings(
        max_examples=600, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )  # fmt: skip
    @given(ipv4_garbage())
    def inject(packet: bytes) -> None:
        nonlocal injected
        injected += 1
        wip.call(lambda: wip.stack.receive(wip.iface, packet, time.monotonic()))

    inject()
    try:
        out, _ = pinger.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pinger.kill()
        raise
    during = parse_ping(out.decode(errors="replace"))
    change = delta(before, wip.counters())
    print(f"\n{injected} garbage packets injected during a ping of {during.transmitted}; wipstack {change}")
    assert during.received == during.transmitted == 100, during.output
    assert change["echo_replies_out"] >= 100, change
    # the garbage reached every layer: IP drops, transport drops, and some of it was even answered
    assert change["delivered"] - 100 >= injected // 20, change
    for reason in ("drop_bad_checksum", "drop_bad_version", "drop_truncated", "drop_bad_value", "drop_bad_length",
                   "drop_not_for_us", "drop_protocol_unreachable"):  # fmt: skip
        assert change.get(reason, 0) > 0, (reason, change)
    assert drops(change) >= injected // 2, change
    # afterwards: small pings at once, fragmented ones once the leftovers timed out
    assert kernel_ping(wip.ns, "-c", "3", "-i", "0.05", "-W", "2", WIPSTACK_ADDRESS).received == 3
    wait_for(lambda: wip.call(lambda: wip.stack.reassembler.datagrams_held) == 0, 5, "the leftovers to expire")
    big = kernel_ping(wip.ns, "-c", "3", "-i", "0.05", "-W", "2", "-s", "4000", WIPSTACK_ADDRESS)
    assert big.received == 3, big.output


def test_stale_fragments_do_not_block_reassembly(wip: Wip) -> None:
    """Eight first fragments that never complete (spoofed from 203.0.113.9), then a fragmented ping."""
    junk = [ipv4_packet(bytes(16), proto=17, src="203.0.113.9", ident=0x6000 + i, flags_offset=MF) for i in range(8)]
    before = wip.counters()
    assert raw_send(wip.ns, junk) == ["ok"] * len(junk)
    wait_for(lambda: wip.counters()["datagrams_in"] >= before["datagrams_in"] + len(junk), 5, "the junk")
    result = kernel_ping(wip.ns, "-c", "3", "-i", "0.05", "-W", "2", "-s", "4000", WIPSTACK_ADDRESS)
    assert result.received == 3, (result.output, delta(before, wip.counters()))


def test_malformed_packets_through_the_loop_are_counted(wip: Wip) -> None:
    """Cases the kernel's raw sockets cannot produce (it fixes IP checksums and lengths)."""
    echo = icmp_message(8, 0, 0x77770001, b"ping")
    good = ipv4_packet(echo, proto=1)
    cases: list[tuple[bytes, str]] = [
        (ipv4_packet(echo, proto=1, good_checksum=False), "drop_bad_checksum"),
        (ipv4_packet(echo, proto=1, total_length=len(good) + 10), "drop_truncated"),
        (ipv4_packet(echo, proto=1, total_length=19), "drop_bad_length"),
        (good[:19], "drop_truncated"),
        (ipv4_packet(echo, proto=1, version=6), "drop_bad_version"),
        (ipv4_packet(echo, proto=1, ihl=4), "drop_bad_header_length"),
        (ipv4_packet(echo, proto=1, src="224.0.0.1"), "drop_bad_value"),
        (ipv4_packet(echo, proto=1, dst="198.51.100.7"), "drop_not_for_us"),
    ]
    for packet, reason in cases:
        before = wip.counters()
        wip.call(lambda packet=packet: wip.stack.receive(wip.iface, packet, time.monotonic()))
        change = delta(before, wip.counters())
        assert change == {"datagrams_in": 1, reason: 1}, (packet.hex(), reason, change)
    assert kernel_ping(wip.ns, "-c", "2", "-i", "0.05", "-W", "2", WIPSTACK_ADDRESS).received == 2


def raw_send(ns: NetNamespace, packets: list[bytes]) -> list[str]:
    """Send ``packets`` as they are (IP_HDRINCL) from the namespace; one "ok" or error text each.

    Linux still fills in the IP checksum and Total Length (and refuses IHL < 5): what it cannot
    send is injected through the loop instead.
    """
    stdin = json.dumps([p.hex() for p in packets]).encode()
    results: list[str] = run_script(ns, RAW_SEND_SCRIPT, WIPSTACK_ADDRESS, timeout=20, stdin=stdin)
    return results


def test_malformed_packets_from_the_namespace_are_counted(wip: Wip) -> None:
    wip.udp_echo()
    echo_data = b"0123456789abcdef" * 2  # 32 octets
    echo = icmp_message(8, 0, 0x51510001, echo_data)  # 40 octets
    cases: list[tuple[str, list[bytes], dict[str, int]]] = [
        ("ICMP bad checksum", [ipv4_packet(icmp_message(8, 0, 1, b"x" * 8, good_checksum=False), proto=1)],
         {"datagrams_in": 1, "delivered": 1, "drop_bad_checksum": 1}),
        ("ICMP truncated", [ipv4_packet(b"\x08\x00\xf7", proto=1)],
         {"datagrams_in": 1, "delivered": 1, "drop_truncated": 1}),
        ("UDP bad checksum", [ipv4_packet(udp_datagram(4000, ECHO_PORT, b"hello", csum="bad"), proto=17)],
         {"datagrams_in": 1, "delivered": 1, "drop_bad_checksum": 1}),
        ("UDP length past the datagram", [ipv4_packet(udp_datagram(4000, ECHO_PORT, b"hello", length=200), proto=17)],
         {"datagrams_in": 1, "delivered": 1, "drop_truncated": 1}),
        ("UDP length < 8", [ipv4_packet(udp_datagram(4000, ECHO_PORT, b"hello", length=4, csum="zero"), proto=17)],
         {"datagrams_in": 1, "delivered": 1, "drop_bad_length": 1}),
        ("UDP to port 0", [ipv4_packet(udp_datagram(4000, 0, b"hello"), proto=17)],
         {"datagrams_in": 1, "delivered": 1, "drop_bad_value": 1}),
        ("non-final fragment not a multiple of 8", [ipv4_packet(echo[:12], proto=1, flags_offset=MF)],
         {"datagrams_in": 1, "drop_bad_value": 1}),
        ("fragment ending past 65535", [ipv4_packet(b"z" * 16, proto=1, flags_offset=8191)],
         {"datagrams_in": 1, "drop_bad_value": 1}),
        ("overlapping fragments", [
            ipv4_packet(echo[:16], proto=1, ident=0x0101, flags_offset=MF),
            ipv4_packet(echo[8:24], proto=1, ident=0x0101, flags_offset=MF | 1),  # octets 8..23 overlap 8..15
            ipv4_packet(echo[24:], proto=1, ident=0x0101, flags_offset=3),  # the rest: the datagram is poisoned
        ], {"datagrams_in": 3, "drop_reassembly_overlap": 2}),  # the overlapping one and the one after
        ("exact duplicate fragment, then the datagram completes", [
            ipv4_packet(echo[:16], proto=1, ident=0x0202, flags_offset=MF),
            ipv4_packet(echo[:16], proto=1, ident=0x0202, flags_offset=MF),
            ipv4_packet(echo[16:], proto=1, ident=0x0202, flags_offset=2),
        ], {"datagrams_in": 3, "drop_reassembly_overlap": 1, "reassembled": 1, "delivered": 1,
            "echo_replies_out": 1, "datagrams_out": 1}),
        ("unknown protocol 253", [ipv4_packet(b"whatever", proto=253)],
         {"datagrams_in": 1, "delivered": 1, "drop_protocol_unreachable": 1, "icmp_errors_out": 1,
          "datagrams_out": 1}),
    ]  # fmt: skip
    report = []
    for name, packets, expected in cases:
        before = wip.counters()
        results = raw_send(wip.ns, packets)
        assert results == ["ok"] * len(packets), (name, results)
        wanted = before["datagrams_in"] + len(packets)
        wait_for(lambda wanted=wanted: wip.counters()["datagrams_in"] >= wanted, 5, name)
        time.sleep(0.05)  # anything the packets provoke
        change = delta(before, wip.counters())
        report.append(f"{name}: {change}")
        assert change == expected, (name, change)
    print("\n" + "\n".join(report))
    assert kernel_ping(wip.ns, "-c", "3", "-i", "0.05", "-W", "2", "-s", "4000", WIPSTACK_ADDRESS).received == 3
