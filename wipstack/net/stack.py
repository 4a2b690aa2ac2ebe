"""The IPv4 host and router: input validation, local delivery, forwarding, output, ICMP, UDP.

Sans-I/O.  Drivers call :meth:`Stack.receive` with each datagram an interface received and
drain :meth:`Interface.take_output` for what it must send; :meth:`Stack.next_deadline` and
:meth:`Stack.on_timer` run reassembly timeouts, pings and transport timers.  Nothing here
reads a clock or touches a file descriptor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Protocol

from wipstack.errors import DropCounters, DropReason, MalformedPacket
from wipstack.net.config import StackConfig
from wipstack.net.dns_client import DnsClient
from wipstack.net.fragment import (
    LIMITED_BROADCAST,
    fragment,
    is_martian_destination,
    is_martian_source,
    is_multicast,
)
from wipstack.net.icmp import PingConfig, PingSession, TokenBucket
from wipstack.net.interface import Interface
from wipstack.net.reassembly import Reassembler
from wipstack.net.routing import RoutingTable
from wipstack.net.udp import IcmpError, SocketError, UdpSocket, UdpTable
from wipstack.rand import RandomSource
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.layer import TcpLayer
from wipstack.wire.icmp import IcmpRepr, IcmpType, TimeExceededCode, UnreachableCode
from wipstack.wire.ipv4 import IpProtocol, Ipv4Repr, address
from wipstack.wire.udp import UdpRepr

Buffer = bytes | bytearray | memoryview

#: Datagrams to our own addresses waiting for delivery (like an interface queue).
MAX_LOOPBACK_QUEUE = 1024

_ICMP = IpProtocol.ICMP.value
_UDP = IpProtocol.UDP.value


class TransportHandler(Protocol):
    """A transport protocol plugged into the stack (TCP registers one)."""

    def receive(self, header: Ipv4Repr, payload: memoryview, now: float) -> bool:
        """A datagram for us; False when no endpoint wanted it (the stack then answers unreachable)."""

    def icmp_error(self, error: IcmpRepr, original: Ipv4Repr, original_payload: bytes, now: float) -> None:
        """An ICMP error about a datagram this protocol sent."""

    def next_deadline(self) -> float | None:
        """When ``on_timer`` is due."""

    def on_timer(self, now: float) -> None:
        """Run due timers."""


def describe_icmp_error(error: IcmpRepr, reporter: bytes) -> str:
    """A human-readable description of an ICMP error, like ping's output."""
    names: dict[tuple[int, int], str] = {
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.NET): "network unreachable",
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.HOST): "host unreachable",
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.PROTOCOL): "protocol unreachable",
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT): "port unreachable",
        (IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED): "fragmentation needed",
        (IcmpType.TIME_EXCEEDED, TimeExceededCode.TTL_EXCEEDED): "time to live exceeded",
        (IcmpType.TIME_EXCEEDED, TimeExceededCode.REASSEMBLY_TIMEOUT): "fragment reassembly time exceeded",
    }
    name = names.get((error.type, error.code), f"ICMP type {int(error.type)} code {error.code}")
    return f"{name} from {IPv4Address(reporter)}"


class Stack:
    """An IPv4 host with any number of interfaces; a router too when ``config.forwarding``."""

    def __init__(
        self, rng: RandomSource, config: StackConfig | None = None, tcp_config: TcpConfig | None = None
    ) -> None:
        self.config = config or StackConfig()
        self.rng = rng
        self.interfaces: dict[str, Interface] = {}
        self.routes = RoutingTable()
        self.drops = DropCounters()
        self.udp = UdpTable(rng, self.config.ephemeral_ports)
        self.handlers: dict[int, TransportHandler] = {}
        self.pings: list[PingSession] = []
        self.reassembler = Reassembler(
            timeout=self.config.fragment_timeout,
            max_datagrams=self.config.max_reassembly_datagrams,
            max_bytes=self.config.max_reassembly_bytes,
            max_fragments=self.config.max_fragments_per_datagram,
        )
        self.icmp_limiter = TokenBucket(self.config.icmp_error_rate, self.config.icmp_error_burst)
        self.datagrams_in = 0
        self.delivered = 0
        self.forwarded = 0
        self.datagrams_out = 0
        self.fragments_out = 0
        self.icmp_errors_out = 0
        self.echo_replies_out = 0
        self._local_addresses: dict[bytes, Interface] = {}
        self._broadcasts: set[bytes] = set()  # directed broadcast addresses of our subnets
        self._loopback: deque[bytes] = deque()
        self.batching = False  # inside receive_batch: transports defer their answers to its end
        #: The DNS stub resolver (RFC 1035) on the stack's own UDP; servers from IPCP or configuration.
        self.dns = DnsClient(self)
        #: TCP (RFC 9293): listeners, connections and their timers.
        self.tcp = TcpLayer(self, tcp_config)

    # ---------------------------------------------------------------- set-up
    def add_interface(self, interface: Interface, *, connected_routes: bool = True) -> Interface:
        """Attach ``interface``; adds the route to its subnet (and to its point-to-point peer)."""
        if interface.name in self.interfaces:
            raise ValueError(f"interface {interface.name} already exists")
        self.interfaces[interface.name] = interface
        self._local_addresses.setdefault(interface.address, interface)
        self._update_broadcasts()
        if connected_routes:
            if interface.peer is not None:
                self.routes.add(interface.peer, 32, interface.name)
            if interface.prefix_len < 32:
                mask = interface.network_mask
                network = (int.from_bytes(interface.address, "big") & mask).to_bytes(4, "big")
                self.routes.add(network, interface.prefix_len, interface.name)
        return interface

    def remove_interface(self, name: str) -> None:
        """Detach an interface and every route through it."""
        interface = self.interfaces.pop(name)
        if self._local_addresses.get(interface.address) is interface:
            # an unnumbered link may share the address with another interface: keep it local then
            others = [i for i in self.interfaces.values() if i.address == interface.address]
            if others:
                self._local_addresses[interface.address] = others[0]
            else:
                del self._local_addresses[interface.address]
        self.routes.remove_interface(name)
        self._update_broadcasts()

    def _update_broadcasts(self) -> None:
        self._broadcasts = {b for i in self.interfaces.values() if (b := i.broadcast) is not None}

    def set_config(self, config: StackConfig) -> None:
        """Apply new defaults (TTL, TOS, fragment timeout...) from now on."""
        self.config = config
        self.reassembler.timeout = config.fragment_timeout
        self.reassembler.max_datagrams = config.max_reassembly_datagrams
        self.reassembler.max_bytes = config.max_reassembly_bytes
        self.reassembler.max_fragments = config.max_fragments_per_datagram
        self.udp.set_ephemeral_range(config.ephemeral_ports)
        self.icmp_limiter = TokenBucket(config.icmp_error_rate, config.icmp_error_burst)

    def register_transport(self, protocol: int, handler: TransportHandler) -> None:
        """Deliver datagrams of IP ``protocol`` to ``handler``."""
        self.handlers[protocol] = handler

    def is_local(self, addr: bytes) -> bool:
        """Whether ``addr`` is one of our interface addresses."""
        return addr in self._local_addresses

    # ------------------------------------------------------------------ APIs
    def udp_socket(self) -> UdpSocket:
        """A new, unbound UDP socket."""
        return UdpSocket(
            self.udp, self, max_queue=self.config.udp_receive_queue, max_queue_bytes=self.config.udp_receive_bytes
        )

    def ping(self, destination: str | bytes, config: PingConfig, now: float) -> PingSession:
        """Start sending echo requests; follow the session's ``next_reply()`` / ``results``."""
        dst = address(destination)
        if self.source_address_for(dst) is None and not self.is_local(dst):
            raise SocketError("ENETUNREACH", f"no route to {IPv4Address(dst)}")
        session = PingSession(dst, config, self.rng, now)
        self.pings.append(session)
        self._run_pings(now)
        return session

    def source_address_for(self, destination: bytes) -> bytes | None:
        """Our address on the interface that routes to ``destination`` (RFC 1122 §3.3.4.3)."""
        if destination in self._local_addresses:
            return destination
        route = self.routes.lookup(destination)
        if route is None:
            return None
        interface = self.interfaces.get(route.interface)
        return None if interface is None else interface.address

    def send_udp(
        self, src: tuple[bytes, int], dst: tuple[bytes, int], payload: bytes, *, ttl: int | None, tos: int | None
    ) -> bool:
        """Emit one UDP datagram (the socket layer calls this)."""
        segment = UdpRepr(src[1], dst[1]).emit(payload, src=src[0], dst=dst[0], checksum=self.config.udp_checksum)
        return self.send_datagram(src[0], dst[0], _UDP, segment, ttl=ttl, tos=tos)

    def send_datagram(
        self,
        src: bytes,
        dst: bytes,
        protocol: int,
        payload: Buffer,
        *,
        ttl: int | None = None,
        tos: int | None = None,
        dont_fragment: bool = False,
    ) -> bool:
        """Route, fragment if needed and queue one datagram we originate; False (counted) if it cannot leave."""
        header = Ipv4Repr(
            src,
            dst,
            protocol,
            self.config.ttl if ttl is None else ttl,
            self.config.tos if tos is None else tos,
            self.rng.getrandbits(16),
            dont_fragment,
        )
        if dst in self._local_addresses:
            if len(self._loopback) >= MAX_LOOPBACK_QUEUE:
                self.drops.count(DropReason.QUEUE_FULL)
                return False
            self._loopback.append(header.emit(payload))  # to ourselves: delivered at the next timer run
            self.datagrams_out += 1
            return True
        route = self.routes.lookup(dst)
        interface = None if route is None else self.interfaces.get(route.interface)
        if interface is None or not interface.up:
            self.drops.count(DropReason.NO_ROUTE)
            return False
        if not self._transmit(interface, header, payload):
            return False
        self.datagrams_out += 1
        return True

    # ----------------------------------------------------------------- input
    def receive_batch(self, interface: Interface, packets: list[bytes], now: float) -> None:
        """Several datagrams read at once: transports answer once for the whole batch.

        Like Linux's GRO, in-order TCP segments of one batch are acknowledged by one ACK that also
        carries the window the application left after reading them all.
        """
        self.batching = True
        try:
            for packet in packets:
                self.receive(interface, packet, now)
        finally:
            self.batching = False
        self.tcp.flush(now)

    def receive(self, interface: Interface | str, packet: Buffer, now: float) -> None:
        """One IPv4 datagram that ``interface`` received."""
        iface = self.interfaces[interface] if isinstance(interface, str) else interface
        iface.counters.packets_in += 1
        iface.counters.bytes_in += len(packet)
        self.datagrams_in += 1
        try:
            header, payload = Ipv4Repr.parse(packet)
        except MalformedPacket as exc:
            iface.counters.drops.count(exc.reason)
            self.drops.count(exc.reason)
            return
        dst = header.dst
        if header.src in self._broadcasts:
            self.drops.count(DropReason.BAD_VALUE)  # RFC 1122 §3.2.1.3: a broadcast is never a source
            return
        if dst in self._local_addresses or dst == LIMITED_BROADCAST or dst in self._broadcasts:
            # directed broadcasts of our subnets are ours, never forwarded (RFC 2644)
            self._deliver(header, payload, packet, now)
        elif self.config.forwarding and not is_multicast(dst):
            self._forward(iface, header, payload, packet, now)
        else:
            self.drops.count(DropReason.NOT_FOR_US)
        if self._loopback:
            self._run_loopback(now)

    def _deliver(self, header: Ipv4Repr, payload: memoryview, packet: Buffer, now: float) -> None:
        if header.more_fragments or header.fragment_offset:
            whole = self.reassembler.add(header, payload, packet, now)
            if whole is None:
                return
            header, data = whole
            payload = memoryview(data)
            packet = b""  # no longer one received datagram: errors quote the reassembled header
        self.delivered += 1
        protocol = header.protocol
        if protocol == _ICMP:
            self._icmp_input(header, payload, now)
        elif protocol == _UDP:
            self._udp_input(header, payload, packet, now)
        else:
            handler = self.handlers.get(protocol)
            if handler is not None:
                handler.receive(header, payload, now)  # it answers unwanted datagrams itself (TCP: RST)
                return
            self.drops.count(DropReason.PROTOCOL_UNREACHABLE)
            self._send_icmp_error(
                header, packet or header.emit(payload), IcmpType.DEST_UNREACHABLE,
                UnreachableCode.PROTOCOL, now,
            )  # fmt: skip

    # -------------------------------------------------------------------- UDP
    def _udp_input(self, header: Ipv4Repr, payload: memoryview, packet: Buffer, now: float) -> None:
        try:
            udp, data = UdpRepr.parse(payload, src=header.src, dst=header.dst)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return
        sock = self.udp.lookup((header.dst, udp.dst_port), (header.src, udp.src_port))
        if sock is None:
            self.drops.count(DropReason.PORT_UNREACHABLE)
            if header.dst in self._local_addresses:  # RFC 1122 §4.1.3.1: not for broadcasts
                self._send_icmp_error(
                    header, packet or header.emit(payload), IcmpType.DEST_UNREACHABLE,
                    UnreachableCode.PORT, now,
                )  # fmt: skip
            return
        sock.deliver(bytes(data), (header.src, udp.src_port), now)

    # ------------------------------------------------------------------- ICMP
    def _icmp_input(self, header: Ipv4Repr, payload: memoryview, now: float) -> None:
        try:
            icmp = IcmpRepr.parse(payload)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return
        if icmp.type == IcmpType.ECHO_REQUEST:
            if header.dst not in self._local_addresses:
                return  # RFC 1122 §3.2.2.6: echo to a broadcast address MAY be ignored; we do
            reply = replace(icmp, type=IcmpType.ECHO_REPLY)
            self.echo_replies_out += 1
            self.send_datagram(header.dst, header.src, _ICMP, reply.emit(), tos=header.tos)
        elif icmp.type == IcmpType.ECHO_REPLY:
            ident = icmp.rest >> 16
            for session in self.pings:
                if session.identifier == ident and session.destination == header.src:
                    session.on_reply(icmp.rest & 0xFFFF, icmp.payload, header.ttl, now)
                    break
        elif icmp.is_error:
            self._icmp_error_input(header, icmp, now)

    def _icmp_error_input(self, header: Ipv4Repr, icmp: IcmpRepr, now: float) -> None:
        """Hand an ICMP error to whoever sent the datagram it quotes (RFC 1122 §3.2.2)."""
        original_raw = icmp.payload
        try:
            original, quoted = Ipv4Repr.parse(_fix_total_length(original_raw), verify_checksum=False)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return
        if original.src not in self._local_addresses:
            self.drops.count(DropReason.NOT_FOR_US)
            return
        data = bytes(quoted)
        description = describe_icmp_error(icmp, header.src)
        if original.protocol == _UDP and len(data) >= 4:
            src_port = int.from_bytes(data[0:2], "big")
            dst_port = int.from_bytes(data[2:4], "big")
            error = IcmpError(icmp.type, icmp.code, header.src, (original.dst, dst_port), description)
            for sock in self.udp.find_local((original.src, src_port)):
                sock.deliver_error(error)
        elif original.protocol == _ICMP and len(data) >= 8 and data[0] == IcmpType.ECHO_REQUEST:
            ident = int.from_bytes(data[4:6], "big")
            seq = int.from_bytes(data[6:8], "big")
            for session in self.pings:
                if session.identifier == ident and session.destination == original.dst:
                    session.on_error(seq, description)
        else:
            handler = self.handlers.get(original.protocol)
            if handler is not None:
                handler.icmp_error(icmp, original, data, now)

    def _send_icmp_error(self, original: Ipv4Repr, packet: Buffer, icmp_type: int, code: int, now: float,
                         *, mtu: int | None = None) -> None:  # fmt: skip
        """Answer ``packet`` with an ICMP error, unless RFC 1122 §3.2.2 forbids it or the rate limit says no."""
        if original.fragment_offset:
            return  # only about the first fragment
        if is_multicast(original.dst) or original.dst == LIMITED_BROADCAST or is_martian_source(original.src):
            return
        if original.dst in self._broadcasts or original.src in self._broadcasts:
            return  # RFC 1122 §3.2.2: never about a datagram sent to (or from) a broadcast address
        if original.protocol == _ICMP:
            view = memoryview(packet)[original.header_len :]
            if len(view) < 1 or view[0] not in (IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY):
                return  # never an error about an ICMP error (or about an unknown ICMP message)
        source = original.dst if original.dst in self._local_addresses else self.source_address_for(original.src)
        if source is None:
            return
        if not self.icmp_limiter.take(now):
            self.drops.count(DropReason.RATE_LIMITED)
            return
        message = IcmpRepr.error(icmp_type, code, packet, mtu=mtu)
        self.icmp_errors_out += 1
        self.send_datagram(source, original.src, _ICMP, message.emit())

    # -------------------------------------------------------------- forwarding
    def _forward(self, inbound: Interface, header: Ipv4Repr, payload: memoryview, packet: Buffer, now: float) -> None:
        """RFC 1812 §5.2: decrement TTL, route, fragment or refuse."""
        if is_martian_source(header.src) or is_martian_destination(header.dst):
            self.drops.count(DropReason.BAD_VALUE)
            return
        if header.ttl <= 1:
            self.drops.count(DropReason.TTL_EXPIRED)
            self._send_icmp_error(header, packet, IcmpType.TIME_EXCEEDED, TimeExceededCode.TTL_EXCEEDED, now)
            return
        route = self.routes.lookup(header.dst)
        outbound = None if route is None else self.interfaces.get(route.interface)
        if outbound is None or not outbound.up:
            self.drops.count(DropReason.NO_ROUTE)
            self._send_icmp_error(header, packet, IcmpType.DEST_UNREACHABLE, UnreachableCode.NET, now)
            return
        forwarded = replace(header, ttl=header.ttl - 1)
        if header.header_len + len(payload) > outbound.mtu and header.dont_fragment:
            self.drops.count(DropReason.NEEDS_FRAGMENTATION)
            self._send_icmp_error(
                header, packet, IcmpType.DEST_UNREACHABLE, UnreachableCode.FRAGMENTATION_NEEDED, now,
                mtu=outbound.mtu,
            )  # fmt: skip
            return
        if self._transmit(outbound, forwarded, payload):
            self.forwarded += 1

    # ------------------------------------------------------------------ output
    def _transmit(self, interface: Interface, header: Ipv4Repr, payload: Buffer) -> bool:
        if header.header_len + len(payload) <= interface.mtu:
            return interface.queue(header.emit(payload))
        if header.dont_fragment:
            self.drops.count(DropReason.NEEDS_FRAGMENTATION)
            return False
        pieces = fragment(header, payload, interface.mtu)
        self.fragments_out += len(pieces)
        ok = True
        for piece in pieces:
            ok = interface.queue(piece) and ok
        return ok

    # ------------------------------------------------------------------ timers
    def next_deadline(self) -> float | None:
        """The earliest moment :meth:`on_timer` must run (0.0 when looped-back datagrams wait)."""
        if self._loopback:
            return 0.0
        deadlines = [self.reassembler.next_deadline()]
        deadlines += [s.next_deadline() for s in self.pings]
        deadlines.append(self.dns.next_deadline())
        deadlines += [h.next_deadline() for h in self.handlers.values()]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        """Run everything that is due."""
        self._run_loopback(now)
        for expired in self.reassembler.expire(now):
            if expired.first_packet:
                try:
                    original, _ = Ipv4Repr.parse(_fix_total_length(expired.first_packet), verify_checksum=False)
                except MalformedPacket:
                    continue
                self._send_icmp_error(
                    original, expired.first_packet, IcmpType.TIME_EXCEEDED, TimeExceededCode.REASSEMBLY_TIMEOUT, now
                )  # RFC 1122 §3.3.2: SHOULD send Time Exceeded when fragment zero arrived
        self._run_pings(now)
        deadline = self.dns.next_deadline()
        if deadline is not None and deadline <= now:
            self.dns.on_timer(now)
        for handler in list(self.handlers.values()):
            deadline = handler.next_deadline()
            if deadline is not None and deadline <= now:
                handler.on_timer(now)
        self._run_loopback(now)

    def _run_pings(self, now: float) -> None:
        for session in self.pings:
            session.expire(now)
            for seq in session.due_requests(now):
                request = IcmpRepr.echo(session.identifier, seq & 0xFFFF, session.payload)
                src = self.source_address_for(session.destination)
                if src is None or not self.send_datagram(
                    src, session.destination, _ICMP, request.emit(), ttl=session.config.ttl
                ):
                    session.on_error(seq & 0xFFFF, "no route to host")
        self.pings = [s for s in self.pings if not s.done or s.next_deadline() is not None]

    def _run_loopback(self, now: float) -> None:
        rounds = 0
        while self._loopback and rounds < 64:  # bounded: a reply to a reply cannot spin forever
            rounds += 1
            batch = list(self._loopback)
            self._loopback.clear()
            for packet in batch:
                header, payload = Ipv4Repr.parse(packet)
                self._deliver(header, payload, packet, now)

    # ------------------------------------------------------------------ status
    def counters(self) -> dict[str, int]:
        """Stack-wide counters (like ``netstat -s``)."""
        counts = {
            "datagrams_in": self.datagrams_in,
            "delivered": self.delivered,
            "forwarded": self.forwarded,
            "datagrams_out": self.datagrams_out,
            "fragments_out": self.fragments_out,
            "reassembled": self.reassembler.completed,
            "icmp_errors_out": self.icmp_errors_out,
            "echo_replies_out": self.echo_replies_out,
        }
        for source in (self.drops, self.reassembler.drops):
            for reason, n in source.items():
                key = f"drop_{reason.name.lower()}"
                counts[key] = counts.get(key, 0) + n
        return counts

    def describe(self) -> Iterable[str]:
        """Interfaces and routes, one line each (like ``ip addr`` and ``ip route``)."""
        for interface in self.interfaces.values():
            yield repr(interface)
        for route in self.routes:
            yield str(route)


def _fix_total_length(quoted: bytes) -> bytes:
    """A quoted header's Total Length covers the whole original; trim it to what the quote holds."""
    if len(quoted) < 20:
        return quoted
    hlen = (quoted[0] & 0x0F) << 2
    if hlen < 20 or len(quoted) < hlen:
        return quoted
    length = min(len(quoted), int.from_bytes(quoted[2:4], "big"))
    return quoted[:2] + max(length, hlen).to_bytes(2, "big") + quoted[4:]
