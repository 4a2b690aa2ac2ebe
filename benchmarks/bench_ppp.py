"""PPP link: negotiation time and datagram throughput, C vs pure Python, and against pppd.

1. CPU cost of a full LCP + PAP + IPCP negotiation between two sessions in memory.
2. One-way IPv4 datagram throughput between two wipstack sessions over a real pty pair,
   beside the raw pty throughput measured in the same run.
3. With root and User-Mode-Linux: time from the first byte of Debian's pppd to IPCP up on
   our side, and the ICMP echo round trip through the guest's kernel.

Rows for the other implementation come from a child process with WIPSTACK_NO_EXTENSIONS=1,
so C and pure Python are printed side by side from one run.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from ipaddress import IPv4Address
from pathlib import Path

from wipstack import accel
from wipstack.drivers.link import PtyLink, SerialLink, SocketLink
from wipstack.drivers.ppp_link import PppLinkDriver
from wipstack.ppp.config import CpConfig, IpcpConfig, PapConfig, PppConfig
from wipstack.ppp.session import PppSession

ROOT = Path(__file__).resolve().parents[1]
SERVER = PppConfig(
    pap=PapConfig(require=True, secrets=(("alice", "s3cret"),)),
    ipcp=IpcpConfig(
        local_address=IPv4Address("192.0.2.1"),
        peer_address=IPv4Address("192.0.2.2"),
        dns_servers=(IPv4Address("198.51.100.53"),),
    ),
)
CLIENT = PppConfig(pap=PapConfig(username="alice", password="s3cret"), ipcp=IpcpConfig(request_dns=True))
DATAGRAM = bytes(random.Random(5).randbytes(1400))
TRANSFER_BYTES = 8 << 20


def negotiation_cpu_us(rounds: int = 200) -> float:
    """Median CPU time of one negotiation to IPCP up on both sides, in memory."""
    samples = []
    for i in range(rounds):
        a, b = PppSession(SERVER, random.Random(i)), PppSession(CLIENT, random.Random(i + 1))
        start = time.perf_counter()
        a.open(0.0)
        b.open(0.0)
        while a.ipcp.result is None or b.ipcp.result is None:
            out_a, out_b = a.bytes_to_send(), b.bytes_to_send()
            b.receive_bytes(out_a, 0.0)
            a.receive_bytes(out_b, 0.0)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def pty_transfer_mbps() -> float:
    """One-way datagram throughput between two sessions over a pty pair (Mbit/s of IP)."""
    pty = PtyLink()
    serial = SerialLink(pty.slave_path)
    fast = PppConfig(cp=CpConfig(restart_interval=1.0))
    server = PppLinkDriver(
        PppConfig(
            ipcp=IpcpConfig(local_address=IPv4Address("192.0.2.1"), peer_address=IPv4Address("192.0.2.2")), cp=fast.cp
        ),
        pty,
        seed=1,
    )
    client = PppLinkDriver(PppConfig(cp=fast.cp), serial, seed=2)
    received = [0]
    server.on_ip = lambda packet: received.__setitem__(0, received[0] + len(packet))
    done = threading.Event()

    def serve() -> None:
        server.open()
        server.run_until(lambda: done.is_set() or received[0] >= TRANSFER_BYTES, 60)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client.open()
    client.wait_ipcp_up(10)
    started = time.perf_counter()
    sent = 0
    while sent < TRANSFER_BYTES and time.perf_counter() - started < 30:
        while client.runner.backlog() < 64 * 1024 and sent < TRANSFER_BYTES:
            client.session.send_ip(DATAGRAM, time.monotonic())
            sent += len(DATAGRAM)
        client.runner.step(0.01)
    while client.runner.backlog() and time.perf_counter() - started < 30:
        client.runner.step(0.01)
    thread.join(30)
    elapsed = time.perf_counter() - started
    done.set()
    client.close()
    server.close()
    return received[0] * 8 / elapsed / 1e6


def measure_here() -> dict[str, float]:
    """The in-process measurements, for the active implementation."""
    return {"negotiation_us": negotiation_cpu_us(), "pty_mbps": pty_transfer_mbps()}


def measure_other() -> dict[str, float] | None:
    """The same measurements in a child process with the other implementation, if there is one."""
    if accel.IMPLEMENTATION == "py":
        return None  # the C extension is not available here: nothing to compare with
    env = dict(os.environ, WIPSTACK_NO_EXTENSIONS="1", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_ppp", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def pppd_figures(runs: int = 5) -> str:
    """IPCP-up time and ping round trip against a real pppd, or why it was not measured."""
    sys.path.insert(0, str(ROOT))
    from tests.harness.uml import PppdGuest, uml_unavailable_reason
    from wipstack.wire.icmp import IcmpRepr
    from wipstack.wire.ipv4 import IpProtocol, Ipv4Repr

    reason = uml_unavailable_reason()
    if reason is not None:
        return f"not measured: {reason}"
    ups: list[float] = []
    rtts: list[float] = []
    for run in range(runs):
        with PppdGuest(["nodetach", "local", "noauth", "192.0.2.2:192.0.2.1", "lcp-restart", "1"]) as guest:
            sock = guest.start()
            sock.recv(1, 0x2)  # MSG_PEEK: block until pppd's first byte
            first_byte = time.monotonic()
            config = PppConfig(
                ipcp=IpcpConfig(local_address=IPv4Address("192.0.2.1")), cp=CpConfig(restart_interval=1.0)
            )
            driver = PppLinkDriver(config, SocketLink(sock), seed=run)
            driver.open()
            if not driver.wait_ipcp_up(20):
                return "not measured: IPCP did not come up against pppd"
            ups.append((time.monotonic() - first_byte) * 1000)
            replies: list[float] = []
            driver.on_ip = lambda packet, replies=replies: replies.append(time.monotonic())
            for seq in range(20 if run == 0 else 0):
                icmp = IcmpRepr.echo(1, seq, bytes(56)).emit()
                sent_at = time.monotonic()
                driver.session.send_ip(
                    Ipv4Repr(IPv4Address("192.0.2.1").packed, IPv4Address("192.0.2.2").packed, IpProtocol.ICMP).emit(
                        icmp
                    ),
                    sent_at,
                )
                count = len(replies)
                driver.run_until(lambda count=count, replies=replies: len(replies) > count, 2)
                if len(replies) > count:
                    rtts.append((replies[-1] - sent_at) * 1000)
            driver.terminate(timeout=5)
            driver.close()
    rtt = f"; ICMP echo RTT through the guest kernel median {statistics.median(rtts):.2f} ms" if rtts else ""
    return (
        f"pppd first byte -> our IPCP up: median {statistics.median(ups):.1f} ms "
        f"(min {min(ups):.1f}, max {max(ups):.1f}, {runs} runs){rtt}"
    )


def run() -> None:
    """Print the table."""
    here = measure_here()
    other = measure_other()
    rows = {accel.IMPLEMENTATION: here}
    if other is not None:
        rows["py"] = other
    print(f"{'implementation':<16}{'negotiation CPU (µs)':>22}{'pty datagrams (Mbit/s)':>26}")
    for name, figures in rows.items():
        print(f"{name:<16}{figures['negotiation_us']:>22.0f}{figures['pty_mbps']:>26.1f}")
    if other is not None:
        print(
            f"{'ratio c/py':<16}{other['negotiation_us'] / here['negotiation_us']:>21.2f}x"
            f"{here['pty_mbps'] / other['pty_mbps']:>25.2f}x"
        )
    print(pppd_figures())


if __name__ == "__main__":
    if "--json" in sys.argv:
        print(json.dumps(measure_here()))
    else:
        run()
