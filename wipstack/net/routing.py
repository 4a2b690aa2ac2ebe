"""The routing table: longest-prefix match over (network, prefix) routes (RFC 1812 §5.2.4.3)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address


@dataclass(frozen=True, slots=True)
class Route:
    """Datagrams for ``network/prefix_len`` leave through ``interface``, via ``gateway`` if set."""

    network: int  # 32-bit network number, host bits zero
    prefix_len: int
    interface: str
    gateway: bytes | None = None  # None: the destination is on the link itself
    metric: int = 0

    def matches(self, destination: int) -> bool:
        """Whether ``destination`` (a 32-bit address) is inside this route's prefix."""
        return (destination & _mask(self.prefix_len)) == self.network

    def __str__(self) -> str:
        net = "default" if self.prefix_len == 0 else f"{IPv4Address(self.network)}/{self.prefix_len}"
        via = f" via {IPv4Address(self.gateway)}" if self.gateway else ""
        return f"{net}{via} dev {self.interface}" + (f" metric {self.metric}" if self.metric else "")


def _mask(prefix_len: int) -> int:
    return (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF


class RoutingTable:
    """Routes kept sorted most specific first, so lookup is the first match."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(
        self,
        network: bytes | str,
        prefix_len: int,
        interface: str,
        *,
        gateway: bytes | None = None,
        metric: int = 0,
    ) -> Route:
        """Add a route (``network`` as 4 octets or dotted text); host bits must be zero."""
        packed = IPv4Address(network).packed if isinstance(network, str) else bytes(network)
        if len(packed) != 4:
            raise ValueError("a network is 4 octets")
        if not 0 <= prefix_len <= 32:
            raise ValueError(f"prefix length {prefix_len} out of 0..32")
        value = int.from_bytes(packed, "big")
        if value & ~_mask(prefix_len) & 0xFFFFFFFF:
            raise ValueError(f"{IPv4Address(value)}/{prefix_len} has host bits set")
        route = Route(value, prefix_len, interface, None if gateway is None else bytes(gateway), metric)
        self._routes.append(route)
        self._routes.sort(key=lambda r: (-r.prefix_len, r.metric))
        return route

    def add_default(self, interface: str, *, gateway: bytes | None = None, metric: int = 0) -> Route:
        """Add ``0.0.0.0/0``."""
        return self.add(b"\0\0\0\0", 0, interface, gateway=gateway, metric=metric)

    def remove_interface(self, interface: str) -> None:
        """Drop every route through ``interface`` (it went down)."""
        self._routes = [r for r in self._routes if r.interface != interface]

    def remove(self, route: Route) -> None:
        """Drop one route."""
        self._routes.remove(route)

    def lookup(self, destination: bytes) -> Route | None:
        """The most specific route to ``destination`` (4 octets), or None."""
        value = int.from_bytes(destination, "big")
        for route in self._routes:
            if (value & _mask(route.prefix_len)) == route.network:
                return route
        return None

    def __iter__(self) -> Iterator[Route]:
        return iter(list(self._routes))

    def __len__(self) -> int:
        return len(self._routes)
