"""Builders and a tiny simulated network for the IPv4-layer tests.

Everything here is independent of ``wipstack.net``'s own fragmentation and reassembly code:
:func:`split` fragments with plain arithmetic and :func:`join` reassembles by sorting, so the
tests never check the stack against itself.  :class:`Net` joins stacks by "wires" that move
``Interface.take_output()`` into the other stack's ``receive`` after a fixed latency, and
runs every stack's timers, with simulated time only.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from wipstack.net import Interface, Stack, StackConfig
from wipstack.wire.icmp import IcmpRepr
from wipstack.wire.ipv4 import Ipv4Repr, address
from wipstack.wire.udp import UdpRepr

UDP = 17
ICMP = 1


def ip(text: str) -> bytes:
    """Dotted text to the 4-octet wire form."""
    return address(text)


def host(
    addr: str = "10.0.0.1",
    *,
    seed: int = 1,
    prefix_len: int = 24,
    mtu: int = 1500,
    peer: str | None = None,
    name: str = "eth0",
    **config: Any,
) -> tuple[Stack, Interface]:
    """A stack with one interface (config keywords go to :class:`StackConfig`)."""
    stack = Stack(random.Random(seed), StackConfig(**config))
    iface = stack.add_interface(
        Interface(name, ip(addr), prefix_len=prefix_len, mtu=mtu, peer=None if peer is None else ip(peer))
    )
    return stack, iface


def ipv4(
    src: str | bytes,
    dst: str | bytes,
    protocol: int,
    payload: bytes = b"",
    *,
    ttl: int = 64,
    tos: int = 0,
    ident: int = 0x4242,
    df: bool = False,
    mf: bool = False,
    offset: int = 0,
    options: bytes = b"",
) -> bytes:
    """One IPv4 datagram with a correct header checksum."""
    header = Ipv4Repr(address(src), address(dst), protocol, ttl, tos, ident, df, mf, offset, options)
    return header.emit(payload)


def udp(
    src: str | bytes,
    dst: str | bytes,
    sport: int,
    dport: int,
    data: bytes = b"",
    *,
    checksum: bool = True,
    **ip_fields: object,
) -> bytes:
    """An IPv4 datagram carrying one UDP datagram."""
    s, d = address(src), address(dst)
    segment = UdpRepr(sport, dport).emit(data, src=s, dst=d, checksum=checksum)
    return ipv4(s, d, UDP, segment, **ip_fields)  # type: ignore[arg-type]


def echo(
    src: str | bytes, dst: str | bytes, ident: int = 0x1234, seq: int = 0, data: bytes = b"", **ip_fields: object
) -> bytes:
    """An IPv4 datagram carrying an ICMP Echo Request."""
    return ipv4(src, dst, ICMP, IcmpRepr.echo(ident, seq, data).emit(), **ip_fields)  # type: ignore[arg-type]


def parse(packet: bytes) -> tuple[Ipv4Repr, bytes]:
    """Header and payload of a datagram the stack emitted (verifying its checksum)."""
    header, payload = Ipv4Repr.parse(packet)
    return header, bytes(payload)


def parse_icmp(packet: bytes) -> tuple[Ipv4Repr, IcmpRepr]:
    """An ICMP datagram the stack emitted (verifying both checksums)."""
    header, payload = parse(packet)
    assert header.protocol == ICMP, header
    return header, IcmpRepr.parse(payload)


def icmp_messages(packets: Iterable[bytes]) -> list[tuple[Ipv4Repr, IcmpRepr]]:
    """Every unfragmented ICMP datagram among ``packets``."""
    out = []
    for packet in packets:
        header, payload = parse(packet)
        if header.protocol == ICMP and not header.more_fragments and not header.fragment_offset:
            out.append((header, IcmpRepr.parse(payload)))
    return out


def split(packet: bytes, chunk: int) -> list[bytes]:
    """Fragment ``packet`` into pieces of ``chunk`` data octets (a multiple of 8), in order."""
    assert chunk > 0 and chunk % 8 == 0
    header, payload = parse(packet)
    pieces = []
    for start in range(0, len(payload), chunk):
        end = min(len(payload), start + chunk)
        piece = Ipv4Repr(
            header.src, header.dst, header.protocol, header.ttl, header.tos, header.identification,
            header.dont_fragment, end < len(payload) or header.more_fragments,
            header.fragment_offset + start, header.options if start == 0 else b"",
        )  # fmt: skip
        pieces.append(piece.emit(payload[start:end]))
    return pieces


def join(fragments: Iterable[bytes]) -> tuple[Ipv4Repr, bytes]:
    """Reassemble fragments by sorting them (asserting they tile the datagram exactly)."""
    parsed = sorted((parse(f) for f in fragments), key=lambda hp: hp[0].fragment_offset)
    data = bytearray()
    for index, (header, payload) in enumerate(parsed):
        assert header.fragment_offset == len(data), (index, header.fragment_offset, len(data))
        assert header.more_fragments == (index < len(parsed) - 1), index
        data += payload
    return parsed[0][0], bytes(data)


def payload_of(size: int, seed: int = 0) -> bytes:
    """``size`` reproducible pseudo-random octets."""
    return random.Random(seed).randbytes(size)


@dataclass
class Net:
    """Stacks joined by wires with a fixed one-way latency; simulated time only.

    ``log`` records ``(time, sending interface, datagram)`` for every datagram put on a
    wire; ``drop`` (if set) is asked about each and may discard it.
    """

    latency: float = 0.0
    now: float = 0.0
    stacks: list[Stack] = field(default_factory=list)
    log: list[tuple[float, str, bytes]] = field(default_factory=list)
    drop: Callable[[str, bytes], bool] | None = None
    _links: list[tuple[Interface, Stack, Interface]] = field(default_factory=list)
    _in_flight: list[tuple[float, int, int, bytes]] = field(default_factory=list)
    _seq: int = 0

    def connect(self, a: Stack, a_iface: Interface, b: Stack, b_iface: Interface) -> None:
        """A point-to-point wire between two interfaces."""
        for stack in (a, b):
            if stack not in self.stacks:
                self.stacks.append(stack)
        self._links.append((a_iface, b, b_iface))
        self._links.append((b_iface, a, a_iface))

    def _collect(self) -> None:
        for index, (iface, _, _) in enumerate(self._links):
            for packet in iface.take_output():
                self.log.append((self.now, iface.name, packet))
                if self.drop is not None and self.drop(iface.name, packet):
                    continue
                self._seq += 1
                heapq.heappush(self._in_flight, (self.now + self.latency, self._seq, index, packet))

    def run_until(self, end: float) -> None:
        """Deliver datagrams and run timers in time order up to ``end`` (inclusive)."""
        for _ in range(100_000):
            self._collect()
            times = [self._in_flight[0][0]] if self._in_flight else []
            times += [d for d in (s.next_deadline() for s in self.stacks) if d is not None]
            due = [t for t in times if t <= end]
            if not due:
                break
            self.now = max(self.now, min(due))
            while self._in_flight and self._in_flight[0][0] <= self.now:
                _, _, index, packet = heapq.heappop(self._in_flight)
                _, stack, iface = self._links[index]
                stack.receive(iface, packet, self.now)
            for stack in self.stacks:
                deadline = stack.next_deadline()
                if deadline is not None and deadline <= self.now:
                    stack.on_timer(self.now)
        else:  # pragma: no cover - a stack whose deadline never moves
            raise AssertionError("the simulation did not settle")
        self.now = max(self.now, end)

    def sent_by(self, name: str) -> list[bytes]:
        """Datagrams the interface called ``name`` put on its wire."""
        return [packet for _, sender, packet in self.log if sender == name]


def two_hosts(
    *, mtu: int = 1500, latency: float = 0.0, seed_a: int = 1, seed_b: int = 2, **config: Any
) -> tuple[Net, Stack, Interface, Stack, Interface]:
    """Hosts A (10.0.0.1) and B (10.0.0.2) on one /24 wire."""
    a, a_if = host("10.0.0.1", seed=seed_a, mtu=mtu, name="a0", **config)
    b, b_if = host("10.0.0.2", seed=seed_b, mtu=mtu, name="b0", **config)
    net = Net(latency=latency)
    net.connect(a, a_if, b, b_if)
    return net, a, a_if, b, b_if


@dataclass
class Routed:
    """A (10.0.1.2) -- R (10.0.1.1 | 10.0.2.1, forwarding) -- B (10.0.2.2)."""

    net: Net
    a: Stack
    a_if: Interface
    r: Stack
    r_a: Interface
    r_b: Interface
    b: Stack
    b_if: Interface


def routed(*, mtu_a: int = 1500, mtu_b: int = 1500, latency: float = 0.0, **router_config: Any) -> Routed:
    """Two hosts behind a router; each host's default route points at the router."""
    a, a_if = host("10.0.1.2", seed=11, mtu=mtu_a, name="a0")
    b, b_if = host("10.0.2.2", seed=12, mtu=mtu_b, name="b0")
    a.routes.add_default("a0", gateway=ip("10.0.1.1"))
    b.routes.add_default("b0", gateway=ip("10.0.2.1"))
    r = Stack(random.Random(13), StackConfig(forwarding=True, **router_config))
    r_a = r.add_interface(Interface("ra", ip("10.0.1.1"), prefix_len=24, mtu=mtu_a))
    r_b = r.add_interface(Interface("rb", ip("10.0.2.1"), prefix_len=24, mtu=mtu_b))
    net = Net(latency=latency)
    net.connect(a, a_if, r, r_a)
    net.connect(r, r_b, b, b_if)
    return Routed(net, a, a_if, r, r_a, r_b, b, b_if)
