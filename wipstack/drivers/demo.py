"""``wipstack demo``: two wipstack PPP endpoints over a real pty pair, end to end, no root.

The access server holds the pty master; the client opens the pty slave through pyserial,
as it would open a modem.  They negotiate LCP, PAP and IPCP (with DNS), keep the link alive
with LCP echoes, then the client sends UDP datagrams that the server echoes back; every
header and checksum is built and verified by wipstack.wire.  Finally the client
terminates the link and both sides print what they negotiated and counted.

Until the IP layer lands (see docs/features.md) the server's UDP echo is a datagram-level
responder in this file, not a socket.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from wipstack.drivers.link import PtyLink, SerialLink
from wipstack.drivers.ppp_link import PppLinkDriver
from wipstack.errors import MalformedPacket
from wipstack.ppp.config import CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.wire.ipv4 import IpProtocol, Ipv4Repr
from wipstack.wire.udp import UdpRepr

SERVER_IP = IPv4Address("192.0.2.1")
CLIENT_IP = IPv4Address("192.0.2.2")
DNS = (IPv4Address("198.51.100.53"), IPv4Address("198.51.100.54"))
ECHO_PORT = 7
DATAGRAMS = 300
PAYLOAD = 1200
WINDOW = 16


def _udp_datagram(src: IPv4Address, dst: IPv4Address, sport: int, dport: int, data: bytes, ident: int) -> bytes:
    udp = UdpRepr(sport, dport).emit(data, src=src.packed, dst=dst.packed)
    return Ipv4Repr(src.packed, dst.packed, IpProtocol.UDP, identification=ident & 0xFFFF).emit(udp)


def _parse_udp(packet: bytes) -> tuple[Ipv4Repr, UdpRepr, bytes] | None:
    try:
        ip, ip_payload = Ipv4Repr.parse(packet)
        if ip.protocol != IpProtocol.UDP:
            return None
        udp, data = UdpRepr.parse(ip_payload, src=ip.src, dst=ip.dst)
    except MalformedPacket:
        return None
    return ip, udp, bytes(data)


class _Side:
    """One endpoint in its own thread; ``work`` runs there once IPCP is up."""

    def __init__(self, name: str, driver: PppLinkDriver, work: Callable[[_Side], None]) -> None:
        self.name = name
        self.driver = driver
        self.work = work
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name=f"demo-{name}", daemon=True)

    def _main(self) -> None:
        try:
            self.driver.open()
            if not self.driver.wait_ipcp_up(15):
                raise RuntimeError(f"{self.name}: IPCP did not come up")
            self.work(self)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc


def run_demo(seed: int = 1, log: Callable[[str], None] = print) -> int:
    """Run the demo; returns a process exit code."""
    server_config = PppConfig(
        lcp=LcpConfig(echo_interval=1.0, echo_failure=3),
        pap=PapConfig(require=True, secrets=(("alice", "s3cret"),)),
        ipcp=IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP, dns_servers=DNS),
        cp=CpConfig(restart_interval=1.0),
    )
    client_config = PppConfig(
        lcp=LcpConfig(echo_interval=1.0, echo_failure=3),
        pap=PapConfig(username="alice", password="s3cret"),
        ipcp=IpcpConfig(request_dns=True),
        cp=CpConfig(restart_interval=1.0),
    )
    pty = PtyLink(Path(os.environ.get("TMPDIR", "/tmp")) / f"wipstack-demo-{os.getpid()}")
    log(f"pty pair: server on the master, client opens {pty.path} -> {pty.slave_path} (pyserial)")
    serial = SerialLink(pty.path)
    server = PppLinkDriver(server_config, pty, seed=seed, log=lambda line: log(f"server: {line}"), trace_packets=False)
    client = PppLinkDriver(client_config, serial, seed=seed + 1, log=lambda line: log(f"client: {line}"))
    results: dict[str, float] = {}

    def serve(side: _Side) -> None:
        session = side.driver.session

        def echo(packet: bytes) -> None:
            parsed = _parse_udp(packet)
            if parsed is None:
                return
            ip, udp, data = parsed
            if udp.dst_port == ECHO_PORT:
                reply = _udp_datagram(
                    IPv4Address(ip.dst), IPv4Address(ip.src), ECHO_PORT, udp.src_port, data, ip.identification
                )
                session.send_ip(reply, side.driver.clock())

        side.driver.on_ip = echo
        side.driver.run_until(lambda: session.is_dead, 60)

    def exercise(side: _Side) -> None:
        driver = side.driver
        session = driver.session
        rng = random.Random(seed)
        payloads = [rng.randbytes(PAYLOAD) for _ in range(DATAGRAMS)]
        received: dict[int, bytes] = {}

        def collect(packet: bytes) -> None:
            parsed = _parse_udp(packet)
            if parsed is not None and parsed[1].src_port == ECHO_PORT:
                received[parsed[0].identification] = parsed[2]

        driver.on_ip = collect
        driver.run_until(lambda: False, 2.5)  # a few keep-alive echoes in each direction
        started = time.monotonic()
        sent = 0
        while len(received) < DATAGRAMS and time.monotonic() - started < 30:
            while sent < DATAGRAMS and sent - len(received) < WINDOW:
                session.send_ip(
                    _udp_datagram(CLIENT_IP, SERVER_IP, 40000, ECHO_PORT, payloads[sent], sent), driver.clock()
                )
                sent += 1
            target = min(DATAGRAMS, sent)
            driver.run_until(lambda: len(received) >= target, 1.0)  # noqa: B023 - called right here
        elapsed = time.monotonic() - started
        intact = sum(received.get(i) == payloads[i] for i in range(DATAGRAMS))
        results.update(sent=sent, echoed=len(received), intact=intact, elapsed=elapsed)
        driver.terminate("User request", timeout=10)

    sides = [_Side("server", server, serve), _Side("client", client, exercise)]
    for side in sides:
        side.thread.start()
    for side in sides:
        side.thread.join(90)
    try:
        for side in sides:
            if side.error is not None or side.thread.is_alive():
                log(f"{side.name}: FAILED: {side.error or 'did not finish'}")
                return 1
        return _report(server, client, results, log)
    finally:
        client.close()
        server.close()


def _report(server: PppLinkDriver, client: PppLinkDriver, results: dict[str, float], log: Callable[[str], None]) -> int:
    ok = True
    for name, driver in (("server", server), ("client", client)):
        assert driver.started_at is not None
        up = driver.ipcp_up_at - driver.started_at if driver.ipcp_up_at is not None else float("nan")
        lcp = driver.session.lcp
        counters = driver.session.counters()
        log(
            f"{name}: IPCP up after {up * 1000:.1f} ms; LCP echoes sent {lcp.echo_requests_sent}, "
            f"replies {lcp.echo_replies}; frames in {counters['frames_in']} out {counters['frames_out']}; "
            f"bad FCS {counters['hdlc_bad_fcs']}; link ended: {driver.session.failure or 'cleanly'}"
        )
        ok &= driver.ipcp_up_at is not None and driver.session.is_dead and driver.session.failure is None
    sent, echoed, intact, elapsed = (results.get(k, 0) for k in ("sent", "echoed", "intact", "elapsed"))
    rate = 2 * echoed * PAYLOAD * 8 / elapsed / 1e6 if elapsed else 0.0
    log(
        f"UDP echo over PPP: {int(sent)} sent, {int(echoed)} echoed, {int(intact)} intact, "
        f"{elapsed:.2f} s, {rate:.1f} Mbit/s of payload both ways"
    )
    ok &= intact == DATAGRAMS
    log("demo: OK" if ok else "demo: FAILED")
    return 0 if ok else 1
