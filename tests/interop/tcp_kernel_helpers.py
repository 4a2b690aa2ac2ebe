"""Helpers of ``test_tcp_kernel.py``: wipstack TCP against the Linux kernel over TUN.

* :func:`running_wip` starts wipstack (Stack + NetLoop + a TunPort, optionally wrapped in a
  FaultyTunPort) on the ``tun_in_netns`` fixture's device, its loop in a background thread;
* :class:`Pattern` is the seeded, non-periodic byte stream both ends send (generated 64 KiB
  at a time; the same code runs inside the namespace scripts, see :data:`PATTERN_CODE`);
* :class:`StreamApp` is a wipstack application on the loop's thread that streams a
  :class:`Pattern`, hashes what it receives and records when things happened;
* the kernel-side programs are Python scripts (``*_SCRIPT``) run in the namespace;
* :func:`ss_connections` parses ``ss -tinoH`` in the namespace, :func:`kernel_snmp` reads the
  namespace's ``/proc/net/snmp`` and ``/proc/net/netstat``;
* :func:`tcp_packet` builds TCP/IPv4 segments by hand (for the blind-injection tests), and
  :data:`INJECT_SCRIPT` sends them from the namespace and captures what wipstack answers.

Only TEST-NET-1 addresses (192.0.2.1 kernel, 192.0.2.2 wipstack) are used; every script has
a hard time limit and a bounded amount of work.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import random
import re
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from tests.harness.netns import NetNamespace
from tests.harness.netns_fixtures import KERNEL_ADDRESS, WIPSTACK_ADDRESS
from wipstack.drivers.faults import FaultConfig, FaultyTunPort
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import TunPort
from wipstack.drivers.tun import TunDevice
from wipstack.net import Interface, Stack
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.events import Closed, Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace, TcpEvent
from wipstack.tcp.socket import TcpSocket
from wipstack.tcp.state import TcpState
from wipstack.wire.ipv4 import address

T = TypeVar("T")
MTU = 1500
SEED = 20240611

# --------------------------------------------------------------------------
# the seeded stream (this code also runs inside the namespace scripts)
# --------------------------------------------------------------------------

PATTERN_CODE = r'''
import random as _random

PATTERN_CHUNK = 1 << 16

class Pattern:
    """``size`` octets of a seeded stream, made 64 KiB at a time: chunk k is
    ``Random(seed * 1000003 + k).randbytes(65536)``, so the stream never repeats (a segment
    delivered at the wrong offset always changes the digest) and is never held whole."""

    def __init__(self, seed, size):
        self.seed, self.size, self.pos = seed, size, 0
        self._k, self._chunk, self._offset = 0, b"", 0

    @property
    def remaining(self):
        return self.size - self.pos

    def peek(self, limit=PATTERN_CHUNK):
        """The next octets (at most ``limit``, never past a chunk's end) without taking them."""
        if self._offset >= len(self._chunk):
            self._chunk = _random.Random(self.seed * 1000003 + self._k).randbytes(PATTERN_CHUNK)
            self._k += 1
            self._offset = 0
        n = min(limit, len(self._chunk) - self._offset, self.remaining)
        return memoryview(self._chunk)[self._offset : self._offset + n]

    def advance(self, n):
        self._offset += n
        self.pos += n
'''

_pattern_ns: dict[str, Any] = {}
exec(PATTERN_CODE, _pattern_ns)
Pattern: Any = _pattern_ns["Pattern"]


def pattern_digest(seed: int, size: int) -> str:
    """SHA-256 of ``Pattern(seed, size)`` (computed here, independently of both ends)."""
    p, h = Pattern(seed, size), hashlib.sha256()
    while p.remaining:
        view = p.peek()
        h.update(view)
        p.advance(len(view))
    return h.hexdigest()


# --------------------------------------------------------------------------
# wipstack in this process
# --------------------------------------------------------------------------


@dataclass
class Wip:
    """wipstack on the TUN device, its loop running in a background thread."""

    ns: NetNamespace
    tun: TunDevice
    stack: Stack
    loop: NetLoop
    port: TunPort | FaultyTunPort
    loop_ident: int = 0  # pthread id of the loop's thread

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        return self.loop.call(function, timeout)

    def loop_cpu(self) -> float:
        """CPU seconds the loop's thread has used."""
        return time.clock_gettime(time.pthread_getcpuclockid(self.loop_ident))

    def tcp_stats(self) -> dict[str, int]:
        tcp = self.stack.tcp
        return self.call(lambda: {"segments_in": tcp.segments_in, "segments_out": tcp.segments_out,
                                  "resets_sent": tcp.resets_sent})  # fmt: skip

    def connections(self) -> list[tuple[TcpState, tuple[bytes, int], tuple[bytes, int]]]:
        return self.call(lambda: [(c.state, c.local, c.remote) for c in self.stack.tcp.connections])

    def wait(self, condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
        """Poll ``condition`` on the loop's thread until it holds."""
        wait_for(lambda: self.call(condition), timeout, what, interval)


class TolerantTun:
    """The TUN device as a TunPort uses it, except that a datagram the kernel refuses with EINVAL
    is counted in ``refused`` and dropped instead of raising.

    Workaround for the impairment tests: FaultyTunPort's bit flips sometimes hit the IPv4 version
    nibble, the TUN driver (IFF_NO_PI) refuses such a datagram with EINVAL, TunDevice.write_packet
    re-raises it and FaultyTunPort._transmit lets it end the loop's thread (see
    test_fault_port_survives_a_corrupted_version_nibble).  A real wire would just deliver garbage.
    """

    def __init__(self, tun: TunDevice) -> None:
        self.tun = tun
        self.refused = 0

    @property
    def closed(self) -> bool:
        return self.tun.closed

    @property
    def name(self) -> str:
        return self.tun.name

    def fileno(self) -> int:
        return self.tun.fileno()

    def read_packet(self) -> bytes | None:
        return self.tun.read_packet()

    def write_packet(self, packet: bytes) -> bool:
        try:
            return self.tun.write_packet(packet)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.refused += 1
            return False

    def close(self) -> None:
        self.tun.close()


@contextlib.contextmanager
def running_wip(
    ns: NetNamespace,
    tun: TunDevice,
    *,
    faults: FaultConfig | tuple[FaultConfig, FaultConfig] | None = None,
    seed: int = SEED,
    tcp_config: TcpConfig | None = None,
    tolerant: bool = True,
) -> Iterator[Wip]:
    """wipstack at 192.0.2.2 on ``tun`` (faults, if given, in both directions, seeded).

    With faults, ``tolerant`` puts a :class:`TolerantTun` between the port and the device.
    """
    # no IPv6 on the link (router solicitations would only be noise)
    ns.run("sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{tun.name}/disable_ipv6", check=False)
    stack = Stack(random.Random(seed), tcp_config=tcp_config)
    iface = Interface(tun.name, address(WIPSTACK_ADDRESS), peer=address(KERNEL_ADDRESS), mtu=MTU)
    device: Any = TolerantTun(tun) if faults is not None and tolerant else tun
    port: TunPort | FaultyTunPort = TunPort(stack, iface, device)
    if faults is not None:
        inbound, outbound = faults if isinstance(faults, tuple) else (faults, faults)
        port = FaultyTunPort.wrap(port, inbound=inbound, outbound=outbound, seed=seed)
    loop = NetLoop(stack)
    loop.add_port(port)
    loop.start()
    try:
        wip = Wip(ns, tun, stack, loop, port)
        wip.loop_ident = wip.call(threading.get_ident)
        yield wip
        assert loop.error is None, f"the loop thread died: {loop.error!r}"
    finally:
        loop.close()  # stops the thread, closes the port (and the device)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# a wipstack application: stream a pattern, hash what arrives
# --------------------------------------------------------------------------


class StreamApp:
    """Runs on the loop's thread, driven by the socket's events.

    Sends ``send_size`` octets of ``Pattern(send_seed)`` then half-closes (at once, or only
    after the peer's FIN with ``reply_after_eof``), and hashes everything it receives.
    ``read=False`` leaves received data in the socket (the window closes).
    """

    def __init__(
        self,
        sock: TcpSocket,
        *,
        send_size: int = 0,
        send_seed: int = 0,
        reply_after_eof: bool = False,
        shutdown_when_sent: bool = True,
        expect: int | None = None,
        read: bool = True,
        keep: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sock = sock
        self.clock = clock
        self.pattern = Pattern(send_seed, send_size)
        self.reply_after_eof = reply_after_eof
        self.shutdown_when_sent = shutdown_when_sent
        self.expect = expect
        self.read = read
        self.data: bytearray | None = bytearray() if keep else None
        self.states: list[tuple[str, str]] = []  # (event, state when it was delivered)
        self.sent_sha = hashlib.sha256()
        self.received_sha = hashlib.sha256()
        self.received = 0
        self.eof = False
        self.shut = False
        self.error: ConnectionFailed | None = None
        self.events: list[str] = []
        self.connected_at: float | None = None
        self.first_rx_at: float | None = None
        self.eof_at: float | None = None
        self.first_tx_at: float | None = None
        self.sent_at: float | None = None  # the last octet went into the send buffer
        self.closed_at: float | None = None
        sock.on_event = self._on_event
        if sock.state == TcpState.ESTABLISHED:  # an accepted socket: Connected came before us
            self.connected_at = clock()
            self.pump()

    @property
    def sent(self) -> int:
        return int(self.pattern.pos)

    @property
    def done(self) -> bool:
        return self.closed_at is not None or self.error is not None

    @property
    def finished(self) -> bool:
        """Both directions closed in order (TIME-WAIT or CLOSED), or an error."""
        if self.error is not None:
            return True
        return self.eof and self.shut and self.sock.state in (TcpState.TIME_WAIT, TcpState.CLOSED)

    def pump(self) -> None:
        sock = self.sock
        if self.read and sock.readable:
            data = sock.recv()
            if data:
                if self.first_rx_at is None:
                    self.first_rx_at = self.clock()
                self.received_sha.update(data)
                self.received += len(data)
                if self.data is not None:
                    self.data += data
        if self.reply_after_eof and not self.eof:
            return
        if sock.state not in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT) or self.shut:
            return
        pattern = self.pattern
        while pattern.remaining:
            # offer a whole chunk each time: a short send() means the buffer is full (SendSpace follows)
            view = pattern.peek()
            n = sock.send(view)
            if n and self.first_tx_at is None:
                self.first_tx_at = self.clock()
            self.sent_sha.update(view[:n])
            pattern.advance(n)
            if n < len(view):
                return
        if self.sent_at is None:
            self.sent_at = self.clock()
        if self.shutdown_when_sent and (self.expect is None or self.received >= self.expect):
            self.shut = True
            sock.shutdown()

    def shutdown(self) -> None:
        """Half-close now (whatever was sent so far)."""
        self.shut = True
        self.sock.shutdown()

    def _on_event(self, sock: TcpSocket, event: TcpEvent) -> None:
        self.events.append(type(event).__name__)
        self.states.append((type(event).__name__, str(sock.state)))
        if isinstance(event, Connected):
            self.connected_at = self.clock()
        if isinstance(event, Connected | DataAvailable | SendSpace):
            self.pump()
        elif isinstance(event, PeerClosed):
            self.pump()
            self.eof = True
            self.eof_at = self.clock()
            self.pump()
        elif isinstance(event, ConnectionFailed):
            self.error = event
        elif isinstance(event, Closed):
            self.closed_at = self.clock()

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent, "sent_sha": self.sent_sha.hexdigest(), "received": self.received,
            "received_sha": self.received_sha.hexdigest(), "eof": self.eof, "state": str(self.sock.state),
            "error": None if self.error is None else self.error.errno_name,
        }  # fmt: skip


def rate(octets: int, start: float | None, end: float | None) -> float:
    """MB/s (10^6 octets per second)."""
    if start is None or end is None or end <= start:
        return 0.0
    return octets / (end - start) / 1e6


# --------------------------------------------------------------------------
# kernel-side programs
# --------------------------------------------------------------------------

# argv: one JSON object.  role "client" connects to host:port, role "server" listens there
# (prints "ready") and accepts one connection.  Then: sends send_size octets of
# Pattern(send_seed) and shuts down writing (at once in a thread, or with reply_after_eof only
# after reading the peer's EOF) while reading and hashing everything until EOF.  Prints JSON.
STREAM_SCRIPT = (
    PATTERN_CODE
    + r"""
import hashlib, json, socket, struct, sys, threading, time
cfg = json.loads(sys.argv[1])
limit = cfg["limit"]
if cfg["role"] == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((cfg["host"], cfg["port"]))
    ls.listen(8)
    ls.settimeout(limit)
    print("ready", flush=True)
    sock, peer = ls.accept()
    ls.close()
else:
    sock = socket.create_connection((cfg["host"], cfg["port"]), timeout=limit)
sock.settimeout(limit)
result = {"local": list(sock.getsockname()), "peer": list(sock.getpeername())}
opts = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
result["tcpi_options"], result["tcpi_wscale"] = opts[5], opts[6]

def send():
    try:
        p, h = Pattern(cfg["send_seed"], cfg["send_size"]), hashlib.sha256()
        t0 = time.monotonic()
        while p.remaining:
            view = p.peek()
            sock.sendall(view)
            h.update(view)
            p.advance(len(view))
        sock.shutdown(socket.SHUT_WR)
        result.update(sent=p.pos, sent_sha=h.hexdigest(), send_seconds=time.monotonic() - t0)
    except OSError as exc:
        result["send_error"] = repr(exc)

sender = None
if not cfg.get("reply_after_eof"):
    sender = threading.Thread(target=send)
    sender.start()
h, count, first, buf = hashlib.sha256(), 0, None, bytearray(1 << 18)
try:
    while True:
        n = sock.recv_into(buf)
        if not n:
            break
        if first is None:
            first = time.monotonic()
        h.update(memoryview(buf)[:n])
        count += n
except OSError as exc:
    result["recv_error"] = repr(exc)
end = time.monotonic()
result.update(received=count, received_sha=h.hexdigest(), recv_seconds=(end - first) if first else 0.0)
if cfg.get("reply_after_eof"):
    send()
elif sender is not None:
    sender.join(limit)
sock.close()
print(json.dumps(result), flush=True)
"""
)

# argv: host port count size seed limit max_pending.  Opens `count` connections to an echo
# service (at most max_pending connects in progress at once) and keeps them all open;
# prints "connected N" and waits for a line on stdin; then every connection sends `size`
# octets (index + seeded random) and reads them back, shuts down writing and reads the
# peer's EOF; then all close.  Prints JSON.
MANY_CLIENTS_SCRIPT = r"""
import json, random, selectors, socket, sys, time
host, port, count, size, seed, limit, max_pending = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
    int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]))
deadline = time.monotonic() + limit
sel = selectors.DefaultSelector()
socks, pending, errors, started = [], 0, [], 0
t0 = time.monotonic()
def start_one():
    global started, pending
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((host, port))
    sel.register(s, selectors.EVENT_WRITE, started)
    socks.append(s)
    started += 1
    pending += 1
connected = 0
while connected + len(errors) < count:
    assert time.monotonic() < deadline, f"connect phase timed out ({connected} connected)"
    while started < count and pending < max_pending:
        start_one()
    for key, _ in sel.select(1.0):
        s = key.fileobj
        sel.unregister(s)
        pending -= 1
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            errors.append((key.data, err))
        else:
            connected += 1
connect_seconds = time.monotonic() - t0
print("connected", connected, flush=True)
sys.stdin.readline()
t1 = time.monotonic()
state = {}
for i, s in enumerate(socks):
    data = i.to_bytes(4, "big") + random.Random(seed + i).randbytes(size - 4)
    state[s] = {"i": i, "out": memoryview(data), "want": data, "in": bytearray(), "phase": "echo"}
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, state[s])
intact, corrupt, clean_eof, resets, extra = 0, 0, 0, 0, 0
open_count = len(socks)
while open_count:
    assert time.monotonic() < deadline, f"exchange phase timed out ({open_count} still open)"
    for key, mask in sel.select(1.0):
        s, st = key.fileobj, key.data
        try:
            if mask & selectors.EVENT_WRITE and st["out"]:
                n = s.send(st["out"])
                st["out"] = st["out"][n:]
                if not st["out"]:
                    sel.modify(s, selectors.EVENT_READ, st)
            if mask & selectors.EVENT_READ:
                data = s.recv(65536)
                if st["phase"] == "echo":
                    st["in"] += data
                    if len(st["in"]) >= size or not data:
                        if bytes(st["in"][:size]) == st["want"] and len(st["in"]) == size:
                            intact += 1
                        else:
                            corrupt += 1
                        st["phase"] = "eof"
                        s.shutdown(socket.SHUT_WR)
                        if not data:
                            raise EOFError
                elif data:
                    extra += len(data)
                else:
                    clean_eof += 1
                    raise EOFError
        except EOFError:
            sel.unregister(s)
            open_count -= 1
        except OSError as exc:
            resets += 1
            sel.unregister(s)
            open_count -= 1
exchange_seconds = time.monotonic() - t1
for s in socks:
    s.close()
print(json.dumps({"connected": connected, "connect_errors": errors[:10], "intact": intact, "corrupt": corrupt,
                  "clean_eof": clean_eof, "resets": resets, "extra": extra, "connect_seconds": connect_seconds,
                  "exchange_seconds": exchange_seconds}), flush=True)
"""

# argv: host port limit.  An echo server for many connections (selectors): echoes what it
# reads, closes a connection after its EOF once everything was echoed.  Prints "ready";
# stops after `limit` seconds or on a line on stdin; prints JSON.
ECHO_SERVER_SCRIPT = r"""
import json, selectors, socket, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + limit
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, port))
ls.listen(1024)
ls.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(ls, selectors.EVENT_READ, None)
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
accepted, closed, octets, errors = 0, 0, 0, 0
print("ready", flush=True)
running = True
while running and time.monotonic() < deadline:
    for key, mask in sel.select(0.5):
        if key.data == "stdin":
            running = False
            break
        if key.data is None:
            while True:
                try:
                    s, _ = ls.accept()
                except BlockingIOError:
                    break
                s.setblocking(False)
                accepted += 1
                sel.register(s, selectors.EVENT_READ, {"out": bytearray()})
            continue
        s, st = key.fileobj, key.data
        try:
            if mask & selectors.EVENT_READ:
                data = s.recv(65536)
                if data:
                    octets += len(data)
                    st["out"] += data
                else:
                    st["eof"] = True
            if st["out"]:
                n = s.send(st["out"])
                del st["out"][:n]
            if st.get("eof") and not st["out"]:
                sel.unregister(s)
                s.close()
                closed += 1
            else:
                sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if st["out"] else 0), st)
        except OSError:
            errors += 1
            sel.unregister(s)
            s.close()
print(json.dumps({"accepted": accepted, "closed": closed, "octets": octets, "errors": errors}), flush=True)
"""

# argv: host port rcvbuf pause limit.  Accepts one connection (SO_RCVBUF set before listen),
# prints "accepted", sleeps `pause` seconds without reading, then reads and hashes until EOF.
SLOW_READER_SCRIPT = r"""
import hashlib, json, socket, sys, time
host, port, rcvbuf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pause, limit = float(sys.argv[4]), float(sys.argv[5])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
ls.bind((host, port))
ls.listen(1)
ls.settimeout(limit)
print("ready", flush=True)
sock, _ = ls.accept()
print("accepted", time.monotonic(), flush=True)
time.sleep(pause)
resumed = time.monotonic()
print("reading", flush=True)
sock.settimeout(limit)
h, count = hashlib.sha256(), 0
while data := sock.recv(1 << 16):
    h.update(data)
    count += len(data)
done = time.monotonic()
sock.close()
print(json.dumps({"received": count, "received_sha": h.hexdigest(), "read_seconds": done - resumed}), flush=True)
"""

# Commands on stdin, one JSON object a line, answered with one JSON line each:
#   {"send": [hex, ...], "capture": seconds, "sport": P, "dport": Q}
# sends the IPv4 packets as they are (IP_HDRINCL) and then reports the TCP segments that
# arrive from port P to port Q during `capture` seconds (a raw socket sees a copy of every
# incoming TCP segment; the kernel's own socket still gets them).
INJECT_SCRIPT = r"""
import json, select, socket, struct, sys, time
dst = sys.argv[1]
tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
tx.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
rx.setblocking(False)
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    while True:  # drop what arrived before this command
        try:
            rx.recv(65535)
        except BlockingIOError:
            break
    for h in cmd["send"]:
        tx.sendto(bytes.fromhex(h), (dst, 0))
    seen, end = [], time.monotonic() + cmd["capture"]
    while (left := end - time.monotonic()) > 0:
        if not select.select([rx], [], [], left)[0]:
            continue
        pkt = rx.recv(65535)
        ihl = (pkt[0] & 15) * 4
        sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", pkt[ihl:ihl + 16])
        if sport == cmd["sport"] and dport == cmd["dport"]:
            seen.append({"seq": seq, "ack": ack, "flags": flags, "len": len(pkt) - ihl - (off >> 4) * 4})
    print(json.dumps(seen), flush=True)
"""


# argv: host port limit.  Connects, sends "hello", then reads until EOF or an error; prints JSON.
RESET_VICTIM_SCRIPT = r"""
import json, socket, sys
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.create_connection((host, port), timeout=limit)
sock.sendall(b"hello")
result = {"data": 0}
try:
    while data := sock.recv(65536):
        result["data"] += len(data)
    result["end"] = "eof"
except ConnectionResetError as exc:
    result["end"] = "ECONNRESET"
except OSError as exc:
    result["end"] = repr(exc)
print(json.dumps(result), flush=True)
"""


# argv: role host port.  role "client" connects to host:port; role "server" listens there,
# prints "ready" and accepts one connection.  Prints {"local": ..., "peer": ...}, then runs
# commands from stdin, one JSON object a line, answering each with one JSON line:
#   {"send": HEX}  {"recv": N, "timeout": S} (exactly N octets, or what came before EOF)
#   {"shutdown": 1}  {"eof": S} (read until EOF)  {"abort": 1} (close with SO_LINGER 0: RST)
#   {"close": 1}
PUPPET_SCRIPT = r"""
import json, socket, struct, sys, time
role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if role == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(20)
    print("ready", flush=True)
    sock, _ = ls.accept()
    ls.close()
else:
    sock = socket.create_connection((host, port), timeout=20)
print(json.dumps({"local": list(sock.getsockname()), "peer": list(sock.getpeername())}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    out = {"ok": True}
    try:
        if "send" in cmd:
            sock.sendall(bytes.fromhex(cmd["send"]))
        elif "recv" in cmd:
            sock.settimeout(cmd.get("timeout", 5))
            buf = b""
            while len(buf) < cmd["recv"]:
                d = sock.recv(cmd["recv"] - len(buf))
                if not d:
                    out["eof"] = True
                    break
                buf += d
            out["data"] = buf.hex()
        elif "eof" in cmd:
            sock.settimeout(cmd["eof"])
            n = 0
            while d := sock.recv(65536):
                n += len(d)
            out["data_before_eof"] = n
        elif "shutdown" in cmd:
            sock.shutdown(socket.SHUT_WR)
        elif "abort" in cmd:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        elif "close" in cmd:
            sock.close()
    except OSError as exc:
        out = {"error": type(exc).__name__, "errno": exc.errno}
    print(json.dumps(out), flush=True)
"""


class Puppet:
    """A kernel socket in the namespace, driven command by command (:data:`PUPPET_SCRIPT`)."""

    def __init__(self, ns: NetNamespace, role: str, host: str, port: int) -> None:
        self.proc = start_script(ns, PUPPET_SCRIPT, role, host, port, stdin=True)
        self.info: dict[str, Any] = {}

    def ready(self) -> None:
        """(server) Wait until it listens."""
        assert read_line(self.proc, 15) == "ready"

    def connected(self) -> dict[str, Any]:
        """Wait until the connection is up; its endpoints."""
        self.info = json.loads(read_line(self.proc, 15))
        return self.info

    @property
    def port(self) -> int:
        return int(self.info["local"][1])

    def __call__(self, timeout: float = 15, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(read_line(self.proc, timeout))
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def start_script(ns: NetNamespace, script: str, *args: object, stdin: bool = False) -> subprocess.Popen[bytes]:
    return ns.popen(
        sys.executable, "-c", script, *map(str, args),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The script's next stdout line (AssertionError on EOF or after ``timeout``)."""
    assert proc.stdout is not None
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        err = b""
        if proc.poll() is not None and proc.stderr is not None:
            err = proc.stderr.read()
        raise AssertionError(f"no line from the script within {timeout} s: {err.decode(errors='replace')[-2000:]}")
    return box[0].decode(errors="replace").strip()


def finish(proc: subprocess.Popen[bytes], timeout: float, stdin: bytes | None = None) -> Any:
    """Wait for the script and parse its last stdout line as JSON."""
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"script timed out after {timeout} s: {err.decode(errors='replace')[-2000:]}")
    lines = out.decode(errors="replace").strip().splitlines()
    assert proc.returncode == 0 and lines, f"script failed ({proc.returncode}): {err.decode(errors='replace')[-3000:]}"
    return json.loads(lines[-1])


# --------------------------------------------------------------------------
# the kernel's view: ss and the SNMP counters of the namespace
# --------------------------------------------------------------------------


@dataclass
class SsEntry:
    state: str
    local: str
    peer: str
    info: str
    tokens: list[str] = field(default_factory=list)

    def value(self, key: str) -> str | None:
        for tok in self.tokens:
            if tok.startswith(key + ":"):
                return tok[len(key) + 1 :]
        return None


def ss_connections(ns: NetNamespace, *filters: str) -> list[SsEntry]:
    """``ss -tanioH`` in the namespace, one entry per socket (``-o`` is needed too: iproute2
    6.1 prints the ``ts``/``sack`` flags only with it)."""
    out = ns.run("ss", "-tanioH", *filters, timeout=10).stdout.decode(errors="replace")
    entries: list[SsEntry] = []
    for line in out.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t":
            if entries:
                entries[-1].info += " " + line.strip()
                entries[-1].tokens = entries[-1].info.split()
            continue
        parts = line.split()
        # State Recv-Q Send-Q Local Peer [timer:(...)]  (no State column when filtered by state)
        if parts[0][0].isdigit():
            parts = ["?", *parts]
        entries.append(SsEntry(parts[0], parts[3], parts[4], ""))
    return entries


def ss_states(ns: NetNamespace) -> dict[str, int]:
    """How many TCP sockets of the namespace are in each state (listeners included)."""
    counts: dict[str, int] = {}
    for entry in ss_connections(ns):
        counts[entry.state] = counts.get(entry.state, 0) + 1
    return counts


def kernel_snmp(ns: NetNamespace) -> dict[str, int]:
    """The namespace's Tcp: and TcpExt: counters (``/proc/net/snmp``, ``/proc/net/netstat``)."""
    out = ns.run("cat", "/proc/net/snmp", "/proc/net/netstat", timeout=10).stdout.decode()
    counters: dict[str, int] = {}
    lines = out.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        prefix, _, keys = names.partition(":")
        if prefix not in ("Tcp", "TcpExt") or not values.startswith(prefix + ":"):
            continue
        for key, value in zip(keys.split(), values.partition(":")[2].split(), strict=True):
            counters[f"{prefix}.{key}"] = int(value)
    return counters


# --------------------------------------------------------------------------
# hand-made TCP segments (independent of wipstack's wire code)
# --------------------------------------------------------------------------

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip4(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def tcp_packet(
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    *,
    window: int = 1024,
    payload: bytes = b"",
    timestamps: tuple[int, int] | None = None,
    src: str = KERNEL_ADDRESS,
    dst: str = WIPSTACK_ADDRESS,
) -> bytes:
    """An IPv4 datagram carrying one TCP segment with correct checksums."""
    options = b""
    if timestamps is not None:
        options = struct.pack("!BBBBII", 1, 1, 8, 10, timestamps[0] & 0xFFFFFFFF, timestamps[1] & 0xFFFFFFFF)
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, offset << 4, flags,
                         window, 0, 0) + options  # fmt: skip
    segment = bytearray(header + payload)
    pseudo = _ip4(src) + _ip4(dst) + struct.pack("!BBH", 0, 6, len(segment))
    segment[16:18] = struct.pack("!H", _checksum(pseudo + bytes(segment)))
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0x5151, 0x4000, 64, 6, 0,
                               _ip4(src), _ip4(dst)))  # fmt: skip
    ip[10:12] = struct.pack("!H", _checksum(bytes(ip)))
    return bytes(ip) + bytes(segment)


class Injector:
    """The :data:`INJECT_SCRIPT` running in the namespace."""

    def __init__(self, ns: NetNamespace) -> None:
        self.proc = start_script(ns, INJECT_SCRIPT, WIPSTACK_ADDRESS, stdin=True)
        assert read_line(self.proc, 15) == "ready"

    def send(self, packets: list[bytes], *, sport: int, dport: int, capture: float = 0.4) -> list[dict[str, int]]:
        """Send ``packets``; the segments from sport to dport seen in the next ``capture`` seconds."""
        assert self.proc.stdin is not None
        cmd = {"send": [p.hex() for p in packets], "capture": capture, "sport": sport, "dport": dport}
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        seen: list[dict[str, int]] = json.loads(read_line(self.proc, capture + 10))
        return seen

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def flag_names(flags: int) -> str:
    return "".join(name for bit, name in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, ".")) if flags & bit)


_WSCALE = re.compile(r"wscale:(\d+),(\d+)")


def ss_wscale(entry: SsEntry) -> tuple[int, int] | None:
    """(snd_wscale, rcv_wscale) as ss shows them (the peer's shift first)."""
    match = _WSCALE.search(entry.info)
    return (int(match[1]), int(match[2])) if match else None
