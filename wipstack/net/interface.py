"""A network interface as the IP layer sees it: an address, a prefix, an MTU and a queue."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from wipstack.errors import DropCounters, DropReason

#: RFC 791: every host must accept 576-octet datagrams; the smallest MTU we allow is 68 (RFC 791 §3.2).
MIN_MTU = 68


@dataclass(slots=True)
class InterfaceCounters:
    """Per-interface packet counters (like the columns of ``ip -s link``)."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    drops: DropCounters = field(default_factory=DropCounters)


class Interface:
    """One attachment to a link: a PPP link, a TUN device, or anything that carries IPv4.

    ``address`` is ours (4 octets); ``peer`` is the other end of a point-to-point link when
    known.  The stack appends datagrams for the link to ``output``; the driver drains it with
    :meth:`take_output`.
    """

    def __init__(
        self,
        name: str,
        address: bytes,
        *,
        prefix_len: int = 32,
        peer: bytes | None = None,
        mtu: int = 1500,
        max_queue: int = 1024,
    ) -> None:
        if len(address) != 4 or (peer is not None and len(peer) != 4):
            raise ValueError("interface addresses are 4 octets (see wipstack.wire.ipv4.address)")
        if not 0 <= prefix_len <= 32:
            raise ValueError(f"prefix length {prefix_len} out of 0..32")
        if not MIN_MTU <= mtu <= 65535:
            raise ValueError(f"MTU {mtu} out of {MIN_MTU}..65535")
        self.name = name
        self.address = bytes(address)
        self.prefix_len = prefix_len
        self.peer = None if peer is None else bytes(peer)
        self.mtu = mtu
        self.up = True
        self.max_queue = max_queue
        self.counters = InterfaceCounters()
        self.output: deque[bytes] = deque()

    @property
    def network_mask(self) -> int:
        """The prefix as a 32-bit mask."""
        return (0xFFFFFFFF << (32 - self.prefix_len)) & 0xFFFFFFFF

    @property
    def broadcast(self) -> bytes | None:
        """The directed broadcast address of the interface's subnet (None on /31 and /32)."""
        if self.prefix_len >= 31:
            return None
        value = int.from_bytes(self.address, "big") | (~self.network_mask & 0xFFFFFFFF)
        return value.to_bytes(4, "big")

    def queue(self, packet: bytes) -> bool:
        """Queue a datagram for the driver; False (counted) when the queue is full."""
        if len(self.output) >= self.max_queue:
            self.counters.drops.count(DropReason.QUEUE_FULL)
            return False
        self.output.append(packet)
        self.counters.packets_out += 1
        self.counters.bytes_out += len(packet)
        return True

    def take_output(self) -> list[bytes]:
        """Every queued datagram, oldest first."""
        out = list(self.output)
        self.output.clear()
        return out

    def __repr__(self) -> str:
        from ipaddress import IPv4Address

        peer = f" peer {IPv4Address(self.peer)}" if self.peer else ""
        return f"<Interface {self.name} {IPv4Address(self.address)}/{self.prefix_len}{peer} mtu {self.mtu}>"
