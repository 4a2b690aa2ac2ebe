"""A PPP session joined to a stack: its interface exists while IPCP is Opened (sans-I/O).

The binding is what a PPP link looks like to the IP layer: bytes from the line go in with
:meth:`PppBinding.receive_bytes`, bytes for the line come out of :meth:`bytes_to_send`, and
datagrams flow between the session and the stack in between.  The fd driver
(:class:`wipstack.drivers.ports.PppPort`) and the AT frontend's UART bearers both use it.
"""

from __future__ import annotations

from collections.abc import Callable

from wipstack.net.interface import Interface
from wipstack.net.stack import Stack
from wipstack.ppp.events import IpcpDown, IpcpUp, LinkDead, LinkTerminated, PppEvent
from wipstack.ppp.session import PppSession

EventCallback = Callable[[PppEvent], None]


class PppBinding:
    """``session`` on ``stack`` as interface ``name`` (see the module docstring).

    ``default_route`` makes the link the default route once it is up (a PPP client wants
    that); ``use_peer_dns`` takes the DNS servers IPCP learned (RFC 1877) for the resolver.
    """

    def __init__(
        self,
        stack: Stack,
        session: PppSession,
        name: str = "ppp0",
        *,
        default_route: bool = False,
        use_peer_dns: bool = True,
    ) -> None:
        self.stack = stack
        self.session = session
        self.name = name
        self.default_route = default_route
        self.use_peer_dns = use_peer_dns
        self.interface: Interface | None = None
        self.events: list[PppEvent] = []
        self.on_event: EventCallback | None = None
        self.started_at: float | None = None
        self.ipcp_up_at: float | None = None

    # ------------------------------------------------------------------ the line
    def open(self, now: float) -> None:
        """Start negotiating."""
        self.started_at = now
        self.session.open(now)
        self.pump(now)

    def close(self, now: float, reason: str = "User request") -> None:
        """Terminate the link (LCP Terminate-Request); the interface leaves the stack."""
        self.session.close(now, reason)
        self.pump(now)

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Octets from the line."""
        self.session.receive_bytes(data, now)
        self.pump(now)

    def lower_down(self, now: float) -> None:
        """The line is gone (EOF, hang-up)."""
        self.session.lower_down(now)
        self.pump(now)
        self.detach()

    def bytes_to_send(self) -> bytes:
        """Octets for the line."""
        return self.session.bytes_to_send()

    def flush(self, now: float) -> None:
        """Frame what the stack queued for the interface."""
        interface = self.interface
        if interface is not None and interface.output:
            for packet in interface.take_output():
                self.session.send_ip(packet, now)
        self.pump(now)

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` is due."""
        return self.session.next_deadline()

    def on_timer(self, now: float) -> None:
        """Run the session's due timers."""
        self.session.on_timer(now)
        self.pump(now)

    # ------------------------------------------------------------------ state
    @property
    def is_up(self) -> bool:
        """IPCP is Opened and the interface is in the stack."""
        return self.interface is not None

    def pump(self, now: float) -> None:
        """Deliver received datagrams to the stack and act on the session's events."""
        interface = self.interface
        packets = self.session.take_ip_packets()
        if packets and interface is not None:
            self.stack.receive_batch(interface, packets, now)  # one TCP ACK per read, as from TUN
        while (event := self.session.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, IpcpUp):
                self._attach(now)
            elif isinstance(event, IpcpDown | LinkDead | LinkTerminated):
                self.detach()
            if self.on_event is not None:
                self.on_event(event)

    def detach(self) -> None:
        """Take the interface out of the stack."""
        if self.interface is not None and self.interface.name in self.stack.interfaces:
            self.stack.remove_interface(self.interface.name)
        self.interface = None

    def _attach(self, now: float) -> None:
        result = self.session.ipcp.result
        link = self.session.link
        if result is None or link is None:
            return
        self.detach()
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
        self.interface = interface
