"""The TCP socket API on the core: what the AT frontend, FTP and Python users call.

Sans-I/O and non-blocking: ``send`` accepts what fits in the send buffer (back-pressure, never
unbounded buffering), ``recv`` returns what has arrived; events (connected, data, peer closed,
reset, error, closed) come from :meth:`TcpSocket.next_event` or the ``on_event`` callback.
Every call takes effect at the stack's next flush (the network loop runs it right after).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address

from wipstack.errors import LocalProtocolError
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.events import TcpEvent
from wipstack.tcp.layer import ANY, TcpLayer, TcpListener
from wipstack.tcp.state import TcpState
from wipstack.wire.ipv4 import address

EventCallback = Callable[["TcpSocket", TcpEvent], None]


class TcpSocket:
    """One connection as its user sees it."""

    def __init__(self, layer: TcpLayer, connection: TcpConnection) -> None:
        self._layer = layer
        self.connection = connection
        self._on_event: EventCallback | None = None
        connection.owner = self

    @property
    def on_event(self) -> EventCallback | None:
        """Called with ``(socket, event)`` for every event, on the loop's thread."""
        return self._on_event

    @on_event.setter
    def on_event(self, callback: EventCallback | None) -> None:
        self._on_event = callback
        if callback is not None and self.connection.has_events:
            self._layer.touch(self.connection)  # events that came before the callback are delivered next

    # ---------------------------------------------------------------- opening
    @classmethod
    def connect(cls, layer: TcpLayer, host: str | bytes, port: int, now: float, *, local_port: int = 0) -> TcpSocket:
        """Active open; ``Connected`` (or ``ConnectionFailed``) follows."""
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} out of 1..65535")
        conn = layer.connect((address(host), port), now, local_port=local_port)
        return cls(layer, conn)

    # ---------------------------------------------------------------- state
    @property
    def state(self) -> TcpState:
        """The RFC state of the connection."""
        return self.connection.state

    @property
    def local(self) -> tuple[bytes, int]:
        return self.connection.local

    @property
    def remote(self) -> tuple[bytes, int]:
        return self.connection.remote

    @property
    def readable(self) -> int:
        """Octets waiting to be read."""
        return self.connection.readable

    @property
    def send_space(self) -> int:
        """Octets ``send`` would accept now."""
        return self.connection.send_space

    @property
    def unacknowledged(self) -> int:
        """Octets sent or queued but not yet acknowledged by the peer."""
        return self.connection.unsent

    @property
    def nodelay(self) -> bool:
        """TCP_NODELAY: Nagle's algorithm off."""
        return not self.connection.nagle

    @nodelay.setter
    def nodelay(self, value: bool) -> None:
        self.connection.nagle = not value
        self._layer.touch(self.connection)

    @property
    def ttl(self) -> int | None:
        """IP TTL of this connection's segments (None: the stack's default)."""
        return self.connection.ttl

    @ttl.setter
    def ttl(self, value: int | None) -> None:
        if value is not None and not 1 <= value <= 255:
            raise ValueError(f"TTL {value} out of 1..255")
        self.connection.ttl = value

    @property
    def tos(self) -> int | None:
        """IP TOS of this connection's segments (None: the stack's default)."""
        return self.connection.tos

    @tos.setter
    def tos(self, value: int | None) -> None:
        if value is not None and not 0 <= value <= 255:
            raise ValueError(f"TOS {value} out of 0..255")
        self.connection.tos = value

    @property
    def send_buffer(self) -> int:
        """Octets ``send`` may queue in all."""
        return self.connection.config.send_buffer

    @property
    def receive_buffer(self) -> int:
        """Octets of received data held for the application (it sets the window we offer)."""
        return self.connection.config.receive_buffer

    def set_buffers(self, *, send: int | None = None, receive: int | None = None) -> None:
        """Resize the buffers from now on; a smaller receive buffer only narrows windows not yet offered."""
        config = self.connection.config
        if send is not None:
            config = replace(config, send_buffer=send)
        if receive is not None:
            config = replace(config, receive_buffer=receive)
        if config is not self.connection.config:
            self.connection.config = config
            self._layer.touch(self.connection)

    # ---------------------------------------------------------------- data
    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue data; returns the octets accepted (fewer when the send buffer fills)."""
        n = self.connection.send(data)
        self._layer.touch(self.connection)
        return n

    def recv(self, n: int = -1) -> bytes:
        """Up to ``n`` octets (all when negative); b"" when nothing is waiting."""
        data = self.connection.recv(n)
        if data:
            self._layer.touch(self.connection)
        return data

    def next_event(self) -> TcpEvent | None:
        """The next event (when no ``on_event`` callback is set)."""
        return self.connection.next_event()

    # ---------------------------------------------------------------- closing
    def shutdown(self, now: float | None = None) -> None:
        """Half-close: send FIN after the queued data; receiving goes on."""
        self.connection.shutdown()
        self._layer.touch(self.connection)

    def close(self, now: float | None = None) -> None:
        """Orderly release (RST instead if unread data is thrown away, RFC 2525 §2.17)."""
        self.connection.close()
        self._layer.touch(self.connection)

    def abort(self, now: float | None = None) -> None:
        """Reset the connection."""
        self.connection.abort()
        self._layer.touch(self.connection)

    def __repr__(self) -> str:
        local, remote = self.local, self.remote
        return f"<TcpSocket {IPv4Address(local[0])}:{local[1]} -> {IPv4Address(remote[0])}:{remote[1]} {self.state}>"


class TcpServer:
    """A listening socket: accepted connections come as :class:`TcpSocket`."""

    def __init__(self, layer: TcpLayer, port: int, *, host: str | bytes = ANY, backlog: int | None = None) -> None:
        self._layer = layer
        self.listener: TcpListener = layer.listen(port, address(host), backlog)
        self.on_accept: Callable[[TcpSocket], None] | None = None
        self.listener.on_connection = self._connected

    def _connected(self, conn: TcpConnection) -> None:
        if self.on_accept is not None:
            self.listener.accept_queue.remove(conn)
            self.on_accept(TcpSocket(self._layer, conn))

    def accept(self) -> TcpSocket | None:
        """The next established connection, or None."""
        conn = self.listener.accept()
        return None if conn is None else TcpSocket(self._layer, conn)

    @property
    def port(self) -> int:
        return self.listener.local[1]

    def close(self, now: float | None = None) -> None:
        """Stop listening (pending connections are reset)."""
        if self.listener.closed:
            raise LocalProtocolError("server already closed")
        self.listener.close(now)
