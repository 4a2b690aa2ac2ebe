"""An FTP client (RFC 959, RFC 2428 EPSV, RFC 3659 SIZE) on wipstack's TCP sockets, sans-I/O.

:class:`FtpSession` owns the control connection: it logs in (USER, PASS, ACCT when asked),
then runs one request at a time, in the order they were made -- a plain command
(``command``: CWD, PWD, SIZE, DELE, MKD, ...) or a transfer (``retrieve``, ``store``,
``listing``; see :mod:`wipstack.apps.ftp_transfer`).  A transfer opens its data connection
passively (EPSV, falling back to PASV once the server refuses EPSV) or actively (PORT: the
server connects back to a listener of ours), sends the transfer command, and moves data with
back-pressure.  A transfer is complete only when its data connection ended *and* the server
confirmed (226/250); a 4xx/5xx, the server closing or a timeout fails it with
:class:`FtpError`, so a partial file is never reported as complete.

Every wait for the server is bounded by ``timeout``: a reply, the 226 after the data, the
FIN after the 226.  Only data flowing at the user's pace is not timed.  When the control
connection is lost every request still queued fails with the reason.

Time comes in through :meth:`FtpSession.poll` / :meth:`on_timer` (``now``); the owner runs the
stack; events go to the ``on_event`` callback (or :meth:`next_event`).
"""

from __future__ import annotations

from collections import deque
from ipaddress import IPv4Address

from wipstack.apps.ftp_transfer import Transfer
from wipstack.apps.ftp_types import (
    DEFAULT_TIMEOUT,
    FtpError,
    FtpErrorKind,
    LoggedIn,
    ReplyCallback,
    SessionCallback,
    SessionClosed,
    SessionEvent,
    SessionState,
    TransferEvent,
    TransferState,
)
from wipstack.errors import MalformedPacket
from wipstack.net.stack import Stack
from wipstack.tcp.events import Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.wire.ftp import FtpReply, ReplyParser, command_line, parse_epsv, parse_pasv, port_argument

__all__ = [
    "DEFAULT_TIMEOUT",
    "FtpError",
    "FtpErrorKind",
    "FtpSession",
    "LoggedIn",
    "SessionClosed",
    "SessionEvent",
    "SessionState",
    "Transfer",
    "TransferEvent",
    "TransferState",
]

Request = tuple[str, str | None, ReplyCallback] | Transfer | None  # a command, a transfer, or QUIT


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
        self._user_callback: ReplyCallback | None = None  # the running command()'s own callback
        self._owed = False  # a failed transfer's reply is still to come: swallow it first
        self._deadline: float | None = now + timeout
        self._queue: deque[Request] = deque()
        self._transfer: Transfer | None = None
        self._type_sent: str | None = None
        self._epsv = True
        self._events: list[SessionEvent] = []
        self.control = TcpSocket.connect(stack.tcp, host, port, now)
        self.control.on_event = self._control_event
        self._waiting = self._greeting

    # ------------------------------------------------------------------ requests
    def command(self, verb: str, argument: str | None, callback: ReplyCallback) -> None:
        """Send one command in turn; ``callback(reply, error)`` gets its final reply (or the failure)."""
        command_line(verb, argument)  # ValueError now for CR/LF, not later inside the loop
        self._enqueue((verb, argument, callback))

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
        """QUIT after the requests already made; then the control connection closes."""
        if self.state not in (SessionState.CLOSED, SessionState.CLOSING):
            self._enqueue(None)

    def abort(self) -> None:
        """Close everything now (no QUIT); pending requests fail as ABORTED."""
        if self.state is SessionState.CLOSED:
            return
        self.control.abort(self.now)
        self._lost(FtpError(FtpErrorKind.ABORTED))

    @property
    def is_ready(self) -> bool:
        return self.state is SessionState.READY and not self._queue and not self._owed

    # ------------------------------------------------------------------ time
    def next_deadline(self) -> float | None:
        return self._deadline if self.state is not SessionState.CLOSED else None

    def on_timer(self, now: float) -> None:
        self.now = now
        if self._deadline is not None and now >= self._deadline and self.state is not SessionState.CLOSED:
            self.control.abort(now)
            self._lost(FtpError(FtpErrorKind.TIMEOUT))

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
                self.control.abort(self.now)
                self._lost(FtpError(FtpErrorKind.PROTOCOL, str(exc)))
                return
            for reply in replies:
                if self.state is SessionState.CLOSED:
                    return
                self._reply(reply)
        elif isinstance(event, Connected):
            self._deadline = self.now + self.timeout
        elif isinstance(event, PeerClosed):
            sock.close(self.now)
            if self.state is SessionState.CLOSING:
                self._closed(None)
            else:
                self._lost(FtpError(FtpErrorKind.CLOSED))
        elif isinstance(event, ConnectionFailed):
            kind = FtpErrorKind.CONNECT if self.state is SessionState.CONNECTING else FtpErrorKind.CLOSED
            self._lost(FtpError(kind, event.reason))

    def _reply(self, reply: FtpReply) -> None:
        if reply.kind == 1:
            transfer = self._transfer
            if transfer is not None and transfer.state is TransferState.STARTING:
                transfer.state = TransferState.ACTIVE  # 125/150: the transfer runs
                transfer.push()
                self._emit(TransferEvent(transfer))
            if transfer is not None and not transfer.data_ended:
                self._deadline = None  # data moves at the user's pace: not timed
            return
        handler, self._waiting = self._waiting, None
        self._deadline = None
        if handler is not None:
            handler(reply, None)
        elif reply.code == 421:
            self.control.close(self.now)
            self._lost(FtpError(FtpErrorKind.CLOSED, "service closing", reply))
        # any other unsolicited reply: nothing waits for it

    def _send(self, verb: str, argument: str | None, handler: ReplyCallback) -> None:
        self._waiting = handler
        self._deadline = self.now + self.timeout
        self.control.send(command_line(verb, argument))

    def _greeting(self, reply: FtpReply | None, error: FtpError | None) -> None:
        if reply is None or reply.code != 220:
            self.control.close(self.now)
            self._lost(FtpError(FtpErrorKind.CONNECT, "no 220 greeting", reply))
            return
        self.welcome = reply
        self.state = SessionState.LOGGING_IN
        self._send("USER", self.user, self._after_login_step)

    def _after_login_step(self, reply: FtpReply | None, error: FtpError | None) -> None:
        if reply is None:
            return
        if reply.code in (202, 230):
            self.state = SessionState.READY
            self._emit(LoggedIn())
            self._run_queue()
        elif reply.code == 331:
            self._send("PASS", self.password, self._after_login_step)
        elif reply.code == 332 and self.account is not None:
            self._send("ACCT", self.account, self._after_login_step)
        else:
            self.control.close(self.now)
            self._lost(FtpError(FtpErrorKind.LOGIN, "", reply))

    # ------------------------------------------------------------------ the queue
    def _enqueue(self, request: Request) -> None:
        if self.state in (SessionState.CLOSED, SessionState.CLOSING):
            raise FtpError(FtpErrorKind.CLOSED, "the session is closed")
        self._queue.append(request)
        self._run_queue()

    def _run_queue(self) -> None:
        while self.state is SessionState.READY and not self._owed and self._queue:
            request = self._queue.popleft()
            if request is None:
                self.state = SessionState.CLOSING
                self._send("QUIT", None, lambda reply, error: self.control.close(self.now))
            elif isinstance(request, Transfer):
                if not request.done:  # a transfer aborted while queued is skipped
                    self._prepare(request)
            else:
                verb, argument, callback = request
                self.state = SessionState.BUSY
                self._user_callback = callback
                self._send(verb, argument, self._command_done)

    def _command_done(self, reply: FtpReply | None, error: FtpError | None) -> None:
        callback, self._user_callback = self._user_callback, None
        self.state = SessionState.READY
        if callback is not None:
            callback(reply, error)
        self._run_queue()

    def _swallow(self, reply: FtpReply | None, error: FtpError | None) -> None:
        """The late reply of a transfer that already failed: then the next request."""
        self._owed = False
        if self.state is SessionState.BUSY:
            self.state = SessionState.READY
        self._run_queue()

    # ------------------------------------------------------------------ transfers
    def _start_transfer(self, verb: str, argument: str | None, upload: bool) -> Transfer:
        command_line(verb, argument)  # ValueError now for CR/LF in the name
        transfer = Transfer(self, verb, argument, upload)
        self._enqueue(transfer)
        return transfer

    def _prepare(self, transfer: Transfer) -> None:
        self.state = SessionState.BUSY
        self._transfer = transfer
        wanted = "I" if self.binary and transfer.verb in ("RETR", "STOR") else "A"
        transfer.ascii = wanted == "A"
        if self._type_sent != wanted:
            self._send("TYPE", wanted, lambda reply, error: self._after_type(transfer, wanted, reply))
        else:
            self._open_data(transfer)

    def _after_type(self, transfer: Transfer, wanted: str, reply: FtpReply | None) -> None:
        if reply is None or transfer.done:
            return
        if reply.kind != 2:
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
        if reply is None or transfer.done:
            return
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
        if reply is None or transfer.done:
            return
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
        self._deadline = self.now + self.timeout  # for the data connection to come up

    def _open_active(self, transfer: Transfer) -> None:
        local = self.control.local[0]
        try:
            server = TcpServer(self.stack.tcp, 0, host=local, backlog=1)
        except OSError as exc:
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, str(exc)))
            return
        transfer.listener = server
        server.on_accept = lambda sock: self._accepted(transfer, sock)
        self._send("PORT", port_argument(local, server.port), lambda reply, error: self._after_port(transfer, reply))

    def _after_port(self, transfer: Transfer, reply: FtpReply | None) -> None:
        if reply is None or transfer.done:
            return
        if reply.kind != 2:
            kind = FtpErrorKind.REFUSED if reply.kind in (4, 5) else FtpErrorKind.DATA
            self._fail_transfer(transfer, FtpError(kind, "PORT", reply))
            return
        self._send_transfer_command(transfer)

    def _send_transfer_command(self, transfer: Transfer) -> None:
        transfer.state = TransferState.STARTING
        if transfer.upload and transfer.data is not None:
            transfer.sending = True  # data may go as soon as STOR is out: TCP holds it for the server
        self._send(transfer.verb, transfer.argument, lambda r, error: self._after_transfer_reply(transfer, r))
        if transfer.sending:
            transfer.push()
            self._emit(TransferEvent(transfer))

    def _accepted(self, transfer: Transfer, sock: TcpSocket) -> None:
        if transfer.listener is not None:
            transfer.listener.close(self.now)
            transfer.listener = None
        if transfer.data is not None or transfer.done:
            sock.abort(self.now)
            return
        self._adopt_data(transfer, sock)
        if transfer.upload and transfer.state in (TransferState.STARTING, TransferState.ACTIVE):
            transfer.sending = True
            transfer.push()
            self._emit(TransferEvent(transfer))  # the stage drained into the socket: room to write

    def _adopt_data(self, transfer: Transfer, sock: TcpSocket) -> None:
        transfer.data = sock
        sock.on_event = lambda s, event: self._data_event(transfer, s, event)

    def _data_event(self, transfer: Transfer, sock: TcpSocket, event: TcpEvent) -> None:
        if transfer.done:
            return
        if isinstance(event, Connected):
            if transfer.state is TransferState.CONNECTING:
                self._send_transfer_command(transfer)
        elif isinstance(event, DataAvailable):
            self._emit(TransferEvent(transfer))
        elif isinstance(event, SendSpace):
            if transfer.state is TransferState.STARTING:
                self._deadline = self.now + self.timeout  # no 1xx yet, but the server takes data: alive
            transfer.push()
            self._emit(TransferEvent(transfer))
        elif isinstance(event, PeerClosed):
            if transfer.upload:
                if not transfer.data_ended:  # the server gave up before our end of the file
                    self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, "the server closed the data connection"))
                return
            transfer.data_ended = True
            self._data_ended(transfer)
            self._emit(TransferEvent(transfer))
        elif isinstance(event, ConnectionFailed):
            self._fail_transfer(transfer, FtpError(FtpErrorKind.DATA, event.reason))

    def _data_ended(self, transfer: Transfer) -> None:
        """The data connection is over: the 226 must come in time."""
        if not transfer.confirmed and self._transfer is transfer:
            self._deadline = self.now + self.timeout
        self._check_transfer(transfer)

    def _after_transfer_reply(self, transfer: Transfer, reply: FtpReply | None) -> None:
        if reply is None or transfer.done:
            return
        if reply.kind != 2:
            kind = FtpErrorKind.REFUSED if transfer.state is TransferState.STARTING else FtpErrorKind.DATA
            self._fail_transfer(transfer, FtpError(kind, f"{transfer.verb} {transfer.argument or ''}".strip(), reply))
            return
        transfer.reply = reply
        transfer.confirmed = True
        if transfer.state is TransferState.STARTING:
            transfer.state = TransferState.ACTIVE  # a server that skipped the 1xx
        if not transfer.data_ended:
            self._deadline = self.now + self.timeout  # the data connection must end in time
        self._check_transfer(transfer)

    def _check_transfer(self, transfer: Transfer) -> None:
        """Done when the server confirmed, the data connection ended, and a download was read out."""
        if transfer.done or not transfer.confirmed or not transfer.data_ended:
            return
        self._deadline = None  # nothing more from the server: the user reads at its own pace
        if not transfer.upload and (transfer.readable() or transfer.holds_text):
            return
        transfer.state = TransferState.DONE
        if transfer.data is not None:
            transfer.data.close(self.now)
        self._end_transfer(transfer)

    def _fail_transfer(self, transfer: Transfer, error: FtpError) -> None:
        if transfer.done:
            return
        transfer.error = error
        transfer.state = TransferState.FAILED
        if transfer.data is not None:
            transfer.data.abort(self.now)
        if transfer in self._queue:
            self._queue.remove(transfer)
        if self._transfer is transfer and self._waiting is not None and self.state is not SessionState.CLOSED:
            self._owed = True  # the server still answers the command we gave up on
            self._waiting = self._swallow
        self._end_transfer(transfer)

    def _end_transfer(self, transfer: Transfer) -> None:
        if transfer.listener is not None:
            transfer.listener.close(self.now)
            transfer.listener = None
        if self._transfer is transfer:
            self._transfer = None
            if not self._owed:
                self._deadline = None
                if self.state is SessionState.BUSY:
                    self.state = SessionState.READY
        self._emit(TransferEvent(transfer))
        self._run_queue()

    # ------------------------------------------------------------------ endings
    def _lost(self, error: FtpError) -> None:
        """The control connection is gone: everything running or queued fails with ``error``."""
        if self.state is SessionState.CLOSED:
            return
        self._waiting = None
        self._owed = False
        transfer = self._transfer
        callback, self._user_callback = self._user_callback, None
        queued, self._queue = list(self._queue), deque()
        self._closed(error)  # first: nothing queued may start on the dead connection
        if transfer is not None:
            self._fail_transfer(transfer, error)
        if callback is not None:
            callback(None, error)
        for request in queued:
            if isinstance(request, Transfer):
                self._fail_transfer(request, error)
            elif request is not None:
                request[2](None, error)

    def _closed(self, error: FtpError | None) -> None:
        if self.state is SessionState.CLOSED:
            return
        self.state = SessionState.CLOSED
        self.error = error
        self._deadline = None
        self._emit(SessionClosed(error))

    def _emit(self, event: SessionEvent) -> None:
        if self.on_event is not None:
            self.on_event(self, event)
        else:
            self._events.append(event)

    def __repr__(self) -> str:
        remote = self.control.remote
        return f"<FtpSession {IPv4Address(remote[0])}:{remote[1]} {self.state.value}>"
