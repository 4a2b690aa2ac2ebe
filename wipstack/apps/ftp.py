"""An FTP client (RFC 959, RFC 2428 EPSV, RFC 3659 SIZE) on wipstack's TCP sockets, sans-I/O.

:class:`FtpSession` owns the control connection: it logs in (USER, PASS, ACCT when asked),
then runs one request at a time -- a plain command (``command``: CWD, PWD, SIZE, DELE, MKD,
...) or a transfer (``retrieve``, ``store``, ``listing``).  A transfer opens its data
connection passively (EPSV, falling back to PASV once the server refuses EPSV) or actively
(PORT: the server connects back to a listener of ours), sends the transfer command, and
moves data with back-pressure: a download's bytes wait in the data socket until the user
reads them, an upload takes what the socket's buffer takes.  A transfer is complete only
when the data connection has ended *and* the server has confirmed (226/250); anything else
-- a 4xx/5xx, the server closing, a timeout -- fails it with :class:`FtpError`, so a
partial file is never reported as complete.  TYPE A converts line ends (RFC 959 §3.1.1.1:
CRLF on the wire, LF locally).

Time comes in through :meth:`FtpSession.poll` / :meth:`on_timer` (``now``), and the owner
runs the stack; events are delivered to ``on_event`` callbacks.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from wipstack.errors import MalformedPacket
from wipstack.net.stack import Stack
from wipstack.tcp.events import Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.wire.ftp import FtpReply, ReplyParser, command_line, parse_epsv, parse_pasv, port_argument

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
    CONNECTING = "connecting"
    LOGGING_IN = "logging in"
    READY = "ready"
    BUSY = "busy"
    CLOSING = "closing"
    CLOSED = "closed"


class TransferState(enum.Enum):
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


class Transfer:
    """One RETR, STOR, LIST or NLST (see the module docstring)."""

    def __init__(self, session: FtpSession, verb: str, argument: str | None, upload: bool) -> None:
        self.session = session
        self.verb = verb
        self.argument = argument
        self.upload = upload
        self.state = TransferState.PREPARING
        self.data: TcpSocket | None = None
        self.listener: TcpServer | None = None
        self.reply: FtpReply | None = None  # the final reply
        self.error: FtpError | None = None
        self.bytes = 0  # octets moved on the data connection
        self.data_ended = False  # the data connection delivered its FIN (download) or we sent ours
        self.confirmed = False  # the server's 2xx after the transfer
        self._finish_requested = False
        self._cr_pending = False  # ASCII download: a CR at the end of the last chunk

    @property
    def done(self) -> bool:
        return self.state in (TransferState.DONE, TransferState.FAILED)

    @property
    def ok(self) -> bool:
        return self.state is TransferState.DONE

    # ------------------------------------------------------------------ user side
    def readable(self) -> int:
        """Octets of a download waiting in the data socket."""
        return self.data.readable if self.data is not None and not self.upload else 0

    def recv(self, n: int = -1) -> bytes:
        """Up to ``n`` octets of a download (line ends converted in TYPE A)."""
        if self.data is None or self.upload:
            return b""
        data = self.data.recv(n)
        self.bytes += len(data)
        if data and not self.session.binary:
            data = self._from_netascii(data)
        self.session._check_transfer(self)
        return data

    def send(self, data: bytes) -> int:
        """Queue upload data; returns how much was taken (fewer when the socket is full)."""
        if self.data is None or not self.upload or self._finish_requested or self.done:
            return 0
        if not self.session.binary:
            wire = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            if self.data.send_space < len(wire):
                return 0  # take all or nothing: a converted chunk cannot be split back
            self.data.send(wire)
            self.bytes += len(wire)
            return len(data)
        taken = self.data.send(data)
        self.bytes += taken
        return taken

    @property
    def send_space(self) -> int:
        return self.data.send_space if self.data is not None and self.upload else 0

    def finish(self) -> None:
        """The upload is complete: close the data connection; the server then confirms."""
        self._finish_requested = True
        if self.data is not None and self.state is TransferState.ACTIVE:
            self.data.close(self.session.now)
            self.data_ended = True
            self.session._check_transfer(self)

    def abort(self) -> None:
        """Give up: the data connection is reset and the transfer fails."""
        self.session._fail_transfer(self, FtpError(FtpErrorKind.ABORTED))

    def _from_netascii(self, data: bytes) -> bytes:
        if self._cr_pending:
            data = b"\r" + data
            self._cr_pending = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._cr_pending = True
        return data.replace(b"\r\n", b"\n")


class FtpSession:
    """One FTP control connection (see the module docstring)."""

    def __init__(
        self,
        stack: Stack,
        host: str | bytes,
        *,
        port: int = 21,
        user: str = "anonymous",
        password: str = "",
        account: str | None = None,
        passive: bool = True,
        binary: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        now: float,
        on_event: SessionCallback | None = None,
    ) -> None:
        self.stack = stack
        self.user, self.password, self.account = user, password, account
        self.passive = passive
        self.binary = binary
        self.timeout = timeout
        self.now = now
        self.on_event = on_event
        self.state = SessionState.CONNECTING
        self.error: FtpError | None = None
        self.welcome: FtpReply | None = None
        self._parser = ReplyParser()
        self._waiting: ReplyCallback | None = None  # the handler of the next final reply
        self._deadline: float | None = now + timeout
        self._queue: deque[Callable[[], None]] = deque()
        self._transfer: Transfer | None = None
        self._type_sent: str | None = None
        self._epsv = True
        self._events: list[SessionEvent] = []
        self.control = TcpSocket.connect(stack.tcp, host, port, now)
        self.control.on_event = self._control_event
        self._waiting = self._greeting

    # ------------------------------------------------------------------ requests
    def command(self, verb: str, argument: str | None, callback: ReplyCallback) -> None:
        """Send one command when the session is free; ``callback(reply, error)`` gets its final reply."""

        def run() -> None:
            self.state = SessionState.BUSY
            self._send(verb, argument, lambda reply, error: self._finish_request(callback, reply, error))

        self._enqueue(run)

    def retrieve(self, name: str) -> Transfer:
        """Download ``name`` (RETR)."""
        return self._start_transfer("RETR", name, upload=False)

    def store(self, name: str) -> Transfer:
        """Upload to ``name`` (STOR); :meth:`Transfer.finish` ends the file."""
        return self._start_transfer("STOR", name, upload=True)

    def listing(self, path: str | None = None, *, names_only: bool = False) -> Transfer:
        """LIST (or NLST) over a data connection, always in TYPE A."""
        return self._start_transfer("NLST" if names_only else "LIST", path, upload=False)

    def quit(self) -> None:
        """QUIT, then the control connection closes."""

        def run() -> None:
            self.state = SessionState.CLOSING
            self._send("QUIT", None, lambda reply, error: self._closed(None))

        if self.state in (SessionState.CLOSED, SessionState.CLOSING):
            return
        self._enqueue(run)

    def abort(self) -> None:
        """Close everything now (no QUIT)."""
        if self._transfer is not None:
            self._fail_transfer(self._transfer, FtpError(FtpErrorKind.ABORTED))
        self.control.abort(self.now)
        self._closed(FtpError(FtpErrorKind.ABORTED))

    @property
    def is_ready(self) -> bool:
        return self.state is SessionState.READY and not self._queue

    # ------------------------------------------------------------------ time
    def next_deadline(self) -> float | None:
        return self._deadline if self.state is not SessionState.CLOSED else None

    def on_timer(self, now: float) -> None:
        self.now = now
        if self._deadline is not None and now >= self._deadline and self.state is not SessionState.CLOSED:
            error = FtpError(FtpErrorKind.TIMEOUT)
            if self._transfer is not None:
                self._fail_transfer(self._transfer, error)
            self.control.abort(now)
            self._closed(error)

    def poll(self, now: float) -> None:
        """Keep the session's notion of time current (the owner calls it every round)."""
        self.now = now

    def next_event(self) -> SessionEvent | None:
        """Events, when no ``on_event`` callback is set."""
        return self._events.pop(0) if self._events else None

    # ------------------------------------------------------------------ control connection
    def _control_event(self, sock: TcpSocket, event: TcpEvent) -> None:
        if isinstance(event, DataAvailable):
            try:
                replies = self._parser.feed(sock.recv())
            except MalformedPacket as exc:
                self._protocol_error(str(exc))
                return
            for reply in replies:
                self._reply(reply)
        elif isinstance(event, Connected):
            self._deadline = self.now + self.timeout
        elif isinstance(event, PeerClosed):
            if self.state is not SessionState.CLOSING:
                self._lost(FtpError(FtpErrorKind.CLOSED))
            else:
                self._closed(None)
            sock.close(self.now)
        elif isinstance(event, ConnectionFailed):
            kind = FtpErrorKind.CONNECT if self.state is SessionState.CONNECTING else FtpErrorKind.CLOSED
            self._lost(FtpError(kind, event.reason))

    def _reply(self, reply: FtpReply) -> None:
        if reply.kind == 1:
            transfer = self._transfer
            if transfer is not None and transfer.state is TransferState.STARTING:
                transfer.state = TransferState.ACTIVE  # 125/150: the transfer runs
                self._deadline = None  # data may take long; the data connection has its own timers
                self._emit(TransferEvent(transfer))
                if transfer.upload and transfer._finish_requested:
                    transfer.finish()
            return
        handler, self._waiting = self._waiting, None
        self._deadline = None
        if handler is None:
            if reply.code == 421:
                self._lost(FtpError(FtpErrorKind.CLOSED, "service closing", reply))
            return  # an unsolicited reply: nothing waits for it
        handler(reply, None)

    def _send(self, verb: str, argument: str | None, handler: ReplyCallback) -> None:
        self._waiting = handler
        self._deadline = self.now + self.timeout
        self.control.send(command_line(verb, argument))

    def _greeting(self, reply: FtpReply | None, error: FtpError | None) -> None:
        if reply is None or reply.code != 220:
            self._lost(FtpError(FtpErrorKind.CONNECT, "no 220 greeting", reply))
            return
        self.welcome = reply
        self.state = SessionState.LOGGING_IN
        self._send("USER", self.user, self._after_user)

    def _after_user(self, reply: FtpReply | None, error: FtpError | None) -> None:
        assert reply is not None
        if reply.code == 230:
            self._logged_in()
        elif reply.code == 331:
            self._send("PASS", self.password, self._after_pass)
        elif reply.code == 332 and self.account is not None:
            self._send("ACCT", self.account, self._after_pass)
        else:
            self._login_failed(reply)

    def _after_pass(self, reply: FtpReply | None, error: FtpError | None) -> None:
        assert reply is not None
        if reply.code in (202, 230):
            self._logged_in()
        elif reply.code == 332 and self.account is not None:
            self._send("ACCT", self.account, self._after_pass)
        else:
            self._login_failed(reply)

    def _login_failed(self, reply: FtpReply) -> None:
        error = FtpError(FtpErrorKind.LOGIN, "", reply)
        self.control.close(self.now)
        self._closed(error)

    def _logged_in(self) -> None:
        self.state = SessionState.READY
        self._emit(LoggedIn())
        self._run_queue()

    def _enqueue(self, run: Callable[[], None]) -> None:
        if self.state is SessionState.CLOSED:
            raise FtpError(FtpErrorKind.CLOSED, "the session is closed")
        self._queue.append(run)
        self._run_queue()

    def _run_queue(self) -> None:
        if self.state is SessionState.READY and self._queue:
            self._queue.popleft()()

    def _finish_request(self, callback: ReplyCallback, reply: FtpReply | None, error: FtpError | None) -> None:
        if self.state is SessionState.BUSY:
            self.state = SessionState.READY
        callback(reply, error)
        self._run_queue()

    # ------------------------------------------------------------------ transfers
    def _start_transfer(self, verb: str, argument: str | None, upload: bool) -> Transfer:
        transfer = Transfer(self, verb, argument, upload)
        self._enqueue(lambda: self._prepare(transfer))
        return transfer

    def _prepare(self, transfer: Transfer) -> None:
        self.state = SessionState.BUSY
        self._transfer = transfer
        wanted = "I" if self.binary and transfer.verb in ("RETR", "STOR") else "A"
        if self._type_sent != wanted:
            self._send("TYPE", wanted, lambda reply, error: self._after_type(transfer, wanted, reply))
        else:
            self._open_data(transfer)

    def _after_type(self, transfer: Transfer, wanted: str, reply: FtpReply | None) -> None:
        if reply is None or reply.kind != 2:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.REFUSED, f"TYPE {wanted}", reply))
            return
        self._type_sent = wanted
        self._open_data(transfer)

    def _open_data(self, transfer: Transfer) -> None:
        if not self.passive:
            self._open_active(transfer)
        elif self._epsv:
            self._send("EPSV", None, lambda reply, error: self._after_epsv(transfer, reply))
        else:
            self._send("PASV", None, lambda reply, error: self._after_pasv(transfer, reply))

    def _after_epsv(self, transfer: Transfer, reply: FtpReply | None) -> None:
        assert reply is not None
        if reply.code in (500, 501, 502):
            self._epsv = False  # RFC 2428 unknown to this server: PASV from now on
            self._send("PASV", None, lambda r, error: self._after_pasv(transfer, r))
            return
        if reply.code != 229:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, "EPSV", reply))
            return
        try:
            port = parse_epsv(reply)
        except MalformedPacket as exc:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.PROTOCOL, str(exc), reply))
            return
        self._connect_data(transfer, port)

    def _after_pasv(self, transfer: Transfer, reply: FtpReply | None) -> None:
        assert reply is not None
        if reply.code != 227:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, "PASV", reply))
            return
        try:
            _, port = parse_pasv(reply)  # the address is ignored: the control peer's is used (NAT-safe)
        except MalformedPacket as exc:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.PROTOCOL, str(exc), reply))
            return
        self._connect_data(transfer, port)

    def _connect_data(self, transfer: Transfer, port: int) -> None:
        transfer.state = TransferState.CONNECTING
        try:
            sock = TcpSocket.connect(self.stack.tcp, self.control.remote[0], port, self.now)
        except OSError as exc:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, str(exc)))
            return
        self._adopt_data(transfer, sock)
        self._deadline = self.now + self.timeout

    def _open_active(self, transfer: Transfer) -> None:
        local = self.control.local[0]
        try:
            server = TcpServer(self.stack.tcp, 0, host=local, backlog=1)
        except OSError as exc:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, str(exc)))
            return
        transfer.listener = server
        server.on_accept = lambda sock: self._accepted(transfer, sock)
        argument = port_argument(local, server.port)
        self._send("PORT", argument, lambda reply, error: self._after_port(transfer, reply))

    def _after_port(self, transfer: Transfer, reply: FtpReply | None) -> None:
        assert reply is not None
        if reply.kind != 2:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, "PORT", reply))
            return
        transfer.state = TransferState.STARTING
        self._send(transfer.verb, transfer.argument, lambda r, error: self._after_transfer_reply(transfer, r))

    def _accepted(self, transfer: Transfer, sock: TcpSocket) -> None:
        if transfer.listener is not None:
            transfer.listener.close(self.now)
            transfer.listener = None
        if transfer.data is not None or transfer.done:
            sock.abort(self.now)
            return
        self._adopt_data(transfer, sock)
        self._data_event(transfer, sock, Connected())

    def _adopt_data(self, transfer: Transfer, sock: TcpSocket) -> None:
        transfer.data = sock
        sock.on_event = lambda s, event: self._data_event(transfer, s, event)

    def _data_event(self, transfer: Transfer, sock: TcpSocket, event: TcpEvent) -> None:
        if transfer.done:
            return
        if isinstance(event, Connected):
            if transfer.state is TransferState.CONNECTING:
                transfer.state = TransferState.STARTING
                self._send(transfer.verb, transfer.argument, lambda r, error: self._after_transfer_reply(transfer, r))
        elif isinstance(event, DataAvailable | SendSpace):
            self._emit(TransferEvent(transfer))
        elif isinstance(event, PeerClosed):
            if not transfer.upload:
                transfer.data_ended = True
                self._emit(TransferEvent(transfer))
                self._check_transfer(transfer)
            else:
                sock.close(self.now)
        elif isinstance(event, ConnectionFailed):
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, event.reason))

    def _after_transfer_reply(self, transfer: Transfer, reply: FtpReply | None) -> None:
        assert reply is not None
        if reply.kind != 2:
            kind = FtpErrorKind.REFUSED if transfer.state is TransferState.STARTING else FtpErrorKind.DATA
            self._fail_transfer(transfer, FtpError(kind, f"{transfer.verb} {transfer.argument or ''}".strip(), reply))
            return
        transfer.reply = reply
        transfer.confirmed = True
        if transfer.state is TransferState.STARTING:
            transfer.state = TransferState.ACTIVE  # a server that skipped the 1xx
        self._check_transfer(transfer)

    def _check_transfer(self, transfer: Transfer) -> None:
        """Done when the server confirmed and the data connection ended (and was read out)."""
        if transfer.done or not transfer.confirmed or not transfer.data_ended:
            if transfer.confirmed and not transfer.data_ended and not transfer.upload:
                self._deadline = self.now + self.timeout  # the FIN must follow the 226
            return
        if not transfer.upload and transfer.data is not None and transfer.data.readable:
            return  # the user still has data to read
        transfer.state = TransferState.DONE
        self._end_transfer(transfer)

    def _fail_transfer(self, transfer: Transfer, error: FtpError) -> None:
        if transfer.done:
            return
        transfer.error = error
        transfer.state = TransferState.FAILED
        if transfer.data is not None:
            transfer.data.abort(self.now)
        self._end_transfer(transfer)

    def _end_transfer(self, transfer: Transfer) -> None:
        if transfer.listener is not None:
            transfer.listener.close(self.now)
            transfer.listener = None
        if self._transfer is transfer:
            self._transfer = None
        self._deadline = None
        if self.state is SessionState.BUSY:
            self.state = SessionState.READY
            if self._waiting is not None and transfer.state is TransferState.FAILED:
                # the server may still answer the command we gave up on: skip that reply
                self._waiting = lambda reply, error: None
        self._emit(TransferEvent(transfer))
        self._run_queue()

    # ------------------------------------------------------------------ endings
    def _protocol_error(self, detail: str) -> None:
        self.control.abort(self.now)
        self._lost(FtpError(FtpErrorKind.PROTOCOL, detail))

    def _lost(self, error: FtpError) -> None:
        if self._transfer is not None:
            self._fail_transfer(self._transfer, error)
        handler, self._waiting = self._waiting, None
        self._closed(error)
        if handler is not None and handler is not self._greeting:
            handler(None, error)

    def _closed(self, error: FtpError | None) -> None:
        if self.state is SessionState.CLOSED:
            return
        self.state = SessionState.CLOSED
        self.error = error
        self._deadline = None
        self._queue.clear()
        self._emit(SessionClosed(error))

    def _emit(self, event: SessionEvent) -> None:
        if self.on_event is not None:
            self.on_event(self, event)
        else:
            self._events.append(event)

    def __repr__(self) -> str:
        remote = self.control.remote
        return f"<FtpSession {IPv4Address(remote[0])}:{remote[1]} {self.state.value}>"
