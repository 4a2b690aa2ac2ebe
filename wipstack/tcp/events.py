"""What a TCP connection tells its user (the socket layer, the AT frontend, asyncio)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Connected:
    """The three-way handshake completed (ESTABLISHED)."""


@dataclass(frozen=True, slots=True)
class DataAvailable:
    """New in-order data can be read."""


@dataclass(frozen=True, slots=True)
class SendSpace:
    """The send buffer, full before, has room again."""


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer sent FIN: everything it will send has been received (end of stream)."""


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The connection failed: ``errno_name`` is ECONNREFUSED, ECONNRESET, ETIMEDOUT or ECONNABORTED."""

    errno_name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection reached CLOSED (after an orderly release or an error)."""


TcpEvent = Connected | DataAvailable | SendSpace | PeerClosed | ConnectionFailed | Closed
