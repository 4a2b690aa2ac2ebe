"""``wipstack demo``: three wipstack nodes, two PPP links over real pty pairs, end to end, no root.

::

    client ──PPP (pty A, PAP, DNS)── gateway (router) ──PPP (pty B, MRU 576)── host
    192.0.2.2                 192.0.2.1    198.51.100.1                 198.51.100.2

The gateway holds both pty masters; client and host open the pty slaves through pyserial,
as they would open a modem.  Both links negotiate LCP, PAP (link A) and IPCP with DNS, then
the client pings the gateway, resolves names at the host's DNS service (a CNAME and a
missing name), pings the host by name with datagrams that are fragmented and re-fragmented
at the 576-octet hop, exchanges UDP datagrams up to 5840 octets with the host's echo
service through the router, sees ICMP port-unreachable and time-exceeded errors, and
terminates.  Every frame, header, checksum, fragment and route is wipstack's own.
"""

from __future__ import annotations

import os
import random
import struct
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

from wipstack.dns import LookupResult
from wipstack.drivers.link import ByteLink, PtyLink, SerialLink
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.pcap import LinkType, PcapngWriter, PcapTap
from wipstack.drivers.ports import PppPort
from wipstack.drivers.services import TcpService
from wipstack.errors import MalformedPacket
from wipstack.net import Stack, StackConfig
from wipstack.net.icmp import PingConfig, PingReply
from wipstack.net.udp import UdpSocket
from wipstack.ppp.config import CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.ppp.session import PppSession
from wipstack.tcp.events import TcpEvent
from wipstack.tcp.socket import TcpSocket
from wipstack.wire.dns import DnsType, encode_name, parse_response

T = TypeVar("T")
Log = Callable[[str], None]

GATEWAY_A = IPv4Address("192.0.2.1")
CLIENT = IPv4Address("192.0.2.2")
GATEWAY_B = IPv4Address("198.51.100.1")
HOST = IPv4Address("198.51.100.2")
ECHO_PORT = 7
DNS_PORT = 53
ZONE = {"host.demo.example": HOST}
ALIASES = {"www.demo.example": "host.demo.example"}
DATAGRAMS = 200
MAX_DATAGRAM = 5840  # the WIPSoft UDP limit
WINDOW = 8
TCP_BYTES = 1_000_000


class _Node:
    """One wipstack instance: a stack on its own loop thread."""

    def __init__(self, name: str, seed: int, *, forwarding: bool = False, pcap: PcapngWriter | None = None) -> None:
        self.name = name
        self.pcap = pcap
        self.stack = Stack(random.Random(seed), StackConfig(forwarding=forwarding))
        self.loop = NetLoop(self.stack)
        self.ports: list[PppPort] = []

    def add_ppp(
        self, config: PppConfig, link: ByteLink, ifname: str, log: Log, seed: int, *, default_route: bool = False
    ) -> PppPort:
        session = PppSession(config, random.Random(seed))
        tap = (
            None
            if self.pcap is None
            else PcapTap(self.pcap, self.pcap.add_interface(f"{self.name}-{ifname}", LinkType.PPP))
        )
        port = PppPort(self.stack, session, link, interface_name=ifname, default_route=default_route,
                       log=lambda line: log(f"{self.name}: {line}"), tap=tap)  # fmt: skip
        self.loop.add_port(port)
        self.ports.append(port)
        return port

    def call(self, function: Callable[[], T]) -> T:
        return self.loop.call(function)

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call(condition):
                return True
            time.sleep(0.005)
        return False


def _dns_answer(query: bytes) -> bytes | None:
    """The host's tiny authoritative DNS service for ``demo.example`` (A and CNAME)."""
    try:
        message = parse_response(query)
    except MalformedPacket:
        return None
    if message.header.qr or len(message.questions) != 1:
        return None
    question = message.questions[0]
    name = question.name.lower()
    answers = []
    if name in ALIASES:
        target = ALIASES[name]
        rdata = encode_name(target)
        answers.append(encode_name(name) + struct.pack("!HHIH", DnsType.CNAME, 1, 300, len(rdata)) + rdata)
        name = target
    if name in ZONE and question.qtype == DnsType.A:
        answers.append(encode_name(name) + struct.pack("!HHIH", DnsType.A, 1, 300, 4) + ZONE[name].packed)
    rcode = 0 if name in ZONE else 3  # NXDOMAIN (RFC 1035 §4.1.1)
    flags = 0x8400 | (0x0100 if message.header.rd else 0) | rcode  # QR, AA, RD copied
    header = struct.pack("!HHHHHH", message.header.ident, flags, 1, len(answers), 0, 0)
    return header + encode_name(question.name) + struct.pack("!HH", question.qtype, question.qclass) + b"".join(answers)


def _serve_host(host: _Node) -> None:
    """UDP echo on port 7 and DNS on port 53."""

    def bind(port: int, answer: Callable[[bytes], bytes | None]) -> UdpSocket:
        sock = host.stack.udp_socket()
        sock.bind(port=port)

        def on_datagram(data: bytes, source: tuple[bytes, int], now: float) -> None:
            reply = answer(data)
            if reply is not None:
                sock.sendto(reply, *source)

        sock.on_datagram = on_datagram
        return sock

    host.call(lambda: bind(ECHO_PORT, lambda data: data))
    host.call(lambda: bind(DNS_PORT, _dns_answer))
    host.call(lambda: TcpService(host.stack, ECHO_PORT, "echo"))


def _tcp_exchange(client: _Node, seed: int, log: Log) -> bool:
    """1 MB through the router to the host's TCP echo service and back, checked by SHA-256."""
    data = random.Random(seed + 99).randbytes(TCP_BYTES)
    echoed = bytearray()
    state: dict[str, int] = {"sent": 0, "done": 0}

    def pump(sock: TcpSocket) -> None:
        echoed.extend(sock.recv())
        while state["sent"] < len(data):
            n = sock.send(data[state["sent"] : state["sent"] + 65536])
            if n == 0:
                break
            state["sent"] += n
        if state["sent"] == len(data) and len(echoed) == len(data) and not state["done"]:
            state["done"] = 1
            sock.close()

    def on_event(sock: TcpSocket, event: TcpEvent) -> None:
        pump(sock)

    started = time.monotonic()

    def connect() -> TcpSocket:  # on the loop's thread: the callback is in place before any event
        sock = TcpSocket.connect(client.stack.tcp, str(HOST), ECHO_PORT, time.monotonic())
        sock.on_event = on_event
        return sock

    sock = client.call(connect)
    client.wait(lambda: bool(state["done"]) or sock.connection.error is not None, 30)
    elapsed = time.monotonic() - started
    conn = sock.connection
    ok = bytes(echoed) == data
    log(
        f"client: TCP echo via the gateway: {len(data)} octets sent and {len(echoed)} echoed "
        f"{'intact' if ok else 'CORRUPTED'} in {elapsed:.2f} s ({2 * len(data) * 8 / elapsed / 1e6:.1f} Mbit/s "
        f"both ways), MSS {conn.mss} (the host's MRU is 576), window scaling {conn.wscale_enabled}, "
        f"timestamps {conn.ts_enabled}, SACK {conn.sack_enabled}"
    )
    return ok


def _ping(node: _Node, target: str, config: PingConfig) -> list[PingReply]:
    session = node.call(lambda: node.stack.ping(target, config, time.monotonic()))
    node.wait(lambda: session.done, config.count * (config.interval + config.timeout) + 5)
    return [r for r in node.call(lambda: list(session.results)) if r is not None]


def _resolve(node: _Node, name: str) -> LookupResult | None:
    handle = node.call(lambda: node.stack.dns.resolve(name, time.monotonic()))
    box: list[LookupResult] = []

    def done() -> bool:
        result = node.stack.dns.result(handle)
        if result is not None:
            box.append(result)
        return bool(box)

    node.wait(done, 15)
    return box[0] if box else None


def _udp_exchange(client: _Node, seed: int, log: Log) -> bool:
    """DATAGRAMS random-size datagrams (1..5840 octets) echoed by the host through the gateway."""
    rng = random.Random(seed)
    payloads = [rng.randbytes(rng.randint(1, MAX_DATAGRAM)) for _ in range(DATAGRAMS)]
    received: dict[int, bytes] = {}
    sock = client.call(client.stack.udp_socket)

    def on_datagram(data: bytes, source: tuple[bytes, int], now: float) -> None:
        if len(data) >= 2:
            received[int.from_bytes(data[:2], "big")] = data

    sock.on_datagram = on_datagram
    tagged = [i.to_bytes(2, "big") + p[2:] if len(p) >= 2 else i.to_bytes(2, "big") for i, p in enumerate(payloads)]
    started = time.monotonic()
    sent = 0
    while len(received) < DATAGRAMS and time.monotonic() - started < 30:
        batch = []
        while sent < DATAGRAMS and sent - len(received) < WINDOW:
            batch.append(tagged[sent])
            sent += 1
        if batch:
            client.call(lambda b=batch: [sock.sendto(d, str(HOST), ECHO_PORT) for d in b])  # type: ignore[misc]
        else:
            time.sleep(0.001)
    elapsed = time.monotonic() - started
    intact = sum(received.get(i) == tagged[i] for i in range(DATAGRAMS))
    octets = sum(len(t) for t in tagged)
    log(
        f"client: UDP echo via the gateway: {sent} datagrams of 2..{MAX_DATAGRAM} octets sent, {len(received)} "
        f"echoed, {intact} intact, {2 * octets * 8 / elapsed / 1e6:.1f} Mbit/s of payload both ways"
    )
    client.call(sock.close)
    return intact == DATAGRAMS


def run_demo(seed: int = 1, log: Log = print, pcap: str | None = None) -> int:
    """Run the demo; returns a process exit code.  ``pcap``: capture all four PPP ends there."""
    writer = PcapngWriter.open(pcap) if pcap else None
    try:
        return _run(seed, _serialised(log), writer)
    finally:
        if writer is not None:
            writer.close()
            log(f"capture written: {pcap}")


def _serialised(log: Log) -> Log:
    """``log`` behind a lock: the nodes log from their own threads."""
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            log(line)

    return locked


def _run(seed: int, log: Log, pcap: PcapngWriter | None) -> int:
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    pty_a = PtyLink(tmp / f"wipstack-demo-a-{os.getpid()}")
    pty_b = PtyLink(tmp / f"wipstack-demo-b-{os.getpid()}")
    log(f"pty A: gateway on the master, client opens {pty_a.path} (pyserial)")
    log(f"pty B: gateway on the master, host opens {pty_b.path} (pyserial)")
    gateway = _Node("gateway", seed, forwarding=True, pcap=pcap)
    client = _Node("client", seed + 1, pcap=pcap)
    host = _Node("host", seed + 2, pcap=pcap)
    fast = CpConfig(restart_interval=1.0)
    gw_a = gateway.add_ppp(
        PppConfig(
            lcp=LcpConfig(echo_interval=1.0, echo_failure=3),
            pap=PapConfig(require=True, secrets=(("alice", "s3cret"),)),
            ipcp=IpcpConfig(local_address=GATEWAY_A, peer_address=CLIENT, dns_servers=(HOST,)),
            cp=fast,
        ),
        pty_a, "ppp0", log, seed + 10,
    )  # fmt: skip
    gw_b = gateway.add_ppp(
        PppConfig(ipcp=IpcpConfig(local_address=GATEWAY_B, peer_address=HOST), cp=fast), pty_b, "ppp1", log, seed + 11
    )
    cl = client.add_ppp(
        PppConfig(
            lcp=LcpConfig(echo_interval=1.0, echo_failure=3),
            pap=PapConfig(username="alice", password="s3cret"),
            ipcp=IpcpConfig(request_dns=True),
            cp=fast,
        ),
        SerialLink(pty_a.path), "ppp0", log, seed + 12, default_route=True,
    )  # fmt: skip
    hs = host.add_ppp(
        PppConfig(lcp=LcpConfig(mru=576), cp=fast), SerialLink(pty_b.path), "ppp0", log, seed + 13, default_route=True
    )
    nodes = (gateway, client, host)
    ok = True
    try:
        started = time.monotonic()
        for node in nodes:
            for port in node.ports:
                node.call(port.open)
            node.loop.start()
        if not all(n.wait(lambda n=n: all(p.is_up for p in n.ports), 15) for n in nodes):  # type: ignore[misc]
            log("demo: FAILED: the links did not come up")
            return 1
        log(f"all links up after {(time.monotonic() - started) * 1000:.1f} ms")
        _serve_host(host)
        ok &= _step_pings_and_names(client, log)
        ok &= _udp_exchange(client, seed, log)
        ok &= _tcp_exchange(client, seed, log)
        ok &= _step_errors(client, log)
        for node in (client, host):
            for port in node.ports:
                node.call(lambda p=port: p.session.close(time.monotonic(), "User request"))  # type: ignore[misc]
        ok &= all(n.wait(lambda n=n: all(p.session.is_dead for p in n.ports), 10) for n in nodes)  # type: ignore[misc]
        for node in nodes:
            for port in node.ports:
                counters = node.call(port.session.counters)
                log(
                    f"{node.name}/{port.name}: frames in {counters['frames_in']} out {counters['frames_out']}, "
                    f"bad FCS {counters['hdlc_bad_fcs']}, link ended: {port.session.failure or 'cleanly'}"
                )
                ok &= port.session.failure is None
            stats = node.call(node.stack.counters)
            log(f"{node.name}: " + " ".join(f"{k}={v}" for k, v in sorted(stats.items()) if v))
        ok &= bool(gw_a.events) and bool(gw_b.events) and bool(cl.events) and bool(hs.events)
    finally:
        for node in nodes:
            node.loop.close()
    from wipstack.drivers.demo_at import run_at_demo

    log("AT act: a virtual WIPSoft module driven with +WIP commands over ptys")
    ok &= run_at_demo(seed, log)
    from wipstack.drivers.demo_cellular import run_cellular_demo

    log("cellular act: GPRS through a simulated 27.007 modem to an access server, and CMUX on a UART")
    ok &= run_cellular_demo(seed, log)
    log("demo: OK" if ok else "demo: FAILED")
    return 0 if ok else 1


def _step_pings_and_names(client: _Node, log: Log) -> bool:
    ok = True
    replies = _ping(client, str(GATEWAY_A), PingConfig(count=3, interval=0.05))
    rtts = [r.rtt * 1000 for r in replies if r.rtt is not None]
    log(f"client: ping gateway {GATEWAY_A}: {len(rtts)}/3 replies, rtt " + "/".join(f"{t:.2f}" for t in rtts) + " ms")
    ok &= len(rtts) == 3
    found = _resolve(client, "www.demo.example")
    if found is None or found.error is not None or not found.addresses:
        log(f"client: resolve www.demo.example FAILED: {found}")
        return False
    log(
        f"client: www.demo.example is {IPv4Address(found.addresses[0])} (canonical name {found.canonical_name}), "
        "asked of the DNS server learned from IPCP"
    )
    missing = _resolve(client, "nothing.demo.example")
    log(f"client: nothing.demo.example: {missing.error.value if missing and missing.error else missing}")
    ok &= missing is not None and missing.error is not None
    big = _ping(client, str(IPv4Address(found.addresses[0])), PingConfig(count=3, interval=0.05, size=4000))
    rtts = [r.rtt * 1000 for r in big if r.rtt is not None]
    log(
        f"client: ping host with 4000 octets (fragmented at 1500, re-fragmented at the 576 hop): "
        f"{len(rtts)}/3 replies, ttl {big[0].ttl if big else '-'}, rtt " + "/".join(f"{t:.2f}" for t in rtts) + " ms"
    )
    return ok and len(rtts) == 3


def _step_errors(client: _Node, log: Log) -> bool:
    sock = client.call(client.stack.udp_socket)
    client.call(lambda: sock.sendto(b"anyone?", str(HOST), 9))
    client.wait(lambda: bool(sock.errors), 5)
    errors = client.call(lambda: list(sock.errors))
    log(f"client: UDP to {HOST}:9: {errors[0].description if errors else 'no error reported'}")
    client.call(sock.close)
    expired = _ping(client, str(HOST), PingConfig(count=1, ttl=1))
    log(f"client: ping host with TTL 1: {expired[0].error if expired else 'no answer'}")
    return bool(errors) and bool(expired) and expired[0].error is not None
