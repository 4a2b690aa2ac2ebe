"""Errors, states and events of the FTP client (see :mod:`wipstack.apps.ftp`)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wipstack.wire.ftp import FtpReply

if TYPE_CHECKING:
    from wipstack.apps.ftp import FtpSession
    from wipstack.apps.ftp_transfer import Transfer

DEFAULT_TIMEOUT = 30.0


class FtpErrorKind(enum.Enum):
    """Why a session or transfer failed."""

    CONNECT = "connection to the server failed"
    LOGIN = "login refused"
    REFUSED = "the server refused the request"  # 4xx/5xx, e.g. 550 no such file
    DATA = "the data connection failed"
    CLOSED = "the server closed the connection"
    TIMEOUT = "no answer from the server in time"
    PROTOCOL = "the server broke the protocol"
    ABORTED = "aborted by the user"


class FtpError(Exception):
    """A failure with its kind and, where there is one, the server's reply."""

    def __init__(self, kind: FtpErrorKind, detail: str = "", reply: FtpReply | None = None) -> None:
        text = f"{kind.value}: {detail}" if detail else kind.value
        if reply is not None:
            text += f" ({reply.code} {reply.lines[-1] if reply.lines else ''})".rstrip()
        super().__init__(text)
        self.kind = kind
        self.reply = reply


class SessionState(enum.Enum):
    """Where the control connection is."""

    CONNECTING = "connecting"
    LOGGING_IN = "logging in"
    READY = "ready"
    BUSY = "busy"
    CLOSING = "closing"
    CLOSED = "closed"


class TransferState(enum.Enum):
    """Where a transfer is."""

    PREPARING = "preparing"  # TYPE, EPSV/PASV or PORT
    CONNECTING = "connecting"  # the data connection
    STARTING = "starting"  # transfer command sent, waiting for 1xx
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The session is ready for requests."""


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The control connection is gone; ``error`` says why when it was not a QUIT."""

    error: FtpError | None


@dataclass(frozen=True, slots=True)
class TransferEvent:
    """Something happened to a transfer: data to read, room to write, or its end."""

    transfer: Transfer


SessionEvent = LoggedIn | SessionClosed | TransferEvent
SessionCallback = Callable[["FtpSession", SessionEvent], None]
ReplyCallback = Callable[[FtpReply | None, "FtpError | None"], None]
