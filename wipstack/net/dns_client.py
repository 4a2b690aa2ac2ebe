"""The stack's DNS client: the sans-I/O :class:`~wipstack.dns.Resolver` bound to a UDP socket.

``Stack.dns.resolve(name, now)`` takes a host name or a dotted address (the one helper the
AT commands, ping and FTP use) and returns a handle; ``Stack.dns.result(handle)`` gives the
:class:`~wipstack.dns.LookupResult` once it is complete.  Servers come from IPCP (RFC 1877)
or from configuration.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wipstack.dns import LookupResult, Resolver, ResolverConfig
from wipstack.net.udp import SocketError, UdpSocket

if TYPE_CHECKING:
    from wipstack.net.stack import Stack

#: Completed results kept for callers that have not collected them yet.
MAX_UNCLAIMED_RESULTS = 64


class DnsClient:
    """Resolves names with the stack's own UDP (see the module docstring)."""

    def __init__(self, stack: Stack, config: ResolverConfig | None = None) -> None:
        self._stack = stack
        self.resolver = Resolver(stack.rng, config)
        self._socket: UdpSocket | None = None
        self._results: OrderedDict[int, LookupResult] = OrderedDict()
        self.send_failures = 0

    @property
    def servers(self) -> list[bytes]:
        """DNS server addresses (4 octets each), in the order they are tried."""
        return self.resolver.servers

    @servers.setter
    def servers(self, value: Sequence[bytes]) -> None:
        self.resolver.servers = list(value)

    def resolve(self, name: str, now: float) -> int:
        """Start resolving ``name`` (a host name or a dotted address); returns a handle."""
        handle = self.resolver.lookup(name, now)
        self._pump()
        return handle

    def result(self, handle: int) -> LookupResult | None:
        """The result of ``handle`` once complete (returned once, then forgotten)."""
        self._collect()
        return self._results.pop(handle, None)

    def cancel(self, handle: int) -> None:
        """Give up on a lookup."""
        self.resolver.cancel(handle)
        self._results.pop(handle, None)

    def next_deadline(self) -> float | None:
        """The resolver's next retry or timeout."""
        return self.resolver.next_deadline()

    def on_timer(self, now: float) -> None:
        """Retries and timeouts."""
        self.resolver.on_timer(now)
        self._pump()

    def _pump(self) -> None:
        datagrams = self.resolver.datagrams_to_send()
        if not datagrams:
            return
        sock = self._ensure_socket()
        for server, port, payload in datagrams:
            try:
                sock.sendto(payload, server, port)
            except SocketError:
                self.send_failures += 1  # no route yet: the resolver's retry timer tries again

    def _collect(self) -> None:
        while (result := self.resolver.next_result()) is not None:
            self._results[result.handle] = result
            while len(self._results) > MAX_UNCLAIMED_RESULTS:
                self._results.popitem(last=False)

    def _ensure_socket(self) -> UdpSocket:
        if self._socket is None:
            sock = self._stack.udp_socket()
            sock.bind()

            def on_datagram(data: bytes, source: tuple[bytes, int], now: float) -> None:
                self.resolver.receive_datagram(source[0], source[1], data, now)
                self._pump()  # a CNAME may need a follow-up query

            sock.on_datagram = on_datagram
            self._socket = sock
        return self._socket
