"""FTP through the module: ``AT+WIPCREATE=4``, ``AT+WIPFILE=4``, ``+WIPOPT`` 40/41.

``AT+WIPCREATE=4,<idx>,<server>[,<port>],<user>,<password>[,<account>]`` opens the one FTP
session (index 1) on :class:`wipstack.apps.ftp.FtpSession` and answers ``OK`` once logged
in (``+CME ERROR: 841`` when the login is refused, 842 when the server cannot be reached).
``AT+WIPFILE=4,<idx>,1,<name>`` downloads: ``CONNECT``, the file in continuous-mode escaping
(DLE before DLE and ETX), an ETX, then ``OK`` once the server confirmed -- or ``+CME ERROR:
841`` after the ETX when the transfer failed, so a partial file never looks complete.
``AT+WIPFILE=4,<idx>,2,<name>`` uploads: ``CONNECT``, the host sends the escaped file and an
ETX (``+++`` counts as ETX, as the guide says), and ``OK`` follows the server's 226.
Option 40 is the type (0 ASCII, 1 binary, the default), option 41 the mode (0 active,
1 passive, the default).  ``+WIPPEERCLOSE: 4,<idx>`` when the server ends the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from at_frontend.channel import Channel
from at_frontend.escaping import ETX, ETX_BYTE, DleDecoder, escape
from at_frontend.parser import Arg, Command, CommandKind
from at_frontend.registry import PENDING, Outcome, arg_count, command, int_arg, require_started
from at_frontend.responses import CmeError, CommandError, ResultCode
from wipstack.apps.ftp import FtpErrorKind, FtpSession, LoggedIn, SessionClosed, SessionEvent, Transfer, TransferEvent

if TYPE_CHECKING:
    from at_frontend.module import Module

FTP = 4
SET, READ, TEST = CommandKind.SET, CommandKind.READ, CommandKind.TEST


@dataclass(eq=False)
class FtpEntry:
    """The module's FTP session at one index."""

    idx: int
    owner: Channel
    host: str
    port: int
    user: str
    password: str
    account: str | None
    binary: bool = True
    passive: bool = True
    session: FtpSession | None = None
    resolving: int | None = None
    logged_in: bool = False
    closed: bool = False
    transfer: Transfer | None = None
    link: FtpDownloadLink | FtpUploadLink | None = None
    waiting: Channel | None = None  # a command waiting for login or for the transfer to start
    dropped: list[int] = field(default_factory=list)


class FtpDownloadLink:
    """A download as the UART sees it: escaped file, ETX, then the final result."""

    def __init__(self, service: FtpService, entry: FtpEntry, transfer: Transfer, channel: Channel) -> None:
        self.service = service
        self.entry = entry
        self.transfer = transfer
        self.channel = channel
        self._ended = False

    def write(self, data: bytes, now: float) -> None:
        pass  # the host has nothing to say during a download (bytes are dropped)

    def can_accept(self) -> bool:
        return True

    def read(self, limit: int, now: float) -> bytes:
        if self._ended:
            return b""
        out = bytearray()
        data = self.transfer.recv(max(1, limit // 2))
        if data:
            out += escape(data)
        if self.transfer.done and not self.transfer.readable():
            framing = self.channel.framing
            out += ETX_BYTE
            out += framing.result(ResultCode.OK) if self.transfer.ok else framing.error(CmeError.PEER_CLOSED)
            self._ended = True
            self.service.transfer_ended(self.entry)
        return bytes(out)

    @property
    def ended(self) -> bool:
        return self._ended

    def detach(self, now: float) -> None:
        if not self.transfer.done:
            self.transfer.abort()  # +++ during a download gives it up
            self.service.transfer_ended(self.entry)


class FtpUploadLink:
    """An upload: the host's escaped file until ETX (or ``+++``), then the final result."""

    escape_as_etx = True  # the guide: "during an FTP upload +++ counts as ETX"

    def __init__(self, service: FtpService, entry: FtpEntry, transfer: Transfer, channel: Channel) -> None:
        self.service = service
        self.entry = entry
        self.transfer = transfer
        self.channel = channel
        self.decoder = DleDecoder()
        self.backlog = bytearray()
        self.end_requested = False
        self._ended = False

    def write(self, data: bytes, now: float) -> None:
        for item in self.decoder.feed(data):
            if item is ETX:
                self.end_requested = True
            elif not self.end_requested:
                self.backlog += item
        self.flush()

    def end_of_data(self, now: float) -> None:
        self.end_requested = True
        self.flush()

    def flush(self) -> None:
        if self.backlog:
            taken = self.transfer.send(bytes(self.backlog))
            del self.backlog[:taken]
        if self.end_requested and not self.backlog and not self.transfer.done:
            self.transfer.finish()

    def can_accept(self) -> bool:
        return not self.backlog and not self.end_requested

    def read(self, limit: int, now: float) -> bytes:
        if self._ended or not self.transfer.done:
            return b""
        self._ended = True
        self.service.transfer_ended(self.entry)
        framing = self.channel.framing
        return framing.result(ResultCode.OK) if self.transfer.ok else framing.error(CmeError.PEER_CLOSED)

    @property
    def ended(self) -> bool:
        return self._ended

    def detach(self, now: float) -> None:
        if not self.transfer.done:
            self.transfer.abort()
            self.service.transfer_ended(self.entry)


class FtpService:
    """The FTP sessions of a module (one, as on the module)."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.entries: dict[int, FtpEntry] = {}

    # ------------------------------------------------------------------ commands
    def create(self, channel: Channel, cmd: Command) -> Outcome:
        arg_count(cmd, 5, 7)
        idx = int_arg(cmd.args[1], 1, 1, CmeError.BAD_INDEX)
        if idx in self.entries:
            raise CommandError(CmeError.INDEX_ALREADY_ACTIVE)
        args = list(cmd.args[2:])
        host = args.pop(0).text
        port = 21
        if len(args) == 4 or (len(args) == 3 and args[0].text.isdigit() and not args[0].quoted):
            port = int_arg(args.pop(0), 1, 65535, CmeError.BAD_PORT_NUMBER)  # the optional <port>
        if len(args) not in (2, 3) or not host:
            raise CommandError(CmeError.INVALID_OPTION, "=4,<idx>,<server>[,<port>],<user>,<password>[,<account>]")
        account = args[2].text if len(args) == 3 and not args[2].is_empty else None
        entry = FtpEntry(idx, channel, host, port, args[0].text, args[1].text, account)
        self.entries[idx] = entry
        entry.waiting = channel
        try:
            address = IPv4Address(host).packed
        except ValueError:
            entry.resolving = self.module.stack.dns.resolve(host, self.module.now)
            return PENDING
        self._open(entry, address)
        return PENDING

    def _open(self, entry: FtpEntry, address: bytes) -> None:
        try:
            entry.session = FtpSession(
                self.module.stack, address, port=entry.port, user=entry.user, password=entry.password,
                account=entry.account, passive=entry.passive, binary=entry.binary, now=self.module.now,
                on_event=lambda session, event: self._event(entry, event),
            )  # fmt: skip
        except OSError:
            self._failed(entry, CmeError.HOST_UNREACHABLE)

    def close(self, idx: int) -> None:
        entry = self.entries.pop(idx, None)
        if entry is None:
            raise CommandError(CmeError.BAD_STATE, "no FTP session")
        entry.closed = True
        if entry.resolving is not None:
            self.module.stack.dns.cancel(entry.resolving)
        if entry.session is not None:
            if entry.transfer is not None and not entry.transfer.done:
                entry.transfer.abort()
            entry.session.quit()

    def file(self, channel: Channel, cmd: Command) -> Outcome:
        arg_count(cmd, 4, 4)
        idx = int_arg(cmd.args[1], 1, 1, CmeError.BAD_INDEX)
        mode = int_arg(cmd.args[2], 1, 2, CmeError.INVALID_OPTION_VALUE)
        name = cmd.args[3].text
        entry = self.entries.get(idx)
        if entry is None or entry.session is None or not entry.logged_in or entry.closed:
            raise CommandError(CmeError.BAD_STATE, "no FTP session ready")
        if entry.transfer is not None or entry.waiting is not None:
            raise CommandError(CmeError.BAD_STATE, "a transfer is running")
        if not name:
            raise CommandError(CmeError.INVALID_OPTION_VALUE, "no file name")
        entry.session.binary = entry.binary
        entry.session.passive = entry.passive
        entry.transfer = entry.session.retrieve(name) if mode == 1 else entry.session.store(name)
        entry.waiting = channel
        return PENDING

    def option(self, entry: FtpEntry, opt: int, value: Arg | None) -> str | None:
        if opt not in (40, 41):
            raise CommandError(CmeError.OPTION_NOT_SUPPORTED if opt < 100 else CmeError.INVALID_OPTION)
        if value is None:
            return str(int(entry.binary if opt == 40 else entry.passive))
        number = int_arg(value, 0, 1, CmeError.INVALID_OPTION_VALUE)
        if opt == 40:
            entry.binary = bool(number)
        else:
            entry.passive = bool(number)
        return None

    # ------------------------------------------------------------------ events
    def _event(self, entry: FtpEntry, event: SessionEvent) -> None:
        if isinstance(event, LoggedIn):
            entry.logged_in = True
            waiting, entry.waiting = entry.waiting, None
            if waiting is not None:
                self.module.complete(waiting)
        elif isinstance(event, SessionClosed):
            if not entry.logged_in and entry.waiting is not None:
                login = event.error is not None and event.error.kind is FtpErrorKind.LOGIN
                self._failed(entry, CmeError.PEER_CLOSED if login else CmeError.HOST_UNREACHABLE)
                return
            if not entry.closed:
                entry.closed = True
                entry.owner.urc(f"+WIPPEERCLOSE: {FTP},{entry.idx}")
        elif isinstance(event, TransferEvent):
            transfer = event.transfer
            if transfer is not entry.transfer:
                return
            waiting = entry.waiting
            if waiting is not None and (transfer.state.value == "active" or transfer.done):
                entry.waiting = None
                if transfer.state.value == "failed":
                    entry.transfer = None
                    self.module.complete(waiting, CmeError.PEER_CLOSED)
                    return
                link: FtpDownloadLink | FtpUploadLink
                if transfer.upload:
                    link = FtpUploadLink(self, entry, transfer, waiting)
                else:
                    link = FtpDownloadLink(self, entry, transfer, waiting)
                entry.link = link
                self.module.complete_in_data_mode(waiting, (FTP, entry.idx), link)
            elif isinstance(entry.link, FtpUploadLink):
                entry.link.flush()

    def _failed(self, entry: FtpEntry, code: CmeError) -> None:
        self.entries.pop(entry.idx, None)
        entry.closed = True
        waiting, entry.waiting = entry.waiting, None
        if waiting is not None:
            self.module.complete(waiting, code)

    def transfer_ended(self, entry: FtpEntry) -> None:
        entry.transfer = None
        entry.link = None

    # ------------------------------------------------------------------ loop side
    def poll(self, now: float) -> None:
        for entry in list(self.entries.values()):
            if entry.resolving is not None:
                result = self.module.stack.dns.result(entry.resolving)
                if result is not None:
                    entry.resolving = None
                    if result.error is not None or not result.addresses:
                        self._failed(entry, CmeError.HOST_UNREACHABLE)
                    else:
                        self._open(entry, result.addresses[0])
            if entry.session is not None:
                entry.session.poll(now)

    def next_deadline(self) -> float | None:
        deadlines = [e.session.next_deadline() for e in self.entries.values() if e.session is not None]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        for entry in list(self.entries.values()):
            session = entry.session
            if session is not None:
                deadline = session.next_deadline()
                if deadline is not None and deadline <= now:
                    session.on_timer(now)

    def close_all(self) -> None:
        for idx in list(self.entries):
            self.close(idx)


@command("+WIPFILE")
def wipfile(module: Module, channel: Channel, cmd: Command) -> Outcome | None:
    """``AT+WIPFILE=4,<idx>,<mode>,<filename>``: 1 download, 2 upload."""
    if cmd.kind is TEST:
        channel.info("+WIPFILE: (4),(1),(1-2)")
        return None
    if cmd.kind is READ:
        return None  # nothing to list: a transfer runs in data mode
    if cmd.kind is not SET:
        raise CommandError(None)
    require_started(module)
    arg_count(cmd, 1, 4)
    proto = int_arg(cmd.args[0], 0, 255, CmeError.BAD_PROTOCOL)
    if proto in (5, 6):
        raise CommandError(CmeError.NOT_IMPLEMENTED, "HTTP and SMTP are not available")
    if proto != FTP:
        raise CommandError(CmeError.BAD_PROTOCOL)
    return module.ftp.file(channel, cmd)
