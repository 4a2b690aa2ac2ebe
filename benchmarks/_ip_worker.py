"""The processes of ``bench_ip`` (a helper module, not a benchmark: no ``bench_`` prefix).

``python -m benchmarks._ip_worker worker`` is the wipstack side, one process per
implementation (the parent sets ``WIPSTACK_NO_EXTENSIONS=1`` for pure Python before the
interpreter starts, since ``wipstack.accel`` chooses at import).  It creates a network
namespace of its own and a TUN device moved into it::

    this process (host namespace)                 namespace <wipbench-test-PID-N>
    Stack + NetLoop + TunPort  <-- tun fd -->     kernel interface tunN
    wipstack 192.0.2.2                            192.0.2.1 (lo up, IPv6 off)

then reads one JSON command per line on stdin and answers one JSON line on stdout, so the
parent can interleave the C and pure-Python workers workload by workload.  EOF or
``{"op": "quit"}`` ends it; the namespace (and the TUN interface in it) is deleted on the
way out, also on errors.

The other sub-commands are the kernel's side of each workload and run *inside* the
namespace (``ip netns exec``).  They import nothing from wipstack, print ``ready`` once
their socket is bound, then one JSON line with their figures, and stop on their own after a
bounded number of datagrams or seconds:

* ``udp-send``: datagrams to wipstack, at most ``--window`` not yet acknowledged (wipstack
  returns a cumulative count every ``--ack-every`` datagrams); ``--window 0`` is unpaced;
* ``udp-recv``: counts datagrams from wipstack;
* ``echo-client``: request/response with ``--window`` requests outstanding;
* ``icmp-ping``: raw-socket ping, used only when iputils' ``ping`` is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import select
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
KERNEL = "192.0.2.1"  # the kernel's address on the TUN link, in the namespace (TEST-NET-1)
WIPSTACK = "192.0.2.2"  # wipstack's address
UDP_IN_PORT = 9001
UDP_OUT_PORT = 9002
ECHO_PORT = 9007
MTU = 1500
TXQUEUELEN = 500  # the kernel's TUN queue (the Linux default), set explicitly so runs compare
SEND_BATCH = 256  # datagrams wipstack sends per NetLoop.call in udp_out
HELPER_GRACE = 10.0  # seconds past a helper's own time bound before it is killed


def payload_of(size: int) -> bytes:
    """Random (seeded) octets: an all-zero payload would flatter the pure-Python checksum,
    which reads the buffer as one big integer (zero is a trivial one)."""
    return random.Random(size).randbytes(size)


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# namespace side (no wipstack imports)
# ---------------------------------------------------------------------------------------------


def udp_send(args: argparse.Namespace) -> dict[str, Any]:
    """Send ``count`` datagrams (or for ``seconds``) to wipstack, windowed by its acknowledgements."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.dst, args.port))
    sock.setblocking(False)
    payload = payload_of(args.size)
    print("ready", flush=True)
    sent = acked = written_off = stalls = send_errors = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    while sent < args.count and time.perf_counter() < deadline:
        budget = args.count - sent
        if args.window:
            budget = min(budget, args.window - max(0, sent - acked - written_off))
        for _ in range(budget):
            try:
                sock.send(payload)
            except (BlockingIOError, OSError):  # ENOBUFS: the kernel's queue is full
                send_errors += 1
                break
            sent += 1
        if not args.window:
            continue
        if not select.select([sock], [], [], 0.1)[0]:
            stalls += 1  # nothing acknowledged for 100 ms: what is outstanding is lost
            written_off = sent - acked
            continue
        with contextlib.suppress(BlockingIOError):
            while True:
                acked = max(acked, int.from_bytes(sock.recv(64)[:8], "big"))
    elapsed = time.perf_counter() - started
    return {"sent": sent, "elapsed": elapsed, "stalls": stalls, "send_errors": send_errors}


def udp_recv(args: argparse.Namespace) -> dict[str, Any]:
    """Count datagrams until ``count`` arrived, ``idle`` seconds pass without one, or ``seconds``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):  # root: past net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    sock.bind((args.bind, args.port))
    sock.setblocking(False)
    buffer = bytearray(65536)
    print("ready", flush=True)
    count = octets = 0
    first = last = 0.0
    deadline = time.perf_counter() + args.seconds
    while count < args.count:
        now = time.perf_counter()
        if now >= deadline or (count and now - last >= args.idle):
            break
        if not select.select([sock], [], [], 0.05)[0]:
            continue
        with contextlib.suppress(BlockingIOError):
            while True:
                octets += sock.recv_into(buffer)
                count += 1
        last = time.perf_counter()
        if count and not first:
            first = last
    return {"received": count, "octets": octets, "first": first, "last": last}


def echo_client(args: argparse.Namespace) -> dict[str, Any]:
    """Request/response against wipstack's echo socket with ``window`` requests in flight."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((args.dst, args.port))
    sock.setblocking(False)
    payload = payload_of(args.size)
    print("ready", flush=True)
    sent = done = outstanding = lost = stalls = mismatched = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    while done < args.count:
        now = time.perf_counter()
        if now >= deadline:
            break
        while outstanding < args.window and sent < args.count:
            try:
                sock.send(payload)
            except (BlockingIOError, OSError):
                break
            sent += 1
            outstanding += 1
        if not select.select([sock], [], [], 0.1)[0]:
            stalls += 1
            lost += outstanding
            outstanding = 0
            continue
        with contextlib.suppress(BlockingIOError):
            while True:
                reply = sock.recv(65536)
                done += 1
                mismatched += reply != payload
                outstanding = max(0, outstanding - 1)
    elapsed = time.perf_counter() - started
    return {"transactions": done, "elapsed": elapsed, "lost": lost, "stalls": stalls, "mismatched": mismatched}


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp_ping(args: argparse.Namespace) -> dict[str, Any]:
    """A raw-socket ping (the fallback when iputils' ping is missing): min/avg/max like ping's summary."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    payload = bytes(56)
    rtts: list[float] = []
    print("ready", flush=True)
    for seq in range(args.count):
        header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        packet = struct.pack("!BBHHH", 8, 0, _icmp_checksum(header + payload), ident, seq) + payload
        sent_at = time.perf_counter()
        sock.sendto(packet, (args.dst, 0))
        while (remaining := sent_at + 1.0 - time.perf_counter()) > 0:
            if not select.select([sock], [], [], remaining)[0]:
                break
            reply = sock.recv(2048)
            at = (reply[0] & 0x0F) * 4
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", reply[at : at + 8])
            if kind == 0 and rid == ident and rseq == seq:
                rtts.append((time.perf_counter() - sent_at) * 1000)
                break
        time.sleep(max(0.0, sent_at + args.interval - time.perf_counter()))
    if not rtts:
        return {"transmitted": args.count, "received": 0}
    avg = sum(rtts) / len(rtts)
    return {"transmitted": args.count, "received": len(rtts), "min": min(rtts), "avg": avg, "max": max(rtts)}


# ---------------------------------------------------------------------------------------------
# the wipstack side
# ---------------------------------------------------------------------------------------------

PING_SUMMARY = re.compile(r"min/avg/max(?:/mdev)? = ([\d.]+)/([\d.]+)/([\d.]+)")
PING_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


class InCounter:
    """The on_datagram callback of udp_in: counts, times arrivals, acknowledges every ``ack_every``."""

    def __init__(self, sock: Any, ack_every: int) -> None:
        self.sock = sock
        self.ack_every = ack_every
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def __call__(self, data: bytes, source: tuple[bytes, int], now: float) -> None:
        count = self.count = self.count + 1
        self.last = time.perf_counter()
        if count == 1:
            self.first = self.last
        if self.ack_every and count % self.ack_every == 0:
            self.sock.sendto(count.to_bytes(8, "big"), *source)


class Worker:
    """wipstack on a TUN device whose kernel side is in a namespace of its own."""

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.harness.netns import NetNamespace, which
        from wipstack import accel

        self.accel = accel
        self.ping = which("ping")
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.device: Any = None
        self.loop: Any = None
        self.ns = NetNamespace(prefix="wipbench")
        emit({"event": "netns", "netns": self.ns.name})  # so the parent can clean up if we die
        try:
            self._set_up()
        except BaseException:
            self.close()
            raise

    def _set_up(self) -> None:
        from wipstack.drivers.netloop import NetLoop
        from wipstack.drivers.ports import TunPort
        from wipstack.drivers.tun import TunDevice
        from wipstack.net import Interface, Stack
        from wipstack.wire.ipv4 import address

        self.ns.ip("link", "set", "lo", "up")
        self.ns.run(
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
            check=False,
        )
        self.device = TunDevice(mtu=MTU)
        self.device.move_to_netns(self.ns.name)
        self.device.configure_kernel_side(WIPSTACK, KERNEL, netns=self.ns.name)
        self.ns.ip("link", "set", "dev", self.device.name, "txqueuelen", str(TXQUEUELEN))
        self.stack = Stack(random.Random(1))
        self.interface = Interface(self.device.name, address(WIPSTACK), peer=address(KERNEL), mtu=MTU)
        self.loop = NetLoop(self.stack)
        self.loop.add_port(TunPort(self.stack, self.interface, self.device))
        self.loop.start()
        thread = next(t for t in threading.enumerate() if t.name == "wipstack-netloop")
        assert thread.ident is not None
        self.loop_clock = time.pthread_getcpuclockid(thread.ident)

    def loop_cpu(self) -> float:
        """CPU seconds the NetLoop thread has used (it does all of wipstack's work, syscalls included)."""
        return time.clock_gettime(self.loop_clock)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.loop is not None:
                self.loop.close()  # closes the TUN device too
        with contextlib.suppress(Exception):
            if self.device is not None:
                self.device.close()
        self.ns.close()

    # ----- helpers in the namespace -----

    def helper(self, *argv: str) -> subprocess.Popen[bytes]:
        proc = self.ns.popen(
            sys.executable,
            "-m",
            "benchmarks._ip_worker",
            *argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(ROOT),
            env=self.env,
            bufsize=0,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.kill(proc)
            errors = proc.stderr.read()[-500:] if proc.stderr is not None else b""
            raise RuntimeError(f"helper {argv[0]} did not start: {line!r} {errors!r}")
        return proc

    def finish(self, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise RuntimeError("helper overran its time bound and was killed") from None
        lines = out.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"helper failed (exit {proc.returncode}): {err.decode(errors='replace')[-500:]}")
        return dict(json.loads(lines[-1]))

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own process group, led by this PID
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)

    def kernel_tun_stats(self) -> dict[str, int]:
        out = self.ns.ip("-s", "-j", "link", "show", "dev", self.device.name).stdout
        stats = json.loads(out)[0].get("stats64", {})
        return {
            "tx_dropped": stats.get("tx", {}).get("dropped", 0),
            "rx_dropped": stats.get("rx", {}).get("dropped", 0),
        }

    def counters(self) -> dict[str, int]:
        def collect() -> dict[str, int]:
            counts = dict(self.stack.counters())
            for reason, n in self.interface.counters.drops.items():
                counts[f"if_drop_{reason.name.lower()}"] = n
            counts["tun_tx_dropped"] = self.device.tx_dropped
            return counts

        return dict(self.loop.call(collect))

    def settle(self, value: Any, quiet: float = 0.15, limit: float = 3.0) -> None:
        """Wait until ``value()`` stops changing for ``quiet`` seconds (the loop has caught up)."""
        end = time.monotonic() + limit
        previous, since = value(), time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.02)
            current = value()
            if current != previous:
                previous, since = current, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    # ----- workloads -----

    def op_ping(self, target: str, count: int, interval: float) -> dict[str, Any]:
        if self.ping is not None:
            proc = self.ns.run(
                self.ping, "-c", str(count), "-i", str(interval), "-q", "-w", "20", target, check=False, timeout=30
            )
            text = proc.stdout.decode(errors="replace")
            counts, summary = PING_COUNTS.search(text), PING_SUMMARY.search(text)
            result: dict[str, Any] = {
                "tool": "iputils ping",
                "transmitted": int(counts[1]) if counts else count,
                "received": int(counts[2]) if counts else 0,
            }
            if summary:
                result.update(min=float(summary[1]), avg=float(summary[2]), max=float(summary[3]))
            return result
        helper = self.helper("icmp-ping", "--dst", target, "--count", str(count), "--interval", str(interval))
        return {"tool": "python raw socket", **self.finish(helper, count * 1.0 + HELPER_GRACE)}

    def op_udp_in(self, size: int, count: int, seconds: float, window: int, ack_every: int) -> dict[str, Any]:
        def open_socket() -> InCounter:
            sock = self.stack.udp_socket()
            sock.bind(WIPSTACK, UDP_IN_PORT)
            sock.on_datagram = InCounter(sock, ack_every if window else 0)
            return sock.on_datagram

        counter = self.loop.call(open_socket)
        before, kernel_before = self.counters(), self.kernel_tun_stats()
        try:
            helper = self.helper(
                "udp-send",
                "--dst",
                WIPSTACK,
                "--port",
                str(UDP_IN_PORT),
                "--size",
                str(size),
                "--count",
                str(count),
                "--seconds",
                str(seconds),
                "--window",
                str(window),
            )
            cpu = self.loop_cpu()
            sender = self.finish(helper, seconds + HELPER_GRACE)
            self.settle(lambda: counter.count)
            cpu = self.loop_cpu() - cpu
        finally:
            self.loop.call(counter.sock.close)
        after, kernel_after = self.counters(), self.kernel_tun_stats()
        span = counter.last - counter.first
        return {
            "sent": sender["sent"],
            "received": counter.count,
            "rate": (counter.count - 1) / span if counter.count > 1 and span > 0 else 0.0,
            "cpu_us": cpu / counter.count * 1e6 if counter.count else 0.0,
            "sender_elapsed": sender["elapsed"],
            "sender_stalls": sender["stalls"],
            "sender_errors": sender["send_errors"],
            "kernel_tun_tx_dropped": kernel_after["tx_dropped"] - kernel_before["tx_dropped"],
            "wipstack_drops": _delta(before, after, "drop_"),
        }

    def op_udp_out(self, size: int, count: int, seconds: float) -> dict[str, Any]:
        def open_socket() -> Any:
            sock = self.stack.udp_socket()
            sock.bind(WIPSTACK, 0)
            sock.connect(KERNEL, UDP_OUT_PORT)
            return sock

        helper = self.helper(
            "udp-recv",
            "--bind",
            KERNEL,
            "--port",
            str(UDP_OUT_PORT),
            "--count",
            str(count),
            "--seconds",
            str(seconds + 3),
            "--idle",
            "0.5",
        )
        sock = self.loop.call(open_socket)
        payload = payload_of(size)
        send = sock.send
        before = self.counters()
        errors = [0]

        def batch(n: int) -> None:
            for _ in range(n):
                try:
                    send(payload)
                except Exception:  # SocketError ENOBUFS: interface queue full (counted by wipstack too)
                    errors[0] += 1

        sent = 0
        cpu = self.loop_cpu()
        started = time.perf_counter()
        try:
            while sent < count and time.perf_counter() - started < seconds:
                n = min(SEND_BATCH, count - sent)
                self.loop.call(lambda n=n: batch(n))
                sent += n
            self.loop.call(lambda: None)  # the last batch has been written to the device
            elapsed = time.perf_counter() - started
            cpu = self.loop_cpu() - cpu
            receiver = self.finish(helper, seconds + 3 + HELPER_GRACE)
        finally:
            self.kill(helper)
            self.loop.call(sock.close)
        after = self.counters()
        span = receiver["last"] - receiver["first"]
        received = receiver["received"]
        return {
            "sent": sent - errors[0],
            "received": received,
            "rate": (received - 1) / span if received > 1 and span > 0 else 0.0,
            "sender_rate": (sent - errors[0]) / elapsed,
            "cpu_us": cpu / sent * 1e6 if sent else 0.0,
            "send_errors": errors[0],
            "wipstack_drops": _delta(before, after, "drop_") | _delta(before, after, "tun_tx_dropped"),
        }

    def op_echo(self, size: int, count: int, seconds: float, window: int) -> dict[str, Any]:
        def open_socket() -> Any:
            sock = self.stack.udp_socket()
            sock.bind(WIPSTACK, ECHO_PORT)

            def echo(data: bytes, source: tuple[bytes, int], now: float) -> None:
                sock.sendto(data, *source)

            sock.on_datagram = echo
            return sock

        sock = self.loop.call(open_socket)
        try:
            helper = self.helper(
                "echo-client",
                "--dst",
                WIPSTACK,
                "--port",
                str(ECHO_PORT),
                "--size",
                str(size),
                "--count",
                str(count),
                "--seconds",
                str(seconds),
                "--window",
                str(window),
            )
            cpu = self.loop_cpu()
            client = self.finish(helper, seconds + HELPER_GRACE)
            cpu = self.loop_cpu() - cpu
        finally:
            self.loop.call(sock.close)
        client["cpu_us"] = cpu / client["transactions"] * 1e6 if client["transactions"] else 0.0
        client["rate"] = client["transactions"] / client["elapsed"] if client["elapsed"] > 0 else 0.0
        return client

    def serve(self) -> None:
        emit(
            {
                "event": "ready",
                "implementation": self.accel.IMPLEMENTATION,
                "c_unavailable_reason": self.accel.C_UNAVAILABLE_REASON,
                "netns": self.ns.name,
                "tun": self.device.name,
                "ping": "iputils" if self.ping else "python raw socket",
            }
        )
        for line in sys.stdin:
            command = json.loads(line)
            op = command.pop("op")
            if op == "quit":
                break
            try:
                result = getattr(self, f"op_{op}")(**command)
                if self.loop.error is not None:
                    raise RuntimeError(f"the network loop died: {self.loop.error!r}")
                emit({"event": "result", "result": result})
            except Exception as exc:
                emit({"event": "error", "error": f"{op}: {type(exc).__name__}: {exc}"})


def _delta(before: dict[str, int], after: dict[str, int], prefix: str) -> dict[str, int]:
    keys = {k for k in after if k.startswith(prefix)}
    return {k: after[k] - before.get(k, 0) for k in sorted(keys) if after[k] - before.get(k, 0)}


def worker_main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally below
    worker: Worker | None = None
    try:
        worker = Worker()
        worker.serve()
    except Exception as exc:
        emit({"event": "error", "error": f"set-up: {type(exc).__name__}: {exc}"})
        return 1
    finally:
        if worker is not None:
            worker.close()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._ip_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker")
    send = sub.add_parser("udp-send")
    recv = sub.add_parser("udp-recv")
    echo = sub.add_parser("echo-client")
    ping = sub.add_parser("icmp-ping")
    for p in (send, echo, ping):
        p.add_argument("--dst", required=True)
    for p in (send, echo):
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--size", type=int, required=True)
        p.add_argument("--window", type=int, default=0)
    for p in (send, recv, echo):
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--seconds", type=float, required=True)
    recv.add_argument("--bind", required=True)
    recv.add_argument("--port", type=int, required=True)
    recv.add_argument("--idle", type=float, default=0.5)
    ping.add_argument("--count", type=int, default=200)
    ping.add_argument("--interval", type=float, default=0.005)
    args = parser.parse_args(argv)
    if args.command == "worker":
        return worker_main()
    handlers = {"udp-send": udp_send, "udp-recv": udp_recv, "echo-client": echo_client, "icmp-ping": icmp_ping}
    print(json.dumps(handlers[args.command](args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
