"""Ports of the network loop: a TUN device, and a PPP session on a byte link."""

from __future__ import annotations

import time
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Protocol

from wipstack.drivers.link import ByteLink
from wipstack.drivers.netloop import READ_BUDGET
from wipstack.drivers.pcap import Direction, PcapTap
from wipstack.drivers.ppp_link import describe_event
from wipstack.drivers.tun import TunDevice
from wipstack.net.interface import Interface
from wipstack.net.ppp_binding import PppBinding
from wipstack.net.stack import Stack
from wipstack.ppp.events import IpcpUp, PppEvent
from wipstack.ppp.session import PppSession

Logger = Callable[[str], None]

#: Datagrams handed to the stack as one batch (one TCP ACK per connection per batch, like GRO).
BATCH = 64

#: Bytes produced by a PPP session and not yet written before we stop reading its line.
MAX_PENDING_OUTPUT = 1 << 20


class Timed(Protocol):
    """Something with timers of its own (an FTP session): ``poll``, ``next_deadline``, ``on_timer``."""

    def poll(self, now: float) -> None: ...

    def next_deadline(self) -> float | None: ...

    def on_timer(self, now: float) -> None: ...


class TimerPort:
    """A sans-I/O object's timers as a port of the network loop (it has no file descriptors).

    ``on_flush`` (if given) runs every round of the loop, e.g. a polling pump.
    """

    def __init__(self, timed: Timed, name: str = "timers", on_flush: Callable[[], None] | None = None) -> None:
        self.timed = timed
        self.name = name
        self.on_flush = on_flush

    def read_fds(self) -> list[int]:
        return []

    def write_fds(self) -> list[int]:
        return []

    def on_readable(self, fd: int, now: float) -> None:
        pass

    def on_writable(self, fd: int, now: float) -> None:
        pass

    def flush(self, now: float) -> None:
        self.timed.poll(now)
        if self.on_flush is not None:
            self.on_flush()

    def next_deadline(self) -> float | None:
        return self.timed.next_deadline()

    def on_timer(self, now: float) -> None:
        self.timed.on_timer(now)

    def close(self) -> None:
        pass


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
    wants); ``interface_name`` names the stack interface (``ppp0`` by default).  The
    session-to-stack glue is :class:`~wipstack.net.ppp_binding.PppBinding`; this port moves
    its octets to and from the link.
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
        self.log = log or (lambda line: None)
        self.clock = clock
        self.binding = PppBinding(stack, session, interface_name, default_route=default_route,
                                  use_peer_dns=use_peer_dns)  # fmt: skip
        self.binding.on_event = self._on_binding_event
        self.eof = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.on_event: Callable[[PppEvent], None] | None = None
        self._pending = bytearray()
        if tap is not None:
            session.frame_tap = lambda outbound, frame: tap(
                Direction.OUTBOUND if outbound else Direction.INBOUND, frame
            )

    @property
    def interface(self) -> Interface | None:
        """The stack interface while IPCP is Opened."""
        return self.binding.interface

    @property
    def events(self) -> list[PppEvent]:
        """Every event the session reported."""
        return self.binding.events

    @property
    def started_at(self) -> float | None:
        return self.binding.started_at

    @property
    def ipcp_up_at(self) -> float | None:
        return self.binding.ipcp_up_at

    def open(self) -> None:
        """Start negotiating."""
        self.binding.open(self.clock())
        self._collect()

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
            self._line_down(now)
            return
        self.bytes_in += len(data)
        self.binding.receive_bytes(data, now)
        self._collect()

    def on_writable(self, fd: int, now: float) -> None:
        self._write(now)

    def flush(self, now: float) -> None:
        self.binding.flush(now)
        self._collect()
        self._write(now)

    def next_deadline(self) -> float | None:
        return self.binding.next_deadline()

    def on_timer(self, now: float) -> None:
        self.binding.on_timer(now)
        self._collect()

    def close(self) -> None:
        self.binding.detach()
        self.link.close()

    # ----------------------------------------------------------------- state
    @property
    def is_up(self) -> bool:
        """IPCP is Opened and the interface is in the stack."""
        return self.binding.is_up

    def _on_binding_event(self, event: PppEvent) -> None:
        for line in describe_event(event):
            self.log(line)
        if isinstance(event, IpcpUp) and self.binding.interface is not None:
            interface = self.binding.interface
            if self.binding.use_peer_dns and event.result.dns_servers:
                self.log(f"{self.name}: DNS servers {', '.join(str(a) for a in event.result.dns_servers)}")
            self.log(f"{self.name}: {IPv4Address(interface.address)} peer {event.result.peer_address} "
                     f"mtu {interface.mtu}")  # fmt: skip
        if self.on_event is not None:
            self.on_event(event)

    def _collect(self) -> None:
        self._pending += self.binding.bytes_to_send()

    def _line_down(self, now: float) -> None:
        self._pending.clear()
        self.eof = True
        self.binding.lower_down(now)
        self._collect()
        self._pending.clear()

    def _write(self, now: float) -> None:
        if not self._pending:
            return
        if self.eof:
            self._pending.clear()
            return
        try:
            written = self.link.write(bytes(self._pending))
        except (BrokenPipeError, ConnectionResetError):
            self._line_down(now)
            return
        except BlockingIOError:
            return
        self.bytes_out += written
        del self._pending[:written]
