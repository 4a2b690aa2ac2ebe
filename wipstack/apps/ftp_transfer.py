"""One FTP transfer (RETR, STOR, LIST, NLST): its data connection, seen from the user's side.

A download's octets wait in the data socket until :meth:`Transfer.recv` takes them.  An
upload's octets are staged (at most :data:`STAGE_LIMIT`, converted to the wire form) and
pushed into the data socket as it takes them; :meth:`Transfer.finish` closes the data
connection once everything staged went out.  TYPE A converts line ends (RFC 959
§3.1.1.1: CRLF on the wire, LF locally) the same whatever the chunking: a CR at the end of
a chunk waits for the next one.  The session (:mod:`wipstack.apps.ftp`) runs the control
side and decides when a transfer is complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wipstack.apps.ftp_types import FtpError, FtpErrorKind, TransferState
from wipstack.errors import LocalProtocolError
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.wire.ftp import FtpReply

if TYPE_CHECKING:
    from wipstack.apps.ftp import FtpSession

#: Wire octets an upload holds beyond what its data socket took.
STAGE_LIMIT = 64 * 1024


class Transfer:
    """One transfer (see the module docstring)."""

    def __init__(self, session: FtpSession, verb: str, argument: str | None, upload: bool) -> None:
        self.session = session
        self.verb = verb
        self.argument = argument
        self.upload = upload
        self.ascii = False  # TYPE A: set when the session prepares the transfer
        self.state = TransferState.PREPARING
        self.data: TcpSocket | None = None
        self.listener: TcpServer | None = None
        self.reply: FtpReply | None = None  # the final reply
        self.error: FtpError | None = None
        self.bytes = 0  # octets moved on the data connection (wire form)
        self.data_ended = False  # the data connection delivered its FIN (download) or we closed it (upload)
        self.confirmed = False  # the server's 2xx after the transfer
        self.sending = False  # upload: the data connection is up and the transfer command went out
        self._finish_requested = False
        self._staged = bytearray()
        self._cr_held = False  # TYPE A: a CR at the end of the last chunk, waiting for its LF

    @property
    def done(self) -> bool:
        return self.state in (TransferState.DONE, TransferState.FAILED)

    @property
    def ok(self) -> bool:
        return self.state is TransferState.DONE

    # ------------------------------------------------------------------ downloads
    def readable(self) -> int:
        """Octets of a download waiting in the data socket."""
        return self.data.readable if self.data is not None and not self.upload else 0

    def recv(self, n: int = -1) -> bytes:
        """Up to ``n`` octets of a download (line ends converted in TYPE A)."""
        if self.data is None or self.upload:
            return b""
        data = self.data.recv(n)
        self.bytes += len(data)
        if self.ascii:
            data = self._from_netascii(data, at_end=self.data_ended and self.data.readable == 0)
        self.session._check_transfer(self)
        return data

    def _from_netascii(self, data: bytes, *, at_end: bool) -> bytes:
        if self._cr_held:
            data = b"\r" + data
            self._cr_held = False
        if data.endswith(b"\r") and not at_end:
            data = data[:-1]
            self._cr_held = True  # it may be the CR of a CRLF split across chunks
        return data.replace(b"\r\n", b"\n")

    @property
    def holds_text(self) -> bool:
        """A TYPE A download still holds a CR (delivered with the last chunk)."""
        return self._cr_held

    # ------------------------------------------------------------------ uploads
    @property
    def send_space(self) -> int:
        """How much :meth:`send` would take now."""
        if not self.upload or self.done or self._finish_requested:
            return 0
        return max(0, STAGE_LIMIT - len(self._staged))

    def send(self, data: bytes) -> int:
        """Take upload data; returns how much was taken (0 while the stage is full)."""
        if not data or self.send_space == 0:
            return 0
        self.push()
        if len(self._staged) >= STAGE_LIMIT:
            return 0
        self._staged += self._to_netascii(data, final=False) if self.ascii else data
        self.push()
        return len(data)

    def _to_netascii(self, data: bytes, *, final: bool) -> bytes:
        if self._cr_held:
            data = b"\r" + data
            self._cr_held = False
        if data.endswith(b"\r") and not final:
            data = data[:-1]
            self._cr_held = True
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def finish(self) -> None:
        """The upload is complete: the data connection closes once the staged octets are out."""
        if not self.upload or self._finish_requested or self.done:
            return
        self._finish_requested = True
        if self.ascii and self._cr_held:
            self._staged += self._to_netascii(b"", final=True)
        self.push()

    def push(self) -> None:
        """Move staged octets into the data socket; close it after the last once finished."""
        sock = self.data
        if not self.upload or self.done or sock is None or not self.sending:
            return
        if self._staged:
            try:
                taken = sock.send(self._staged)
            except LocalProtocolError:
                self.session._fail_transfer(self, FtpError(FtpErrorKind.DATA, "the server closed the data connection"))
                return
            del self._staged[:taken]
            self.bytes += taken
        if self._finish_requested and not self._staged and not self.data_ended:
            sock.close(self.session.now)
            self.data_ended = True
            self.session._data_ended(self)

    def abort(self) -> None:
        """Give up: the data connection is reset and the transfer fails."""
        self.session._fail_transfer(self, FtpError(FtpErrorKind.ABORTED))

    def __repr__(self) -> str:
        return f"<Transfer {self.verb} {self.argument or ''} {self.state.value} {self.bytes} octets>"
