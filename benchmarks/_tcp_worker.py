"""The processes of ``bench_tcp`` (a helper module, not a benchmark: no ``bench_`` prefix).

wipstack sides (each creates the network namespaces it needs, announces them on stdout as
``{"event": "netns", ...}`` before anything else so the parent can delete them if it dies, and
deletes them on the way out, also on errors):

* ``worker``: one process per implementation (the parent sets ``WIPSTACK_NO_EXTENSIONS=1``
  for pure Python).  One namespace, two TUN devices whose kernel side is in it::

      this process (host namespace)                  namespace <wiptcp-test-PID-N>
      Stack + NetLoop + 2 TunPorts  <-- tun fds -->  tunA  MTU 1500   192.0.2.1
      192.0.2.2 / 198.51.100.2                       tunB  MTU 65000  198.51.100.1

  wipstack runs the TCP discard service of ``wipstack.drivers.services`` (port 9) and a
  streaming source (port 19, see :class:`SourceService` for why not chargen); JSON commands on
  stdin (one per line) run a kernel client in the namespace against them (``tcp_in``: kernel ->
  wipstack discard, ``tcp_out``: wipstack source -> kernel), optionally
  under cProfile on the loop's thread, or a TCP transfer over a PPP link on a pty pair to a
  second wipstack process (``ppp``, the ``ppp-peer`` sub-command);
* ``lossy-wip``: wipstack with a :class:`~wipstack.drivers.faults.FaultyTunPort` (the
  impairment both ways) against the kernel in a namespace, one transfer;
* ``lossy-kernel``: the kernel against the kernel, two namespaces whose TUN devices are joined
  by a relay in this process that pushes every datagram through a
  :class:`~wipstack.drivers.faults.FaultInjector` per direction (the very code FaultyTunPort
  uses, seeded the same way), one transfer;
* ``kernel-veth``: the kernel against the kernel over a veth pair (the bulk rows' reference).

Kernel sides, run *inside* a namespace, import nothing from wipstack, print ``ready`` once
listening (servers) and one JSON line with their figures at the end:

* ``tcp-send``: connect, send ``--bytes`` (or for ``--seconds``), half-close, wait for the
  peer's FIN (everything was read); figures from before ``connect()`` to that FIN;
* ``tcp-recv``: connect, read ``--bytes`` (or for ``--seconds``), close; figures from before
  ``connect()`` to the last octet;
* ``tcp-sink`` / ``tcp-source``: servers for one connection (discard / chargen-like).

Every process has a hard time limit; only TEST-NET addresses are used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DISCARD_PORT, CHARGEN_PORT = 9, 19
# (MTU, kernel's address, wipstack's address): TEST-NET-1 and TEST-NET-2
LINKS = {1500: ("192.0.2.1", "192.0.2.2"), 65000: ("198.51.100.1", "198.51.100.2")}
PPP_LOCAL, PPP_PEER = "203.0.113.1", "203.0.113.2"  # TEST-NET-3, on the pty PPP link
TXQUEUELEN = 500  # the kernel's TUN queue (Linux default), set explicitly
CHUNK = 1 << 16
HELPER_GRACE = 20.0  # seconds past a helper's own bound before it is killed
TCP_INFO_FORMAT = "<8B24I"  # struct tcp_info up to tcpi_total_retrans


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def payload_block(size: int = CHUNK) -> bytes:
    return random.Random(size).randbytes(size)


# ---------------------------------------------------------------------------------------------
# kernel side (runs inside a namespace; no wipstack imports)
# ---------------------------------------------------------------------------------------------


def tcp_info(sock: socket.socket) -> dict[str, Any]:
    """A few tcp_info fields and the congestion control of ``sock``."""
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError, struct.error):
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, struct.calcsize(TCP_INFO_FORMAT))
        fields = struct.unpack(TCP_INFO_FORMAT, raw)
        u32 = fields[8:]
        info.update(snd_mss=u32[2], rtt_ms=u32[15] / 1000, snd_cwnd=u32[18], total_retrans=u32[23])
    with contextlib.suppress(OSError):
        info["cc"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()
    return info


def _limit(args: argparse.Namespace) -> float:
    return float(args.limit)


def new_socket(args: argparse.Namespace) -> socket.socket:
    """A TCP socket with congestion control ``--cc`` pinned (per socket: root in the namespace may
    choose any available algorithm, while its sysctl default only takes the host's allowed ones)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.cc:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, args.cc.encode())
    return sock


def tcp_send(args: argparse.Namespace) -> dict[str, Any]:
    """Send ``bytes`` (at most ``seconds`` of queueing), half-close, wait for the peer's FIN."""
    block = payload_block()
    view = memoryview(block)
    sock = new_socket(args)
    sock.settimeout(_limit(args))
    print("ready", flush=True)
    started = time.monotonic()
    sock.connect((args.dst, args.port))
    connected = time.monotonic()
    deadline = started + args.seconds if args.seconds > 0 else float("inf")
    sent = 0
    while sent < args.bytes and time.monotonic() < deadline:
        n = min(CHUNK, args.bytes - sent)
        sock.sendall(view[:n])
        sent += n
    queued = time.monotonic()
    info = tcp_info(sock)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(CHUNK):  # the receiver closes once it has read everything
        pass
    end = time.monotonic()
    info = tcp_info(sock) or info
    sock.close()
    return {"bytes": sent, "elapsed": end - started, "connect": connected - started, "queued": queued - started,
            "start": started, "end": end, **info}  # fmt: skip


def tcp_recv(args: argparse.Namespace) -> dict[str, Any]:
    """Read ``bytes`` (or for ``seconds``) from a sending server, then close."""
    sock = new_socket(args)
    sock.settimeout(_limit(args))
    buffer = bytearray(1 << 18)
    print("ready", flush=True)
    started = time.monotonic()
    sock.connect((args.dst, args.port))
    connected = time.monotonic()
    deadline = started + args.seconds if args.seconds > 0 else float("inf")
    count = 0
    first = last = 0.0
    while count < args.bytes:
        n = sock.recv_into(buffer)
        if not n:
            break
        count += n
        last = time.monotonic()
        if not first:
            first = last
        if last >= deadline:
            break
    info = tcp_info(sock)
    sock.close()
    return {"bytes": min(count, args.bytes), "elapsed": last - started, "connect": connected - started,
            "first_byte": first - started, "start": started, "end": last, **info}  # fmt: skip


def _accept_one(args: argparse.Namespace) -> socket.socket:
    server = new_socket(args)  # accepted sockets inherit its congestion control
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.bind, args.port))
    server.listen(1)
    server.settimeout(_limit(args))
    print("ready", flush=True)
    sock, _ = server.accept()
    server.close()
    sock.settimeout(_limit(args))
    return sock


def tcp_sink(args: argparse.Namespace) -> dict[str, Any]:
    """One connection: read until EOF, then close (like a discard server)."""
    sock = _accept_one(args)
    buffer = bytearray(1 << 18)
    count = 0
    while n := sock.recv_into(buffer):
        count += n
    info = tcp_info(sock)
    sock.close()
    return {"bytes": count, **info}


def tcp_source(args: argparse.Namespace) -> dict[str, Any]:
    """One connection: send until the peer closes (like a chargen server)."""
    sock = _accept_one(args)
    view = memoryview(payload_block())
    sent = 0
    info: dict[str, Any] = {}
    deadline = time.monotonic() + _limit(args)
    with contextlib.suppress(OSError):
        while time.monotonic() < deadline:
            sock.sendall(view)
            sent += len(view)
            info = tcp_info(sock)
    sock.close()
    return {"bytes": sent, **info}


# ---------------------------------------------------------------------------------------------
# shared by the wipstack sides
# ---------------------------------------------------------------------------------------------


def _harness() -> Any:
    sys.path.insert(0, str(ROOT))
    from tests.harness import netns

    return netns


def new_namespace(prefix: str) -> Any:
    """A namespace with lo up and IPv6 off."""
    ns = _harness().NetNamespace(prefix=prefix)
    emit({"event": "netns", "netns": ns.name})
    try:
        ns.ip("link", "set", "lo", "up")
        ns.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
               check=False)  # fmt: skip
    except BaseException:
        ns.close()
        raise
    return ns


def namespace_cc(ns: Any) -> str:
    """The namespace's default congestion control (helpers may pin another one per socket)."""
    return str(ns.run("sysctl", "-n", "net.ipv4.tcp_congestion_control").stdout.decode().strip())


def start_helper(ns: Any, *argv: str) -> subprocess.Popen[bytes]:
    """A kernel-side helper in ``ns``; returns once it printed ``ready``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc: subprocess.Popen[bytes] = ns.popen(
        sys.executable, "-m", "benchmarks._tcp_worker", *argv,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=env, bufsize=0,
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        kill(proc)
        errors = proc.stderr.read()[-600:] if proc.stderr is not None else b""
        raise RuntimeError(f"helper {argv[0]} did not start: {line!r} {errors!r}")
    return proc


def finish(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise RuntimeError("helper overran its time bound and was killed") from None
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"helper failed (exit {proc.returncode}): {err.decode(errors='replace')[-600:]}")
    return dict(json.loads(lines[-1]))


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own process group, led by this PID
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def client_argv(kind: str, dst: str, port: int, nbytes: int, seconds: float, limit: float, cc: str) -> list[str]:
    return [kind, "--dst", dst, "--port", str(port), "--bytes", str(nbytes), "--seconds", str(seconds),
            "--limit", str(limit), "--cc", cc]  # fmt: skip


def server_argv(kind: str, bind: str, port: int, limit: float, cc: str) -> list[str]:
    return [kind, "--bind", bind, "--port", str(port), "--limit", str(limit), "--cc", cc]


def loop_thread_clock(loop: Any) -> int:
    ident = loop.call(threading.get_ident)
    return time.pthread_getcpuclockid(ident)


class SourceService:
    """A TCP server streaming a random 64 KiB block over and over until the peer closes.

    Used instead of ``TcpService(kind="chargen")``: chargen only writes while ``send_space > 0``,
    and when its 64 KiB pattern fills the 256 KiB send buffer exactly, ``TcpConnection.send``
    never saw a short write, so no ``SendSpace`` event comes and chargen stops after 256 KiB.
    This one calls ``send`` until it returns 0, which arms ``SendSpace``.
    """

    def __init__(self, stack: Any, port: int) -> None:
        from wipstack.tcp.socket import TcpServer

        self.block = memoryview(payload_block())
        self.sockets: list[Any] = []
        self.sent: list[int] = []
        self.server = TcpServer(stack.tcp, port, backlog=64)
        self.server.on_accept = self._accepted

    def _accepted(self, sock: Any) -> None:
        from wipstack.tcp.events import Connected, DataAvailable, PeerClosed, SendSpace

        self.sockets.append(sock)
        self.sent.append(0)
        index = len(self.sent) - 1

        def pump() -> None:
            offset = self.sent[index] % CHUNK
            while True:
                n = sock.send(self.block[offset:])
                if n == 0:
                    return
                self.sent[index] += n
                offset = (offset + n) % CHUNK

        def on_event(s: Any, event: Any) -> None:
            if isinstance(event, Connected | SendSpace):
                pump()
            elif isinstance(event, DataAvailable):
                s.recv()
            elif isinstance(event, PeerClosed):
                s.recv()
                s.close()

        sock.on_event = on_event
        pump()

    def last_stats(self) -> dict[str, Any]:
        return AcceptLog.stats_of(self.sockets[-1]) if self.sockets else {}


class AcceptLog:
    """Wraps a TcpService's accept callback to keep its sockets (for their statistics)."""

    def __init__(self, service: Any) -> None:
        self.sockets: list[Any] = []
        self.service = service
        self._inner = service.server.on_accept
        service.server.on_accept = self

    def __call__(self, sock: Any) -> None:
        self.sockets.append(sock)
        self._inner(sock)

    def last_stats(self) -> dict[str, Any]:
        if not self.sockets:
            return {}
        finished = self.service.stats.finished
        return {**self.stats_of(self.sockets[-1]), "bytes_in": finished[-1][0] if finished else None}

    @staticmethod
    def stats_of(sock: Any) -> dict[str, Any]:
        conn = sock.connection
        return {"retransmitted": conn.retransmitted_segments, "timeouts": conn.timeouts,
                "fast_recoveries": conn.fast_recoveries, "segments_sent": conn.segments_sent, "mss": conn.mss,
                "state": conn.state.name}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# wipstack applications for the PPP link (run on the loop's thread)
# ---------------------------------------------------------------------------------------------


class TimedSender:
    """Connect, send ``nbytes`` (queueing stops after ``seconds``), half-close; done when the peer closes."""

    def __init__(self, stack: Any, host: str, port: int, nbytes: int, seconds: float, done: threading.Event) -> None:
        from wipstack.tcp.socket import TcpSocket

        self.nbytes, self.done = nbytes, done
        self.block = payload_block()
        self.sent = 0
        self.shut = False
        self.error: str | None = None
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self.finished = 0.0
        self.sock = TcpSocket.connect(stack.tcp, host, port, self.started)
        self.sock.on_event = self._on_event

    def _pump(self) -> None:
        sock = self.sock
        while self.sent < self.nbytes and time.monotonic() < self.deadline:
            offset = self.sent % CHUNK
            n = sock.send(memoryview(self.block)[offset : offset + min(CHUNK - offset, self.nbytes - self.sent)])
            if n == 0:
                return
            self.sent += n
        if not self.shut:
            self.shut = True
            sock.shutdown()

    def _on_event(self, sock: Any, event: Any) -> None:
        from wipstack.tcp.events import Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace

        if isinstance(event, Connected | SendSpace):
            self._pump()
        elif isinstance(event, DataAvailable):
            sock.recv()
        elif isinstance(event, PeerClosed):  # the discard server closes after reading everything
            sock.recv()
            self.finished = time.monotonic()
            sock.close()
            self.done.set()
        elif isinstance(event, ConnectionFailed):
            self.error = f"{event.errno_name}: {event.reason}"
            self.done.set()


class TimedReceiver:
    """Connect to a sending server, read ``nbytes`` (or for ``seconds``), then reset."""

    def __init__(self, stack: Any, host: str, port: int, nbytes: int, seconds: float, done: threading.Event) -> None:
        from wipstack.tcp.socket import TcpSocket

        self.nbytes, self.done = nbytes, done
        self.received = 0
        self.error: str | None = None
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self.finished = 0.0
        self.sock = TcpSocket.connect(stack.tcp, host, port, self.started)
        self.sock.on_event = self._on_event

    def _on_event(self, sock: Any, event: Any) -> None:
        from wipstack.tcp.events import ConnectionFailed, DataAvailable, PeerClosed

        if self.done.is_set():
            return
        if isinstance(event, DataAvailable | PeerClosed):
            self.received += len(sock.recv())
            now = time.monotonic()
            if self.received >= self.nbytes or now >= self.deadline or isinstance(event, PeerClosed):
                self.finished = now
                sock.abort()
                self.done.set()
        elif isinstance(event, ConnectionFailed):
            self.error = f"{event.errno_name}: {event.reason}"
            self.done.set()


# ---------------------------------------------------------------------------------------------
# ``worker``: bulk over TUN, PPP over a pty, profile
# ---------------------------------------------------------------------------------------------


class Worker:
    """wipstack on two TUN devices whose kernel side is in one namespace of its own."""

    def __init__(self, cc: str) -> None:
        from wipstack import accel

        self.accel = accel
        self.loop: Any = None
        self.devices: list[Any] = []
        self.ppp: dict[str, Any] | None = None
        self.cc = cc
        self.ns = new_namespace("wiptcp")
        try:
            self.cc_default = namespace_cc(self.ns)
            self._set_up()
        except BaseException:
            self.close()
            raise

    def _set_up(self) -> None:
        from wipstack.drivers.netloop import NetLoop
        from wipstack.drivers.ports import TunPort
        from wipstack.drivers.services import TcpService
        from wipstack.drivers.tun import TunDevice
        from wipstack.net import Interface, Stack
        from wipstack.wire.ipv4 import address

        self.stack = Stack(random.Random(1))
        self.loop = NetLoop(self.stack)
        for mtu, (kernel, wip) in LINKS.items():
            device = TunDevice(f"wtcp{os.getpid()}m{mtu // 1000}"[-15:], mtu=mtu)  # two in one namespace
            self.devices.append(device)
            device.move_to_netns(self.ns.name)
            device.configure_kernel_side(wip, kernel, netns=self.ns.name)
            self.ns.ip("link", "set", "dev", device.name, "txqueuelen", str(TXQUEUELEN))
            interface = Interface(device.name, address(wip), peer=address(kernel), mtu=mtu)
            self.loop.add_port(TunPort(self.stack, interface, device))
        self.discard = TcpService(self.stack, DISCARD_PORT, "discard")
        self.discard_log = AcceptLog(self.discard)
        self.source = SourceService(self.stack, CHARGEN_PORT)
        self.loop.start()
        self.loop_clock = loop_thread_clock(self.loop)

    def loop_cpu(self) -> float:
        return time.clock_gettime(self.loop_clock)

    def close(self) -> None:
        if self.ppp is not None:
            with contextlib.suppress(Exception):
                self._ppp_close()
        with contextlib.suppress(Exception):
            if self.loop is not None:
                self.loop.close()  # closes the TUN devices too
        for device in self.devices:
            with contextlib.suppress(Exception):
                device.close()
        self.ns.close()

    def drops(self) -> dict[str, int]:
        def collect() -> dict[str, int]:
            counts = {k: v for k, v in self.stack.counters().items() if "drop" in k and v}
            counts.update({f"tcp_{r.name.lower()}": n for r, n in self.stack.tcp.drops.items() if n})
            return counts

        with contextlib.suppress(Exception):
            return dict(self.loop.call(collect))
        return {}

    # ----- TUN bulk -----

    def _bulk(self, kind: str, port: int, log: Any, mtu: int, nbytes: int, seconds: float,
              profile: bool) -> dict[str, Any]:  # fmt: skip
        import cProfile

        kernel, wip = LINKS[mtu]
        limit = seconds + HELPER_GRACE
        helper = start_helper(self.ns, *client_argv(kind, wip, port, nbytes, seconds, limit, self.cc))
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            self.loop.call(profiler.enable)
        cpu = self.loop_cpu()
        try:
            result = finish(helper, limit + 5)
        finally:
            kill(helper)
        cpu = self.loop_cpu() - cpu
        if profiler is not None:
            self.loop.call(profiler.disable)
            result["profile"] = profile_text(profiler, 15)
        result["cpu"] = cpu
        result["rate"] = result["bytes"] * 8 / result["elapsed"] if result["elapsed"] > 0 else 0.0
        result["wipstack"] = self.loop.call(log.last_stats)
        return result

    def op_tcp_in(self, mtu: int, nbytes: int, seconds: float, profile: bool = False) -> dict[str, Any]:
        return self._bulk("tcp-send", DISCARD_PORT, self.discard_log, mtu, nbytes, seconds, profile)

    def op_tcp_out(self, mtu: int, nbytes: int, seconds: float, profile: bool = False) -> dict[str, Any]:
        return self._bulk("tcp-recv", CHARGEN_PORT, self.source, mtu, nbytes, seconds, profile)

    # ----- PPP on a pty -----

    def _ppp_open(self) -> dict[str, Any]:
        from ipaddress import IPv4Address

        from wipstack.drivers.link import PtyLink
        from wipstack.drivers.netloop import NetLoop
        from wipstack.drivers.ports import PppPort
        from wipstack.net import Stack
        from wipstack.ppp.config import CpConfig, IpcpConfig, PppConfig
        from wipstack.ppp.session import PppSession

        pty = PtyLink()
        stack = Stack(random.Random(11))
        loop = NetLoop(stack)
        config = PppConfig(
            ipcp=IpcpConfig(local_address=IPv4Address(PPP_LOCAL), peer_address=IPv4Address(PPP_PEER)),
            cp=CpConfig(restart_interval=1.0),
        )
        port = PppPort(stack, PppSession(config, random.Random(12)), pty)
        loop.add_port(port)
        loop.call(port.open)
        self.ppp = {"pty": pty, "loop": loop, "port": port, "stack": stack, "peer": None}
        loop.start()
        env = dict(os.environ, PYTHONPATH=str(ROOT))  # the same implementation as this process
        peer = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._tcp_worker", "ppp-peer", "--path", pty.slave_path, "--limit", "120"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=env,
            start_new_session=True,
        )  # fmt: skip
        self.ppp["peer"] = peer
        assert peer.stdout is not None
        ready, _, _ = select.select([peer.stdout], [], [], 20)
        line = peer.stdout.readline() if ready else b""
        deadline = time.monotonic() + 10
        while not loop.call(lambda: port.is_up) and time.monotonic() < deadline:
            time.sleep(0.01)
        if line.strip() != b"ready" or not loop.call(lambda: port.is_up):
            raise RuntimeError(f"the PPP link did not come up: {line!r}")
        self.ppp["clock"] = loop_thread_clock(loop)
        return self.ppp

    def _ppp_close(self) -> None:
        ppp, self.ppp = self.ppp, None
        if ppp is None:
            return
        peer = ppp["peer"]
        if peer is not None:
            with contextlib.suppress(OSError):
                peer.stdin.close()
            try:
                peer.wait(10)
            except subprocess.TimeoutExpired:
                kill(peer)
        ppp["loop"].close()

    def op_ppp(self, direction: str, nbytes: int, seconds: float) -> dict[str, Any]:
        ppp = self.ppp or self._ppp_open()
        loop, stack = ppp["loop"], ppp["stack"]
        done = threading.Event()
        cpu = time.clock_gettime(ppp["clock"])
        if direction == "out":
            app: Any = loop.call(lambda: TimedSender(stack, PPP_PEER, DISCARD_PORT, nbytes, seconds, done))
        else:
            app = loop.call(lambda: TimedReceiver(stack, PPP_PEER, CHARGEN_PORT, nbytes, seconds, done))
        if not done.wait(seconds + HELPER_GRACE):
            loop.call(app.sock.abort)
            raise RuntimeError("the PPP transfer did not finish in time")
        cpu = time.clock_gettime(ppp["clock"]) - cpu
        if app.error is not None:
            raise RuntimeError(f"the PPP transfer failed: {app.error}")
        moved = app.sent if direction == "out" else app.received
        elapsed = app.finished - app.started
        conn = app.sock.connection
        return {"bytes": moved, "elapsed": elapsed, "rate": moved * 8 / elapsed, "cpu": cpu,
                "wipstack": {"retransmitted": conn.retransmitted_segments, "mss": conn.mss}}  # fmt: skip

    def serve(self) -> None:
        emit({"event": "ready", "implementation": self.accel.IMPLEMENTATION, "cc_default": self.cc_default,
              "cc": self.cc, "netns": self.ns.name, "tun": [d.name for d in self.devices]})  # fmt: skip
        for line in sys.stdin:
            command = json.loads(line)
            op = command.pop("op")
            if op == "quit":
                break
            try:
                result = getattr(self, f"op_{op}")(**command)
                if self.loop.error is not None:
                    raise RuntimeError(f"the network loop died: {self.loop.error!r}")
                result["drops"] = self.drops()
                emit({"event": "result", "result": result})
            except Exception as exc:
                emit({"event": "error", "error": f"{op}: {type(exc).__name__}: {exc}"})


def profile_text(profiler: Any, top: int) -> str:
    """pstats' table of the ``top`` entries by tottime, paths shortened."""
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    header = [line.strip() for line in lines[:start] if "function calls" in line]
    text = "\n".join(header + lines[start:]).rstrip()
    for prefix in (str(ROOT) + "/", os.path.dirname(os.__file__) + "/"):
        text = text.replace(prefix, "")
    return text


def ppp_peer(args: argparse.Namespace) -> int:
    """The other wipstack: PPP client on the pty slave (pyserial), TCP discard and chargen services."""
    from wipstack.drivers.link import SerialLink
    from wipstack.drivers.netloop import NetLoop
    from wipstack.drivers.ports import PppPort
    from wipstack.drivers.services import TcpService
    from wipstack.net import Stack
    from wipstack.ppp.config import CpConfig, PppConfig
    from wipstack.ppp.session import PppSession

    stack = Stack(random.Random(21))
    loop = NetLoop(stack)
    port = PppPort(stack, PppSession(PppConfig(cp=CpConfig(restart_interval=1.0)), random.Random(22)),
                   SerialLink(args.path))  # fmt: skip
    loop.add_port(port)
    services: list[Any] = [TcpService(stack, DISCARD_PORT, "discard"), SourceService(stack, CHARGEN_PORT).server]
    try:
        loop.call(port.open)
        loop.start()
        deadline = time.monotonic() + 15
        while not loop.call(lambda: port.is_up):
            if time.monotonic() > deadline:
                print("PPP link not up", flush=True)
                return 1
            time.sleep(0.01)
        print("ready", flush=True)
        select.select([sys.stdin], [], [], args.limit)  # until the worker closes our stdin
    finally:
        with contextlib.suppress(Exception):
            loop.call(lambda: [s.close() for s in services])
        loop.close()
    return 0


# ---------------------------------------------------------------------------------------------
# the slow lossy link
# ---------------------------------------------------------------------------------------------


def fault_config(spec: dict[str, Any]) -> Any:
    from wipstack.drivers.faults import FaultConfig

    return FaultConfig(**spec)


def lossy_wip(args: argparse.Namespace) -> dict[str, Any]:
    """wipstack (FaultyTunPort, the impairment both ways) against the kernel in a namespace."""
    from wipstack.drivers.faults import FaultyTunPort
    from wipstack.drivers.netloop import NetLoop
    from wipstack.drivers.ports import TunPort
    from wipstack.drivers.services import TcpService
    from wipstack.drivers.tun import TunDevice
    from wipstack.net import Interface, Stack
    from wipstack.wire.ipv4 import address

    kernel, wip = LINKS[1500]
    faults = fault_config(json.loads(args.faults))
    ns = new_namespace("wiplossy")
    device = loop = None
    try:
        cc = namespace_cc(ns)
        device = TunDevice(mtu=1500)
        device.move_to_netns(ns.name)
        device.configure_kernel_side(wip, kernel, netns=ns.name)
        stack = Stack(random.Random(args.seed))
        interface = Interface(device.name, address(wip), peer=address(kernel), mtu=1500)
        # inbound: datagrams from the kernel (its data when it sends); outbound: wipstack's
        port = FaultyTunPort.wrap(TunPort(stack, interface, device), inbound=faults, outbound=faults, seed=args.seed)
        loop = NetLoop(stack)
        loop.add_port(port)
        service: Any
        if args.direction == "in":
            service = TcpService(stack, DISCARD_PORT, "discard")
            log: Any = AcceptLog(service)
        else:
            service = log = SourceService(stack, CHARGEN_PORT)
        loop.start()
        kind = "tcp-send" if args.direction == "in" else "tcp-recv"
        helper = start_helper(ns, *client_argv(kind, wip, service.server.port, args.bytes, 0, args.limit, args.cc))
        try:
            result = finish(helper, args.limit + 5)
        finally:
            kill(helper)
        result.update(cc_default=cc, wipstack=loop.call(log.last_stats), faults=loop.call(lambda: port.counters))
        return result
    finally:
        with contextlib.suppress(Exception):
            if loop is not None:
                loop.close()
        if device is not None:
            device.close()
        ns.close()


class Relay(threading.Thread):
    """Joins two TUN devices through one FaultInjector per direction (explicit ``now``)."""

    def __init__(self, a: Any, b: Any, a_to_b: Any, b_to_a: Any) -> None:
        super().__init__(name="relay", daemon=True)
        self.a, self.b = a, b
        self.a_to_b, self.b_to_a = a_to_b, b_to_a
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.a.fileno(), selectors.EVENT_READ, (self.a, self.a_to_b))
        selector.register(self.b.fileno(), selectors.EVENT_READ, (self.b, self.b_to_a))
        routes = ((self.a_to_b, self.b), (self.b_to_a, self.a))
        while not self.stop.is_set():
            now = time.monotonic()
            deadlines = [d for d in (self.a_to_b.next_deadline(), self.b_to_a.next_deadline()) if d is not None]
            wait = min([0.1, *(max(0.0, d - now) for d in deadlines)])
            events = selector.select(wait)
            now = time.monotonic()
            for key, _ in events:
                device, injector = key.data
                for _ in range(256):
                    packet = device.read_packet()
                    if packet is None:
                        break
                    injector.push(packet, now)
            for injector, out in routes:
                for packet in injector.pop_ready(now):
                    out.write_packet(packet)
        selector.close()


def lossy_kernel(args: argparse.Namespace) -> dict[str, Any]:
    """The kernel against the kernel through the relay (namespace A: client, B: server)."""
    from wipstack.drivers.faults import FaultInjector
    from wipstack.drivers.tun import TunDevice

    kernel, wip = LINKS[1500]  # A takes the kernel's address of lossy-wip, B wipstack's
    faults = fault_config(json.loads(args.faults))
    devices: list[Any] = []
    namespaces: list[Any] = []
    relay: Relay | None = None
    try:
        ns_a = new_namespace("wiprelay")
        namespaces.append(ns_a)
        ns_b = new_namespace("wiprelay")
        namespaces.append(ns_b)
        cc = namespace_cc(ns_a)
        for ns, here, there in ((ns_a, kernel, wip), (ns_b, wip, kernel)):
            device = TunDevice(mtu=1500)
            devices.append(device)
            device.move_to_netns(ns.name)
            device.configure_kernel_side(there, here, netns=ns.name)
        # seeded as FaultyTunPort.wrap seeds its injectors: inbound (A -> B) first, outbound second
        master = random.Random(args.seed)
        a_to_b = FaultInjector(faults, random.Random(master.getrandbits(64)))
        b_to_a = FaultInjector(faults, random.Random(master.getrandbits(64)))
        relay = Relay(devices[0], devices[1], a_to_b, b_to_a)
        relay.start()
        port = DISCARD_PORT if args.direction == "in" else CHARGEN_PORT
        server = start_helper(ns_b, *server_argv("tcp-sink" if args.direction == "in" else "tcp-source", wip, port,
                                                 args.limit, args.cc))  # fmt: skip
        kind = "tcp-send" if args.direction == "in" else "tcp-recv"
        client = start_helper(ns_a, *client_argv(kind, wip, port, args.bytes, 0, args.limit, args.cc))
        try:
            result = finish(client, args.limit + 5)
            result["server"] = finish(server, 15)
        finally:
            kill(client)
            kill(server)
        if relay.error is not None:
            raise RuntimeError(f"relay failed: {relay.error!r}")
        result.update(cc_default=cc, faults={"inbound": dict(a_to_b.counters), "outbound": dict(b_to_a.counters)})
        return result
    finally:
        if relay is not None:
            relay.stop.set()
            relay.join(5)
        for device in devices:
            with contextlib.suppress(Exception):
                device.close()
        for ns in namespaces:
            with contextlib.suppress(Exception):
                ns.close()


def kernel_veth(args: argparse.Namespace) -> dict[str, Any]:
    """The kernel against the kernel over a veth pair with MTU ``mtu`` (two namespaces)."""
    kernel, wip = LINKS[args.mtu]
    namespaces: list[Any] = []
    try:
        ns_a = new_namespace("wipveth")
        namespaces.append(ns_a)
        ns_b = new_namespace("wipveth")
        namespaces.append(ns_b)
        ns_a.ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", ns_b.name)
        for ns, name, here in ((ns_a, "veth0", kernel), (ns_b, "veth1", wip)):
            ns.ip("addr", "add", f"{here}/24", "dev", name)
            ns.ip("link", "set", "dev", name, "mtu", str(args.mtu), "up")
        port = DISCARD_PORT if args.direction == "in" else CHARGEN_PORT
        server = start_helper(ns_b, *server_argv("tcp-sink" if args.direction == "in" else "tcp-source", wip, port,
                                                 args.limit, args.cc))  # fmt: skip
        kind = "tcp-send" if args.direction == "in" else "tcp-recv"
        client = start_helper(ns_a, *client_argv(kind, wip, port, args.bytes, args.seconds, args.limit, args.cc))
        try:
            result = finish(client, args.limit + 5)
            finish(server, 15)
        finally:
            kill(client)
            kill(server)
        result["cc_default"] = namespace_cc(ns_a)
        return result
    finally:
        for ns in namespaces:  # the veth pair goes with its namespaces
            with contextlib.suppress(Exception):
                ns.close()


def one_shot(function: Any, args: argparse.Namespace) -> int:
    """Run a one-transfer sub-command: JSON result on stdout, errors as an error event."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-ups
    try:
        result = function(args)
        result["rate"] = result["bytes"] * 8 / result["elapsed"] if result.get("elapsed") else 0.0
        emit({"event": "result", "result": result})
        return 0
    except Exception as exc:
        emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
        return 1


def worker_main(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    worker: Worker | None = None
    try:
        worker = Worker(args.cc)
        worker.serve()
    except Exception as exc:
        emit({"event": "error", "error": f"set-up: {type(exc).__name__}: {exc}"})
        return 1
    finally:
        if worker is not None:
            worker.close()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._tcp_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--cc", default="")
    peer = sub.add_parser("ppp-peer")
    peer.add_argument("--path", required=True)
    peer.add_argument("--limit", type=float, default=120)
    for name in ("lossy-wip", "lossy-kernel", "kernel-veth"):
        p = sub.add_parser(name)
        p.add_argument("--direction", choices=("in", "out"), required=True)
        p.add_argument("--bytes", type=int, required=True)
        p.add_argument("--cc", default="")
        p.add_argument("--limit", type=float, default=150)
        if name == "kernel-veth":
            p.add_argument("--mtu", type=int, choices=sorted(LINKS), required=True)
            p.add_argument("--seconds", type=float, default=0)
        else:
            p.add_argument("--seed", type=int, required=True)
            p.add_argument("--faults", required=True, help="FaultConfig keyword arguments as JSON")
    for name in ("tcp-send", "tcp-recv"):
        p = sub.add_parser(name)
        p.add_argument("--dst", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--bytes", type=int, required=True)
        p.add_argument("--seconds", type=float, default=0)
        p.add_argument("--limit", type=float, default=60)
        p.add_argument("--cc", default="")
    for name in ("tcp-sink", "tcp-source"):
        p = sub.add_parser(name)
        p.add_argument("--bind", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--limit", type=float, default=60)
        p.add_argument("--cc", default="")
    args = parser.parse_args(argv)
    if args.command == "worker":
        return worker_main(args)
    if args.command == "ppp-peer":
        return ppp_peer(args)
    if args.command in ("lossy-wip", "lossy-kernel", "kernel-veth"):
        functions = {"lossy-wip": lossy_wip, "lossy-kernel": lossy_kernel, "kernel-veth": kernel_veth}
        return one_shot(functions[args.command], args)
    helpers = {"tcp-send": tcp_send, "tcp-recv": tcp_recv, "tcp-sink": tcp_sink, "tcp-source": tcp_source}
    print(json.dumps(helpers[args.command](args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
