"""Ports of the network loop: a TUN device, and a PPP session on a byte link."""

from __future__ import annotations

import time
from collections.abc import Callable
from ipaddress import IPv4Address

from wipstack.drivers.link import ByteLink
from wipstack.drivers.netloop import READ_BUDGET
from wipstack.drivers.pcap import Direction, PcapTap
from wipstack.drivers.ppp_link import describe_event
from wipstack.drivers.tun import TunDevice
from wipstack.net.interface import Interface
from wipstack.net.stack import Stack
from wipstack.ppp.events import IpcpDown, IpcpUp, LinkDead, LinkTerminated, PppEvent
from wipstack.ppp.session import PppSession

Logger = Callable[[str], None]

#: Datagrams handed to the stack as one batch (one TCP ACK per connection per batch, like GRO).
BATCH = 64

#: Bytes produced by a PPP session and not yet written before we stop reading its line.
MAX_PENDING_OUTPUT = 1 << 20


class TunPort:
    """A stack interface whose datagrams go through a TUN device (raw IPv4, no packet info)."""

    def __init__(self, stack: Stack, interface: Interface, device: TunDevice, *, tap: PcapTap | None = None) -> None:
        self.stack = stack
        self.interface = interface
        self.device = device
        self.tap = tap
        self.name = interface.name
        if interface.name not in stack.interfaces:
            stack.add_interface(interface)

    def read_fds(self) -> list[int]:
        return [] if self.device.closed else [self.device.fileno()]

    def write_fds(self) -> list[int]:
        return []  # a full TUN queue drops (counted by the device), as a NIC would

    def on_readable(self, fd: int, now: float) -> None:
        batch: list[bytes] = []
        for _ in range(READ_BUDGET):
            packet = self.device.read_packet()
            if packet is None:
                break
            if self.tap is not None:
                self.tap(Direction.INBOUND, packet)
            batch.append(packet)
            if len(batch) == BATCH:
                self.stack.receive_batch(self.interface, batch, now)
                self.flush(now)  # the batch's ACKs leave now, so the peer refills while we work
                batch = []
        if batch:
            self.stack.receive_batch(self.interface, batch, now)

    def on_writable(self, fd: int, now: float) -> None:
        pass

    def flush(self, now: float) -> None:
        if not self.interface.output:
            return
        for packet in self.interface.take_output():
            if self.tap is not None:
                self.tap(Direction.OUTBOUND, packet)
            self.device.write_packet(packet)

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        pass

    def close(self) -> None:
        self.device.close()


class PppPort:
    """A PPP session on a byte link; its interface joins the stack while IPCP is Opened.

    ``default_route`` makes the link the default route once it is up (what a PPP client
    wants); ``interface_name`` names the stack interface (``ppp0`` by default).
    """

    def __init__(
        self,
        stack: Stack,
        session: PppSession,
        link: ByteLink,
        *,
        interface_name: str = "ppp0",
        default_route: bool = False,
        use_peer_dns: bool = True,
        log: Logger | None = None,
        tap: PcapTap | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.session = session
        self.link = link
        self.name = interface_name
        self.default_route = default_route
        self.use_peer_dns = use_peer_dns
        self.log = log or (lambda line: None)
        self.clock = clock
        self.interface: Interface | None = None
        self.events: list[PppEvent] = []
        self.eof = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.started_at: float | None = None
        self.ipcp_up_at: float | None = None
        self.on_event: Callable[[PppEvent], None] | None = None
        self._pending = bytearray()
        if tap is not None:
            session.frame_tap = lambda outbound, frame: tap(
                Direction.OUTBOUND if outbound else Direction.INBOUND, frame
            )

    def open(self) -> None:
        """Start negotiating."""
        self.started_at = self.clock()
        self.session.open(self.started_at)

    # ------------------------------------------------------------------ Port
    def read_fds(self) -> list[int]:
        if self.eof or len(self._pending) >= MAX_PENDING_OUTPUT:
            return []
        return [self.link.read_fd]

    def write_fds(self) -> list[int]:
        return [self.link.write_fd] if self._pending and not self.eof else []

    def on_readable(self, fd: int, now: float) -> None:
        try:
            data = self.link.read()
        except BlockingIOError:
            return
        if not data:
            self.eof = True
            self.session.lower_down(now)
            self._after(now)
            return
        self.bytes_in += len(data)
        self.session.receive_bytes(data, now)
        self._after(now)

    def on_writable(self, fd: int, now: float) -> None:
        self._write(now)

    def flush(self, now: float) -> None:
        interface = self.interface
        if interface is not None and interface.output:
            for packet in interface.take_output():
                self.session.send_ip(packet, now)
        self._after(now)
        self._write(now)

    def next_deadline(self) -> float | None:
        return self.session.next_deadline()

    def on_timer(self, now: float) -> None:
        self.session.on_timer(now)
        self._after(now)

    def close(self) -> None:
        self._detach()
        self.link.close()

    # ----------------------------------------------------------------- state
    @property
    def is_up(self) -> bool:
        """IPCP is Opened and the interface is in the stack."""
        return self.interface is not None

    def _after(self, now: float) -> None:
        """Deliver received datagrams, handle session events, collect output."""
        interface = self.interface
        packets = self.session.take_ip_packets()
        if packets and interface is not None:
            self.stack.receive_batch(interface, packets, now)  # one TCP ACK per read, as from TUN
        while (event := self.session.next_event()) is not None:
            self.events.append(event)
            for line in describe_event(event):
                self.log(line)
            if isinstance(event, IpcpUp):
                self._attach(now)
            elif isinstance(event, IpcpDown | LinkDead | LinkTerminated):
                self._detach()
            if self.on_event is not None:
                self.on_event(event)
        self._pending += self.session.bytes_to_send()

    def _attach(self, now: float) -> None:
        result = self.session.ipcp.result
        link = self.session.link
        if result is None or link is None:
            return
        self._detach()
        self.ipcp_up_at = now
        interface = Interface(
            self.name,
            result.local_address.packed,
            peer=result.peer_address.packed,
            mtu=max(68, min(link.peer_mru, link.mru)),  # what either end can take: TCP announces its MSS from it
        )
        self.stack.add_interface(interface)
        if self.default_route:
            self.stack.routes.add_default(self.name)
        if result.dns_servers and self.use_peer_dns:
            self.stack.dns.servers = [a.packed for a in result.dns_servers]  # RFC 1877: learned from IPCP
            self.log(f"{self.name}: DNS servers {', '.join(str(a) for a in result.dns_servers)}")
        self.interface = interface
        self.log(f"{self.name}: {IPv4Address(interface.address)} peer {result.peer_address} mtu {interface.mtu}")

    def _detach(self) -> None:
        if self.interface is not None and self.interface.name in self.stack.interfaces:
            self.stack.remove_interface(self.interface.name)
        self.interface = None

    def _write(self, now: float) -> None:
        if not self._pending:
            return
        if self.eof:
            self._pending.clear()
            return
        try:
            written = self.link.write(bytes(self._pending))
        except (BrokenPipeError, ConnectionResetError):
            self._pending.clear()
            self.eof = True
            self.session.lower_down(now)
            self._after(now)
            return
        except BlockingIOError:
            return
        self.bytes_out += written
        del self._pending[:written]
