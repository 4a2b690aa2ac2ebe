"""A scripted FTP server on a wipstack stack, and a virtual-time loop to run it with a client.

:class:`FtpServer` listens on a :class:`~wipstack.tcp.socket.TcpServer` and serves each
control connection from socket callbacks only (sans-I/O: it never reads a clock, the loop
hands it ``now``).  It knows users and passwords (optionally asking for an account with
332), keeps its files in a dict (``name -> local octets``; paths are relative to ``/``,
``dirs`` holds the directories), and implements USER, PASS, ACCT, TYPE A/I, EPSV, PASV,
PORT (it connects back), RETR, STOR, LIST, NLST, SIZE, CWD, PWD, DELE, MKD, NOOP, HELP,
STAT, FEAT and QUIT, with multi-line replies (the 220 banner, 211, 214).  TYPE A converts
like a Unix server: LF locally, CRLF on the wire.

Fault switches (plain attributes, set them before or during a test):

* ``refuse_login`` -- 530 to every PASS;
* ``require_account`` -- after the right password, 332 until ``ACCT <that value>``;
* missing files give 550 on their own;
* ``close_control_after`` -- after that many data octets of a transfer, close the control
  connection (the data connection is left hanging);
* ``abort_after`` -- after that many data octets, end the data connection (FIN on a
  download, RST on an upload) and answer 426;
* ``refuse_data`` -- passive: the announced port is closed again at once (the client's SYN
  is refused); active: 425 instead of connecting back;
* ``silent`` -- verbs never answered (``"GREETING"`` for the banner, ``"226"`` for the
  reply that ends a transfer: the data still flows and ends; ``"426"`` for the reply of
  ``abort_after``: the test sends it itself with ``controls[0].reply``);
* ``hangup`` -- verbs answered by closing the control connection;
* ``garbage`` -- ``verb -> octets`` sent instead of that verb's reply (``"GREETING"`` too);
* ``skip_150`` -- no 1xx before a transfer: data, then 226 directly;
* ``epsv`` -- False: EPSV gets 502, so the client falls back to PASV;
* ``read_chunk`` -- a slow reader of uploads: at most that many octets per millisecond.

``commands`` records every ``(VERB, argument)`` received, ``uploads_wire`` the octets each
STOR carried on the wire (before TYPE A conversion).

:class:`Rig` is the loop: it moves datagrams over a :class:`tests.unit.net.helpers.Net` and
runs the stacks' timers exactly as ``Net.run_until`` does, and in addition keeps every
*app* (the server, the client session, test readers and writers: objects with
``poll(now)``, ``next_deadline()`` and ``on_timer(now)``) current at each virtual instant
and runs their timers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Protocol

from tests.unit.net.helpers import Net
from wipstack.net.stack import Stack
from wipstack.tcp.events import ConnectionFailed, DataAvailable, PeerClosed, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.tcp.state import TcpState

CRLF = b"\r\n"

BANNER = (
    "wipstack scripted FTP server",
    "230 an inner line with another code",
    "220-an inner line with our code and a dash",
    "ready",
)
HELP_LINES = (
    "The following commands are recognized:",
    " USER PASS ACCT TYPE EPSV PASV PORT RETR STOR LIST NLST",
    "214-an inner line with the same code and a dash",
    "200 an inner line with another code",
    "Help OK.",
)
FEAT_LINES = ("Features:", " EPSV", " PASV", " SIZE", "End")


def to_netascii(local: bytes) -> bytes:
    """Local text (LF line ends) as TYPE A puts it on the wire (CRLF)."""
    return local.replace(b"\n", b"\r\n")


def from_netascii(wire: bytes) -> bytes:
    """TYPE A wire text (CRLF) as a Unix server stores it (LF)."""
    return wire.replace(b"\r\n", b"\n")


class App(Protocol):
    def poll(self, now: float) -> None: ...

    def next_deadline(self) -> float | None: ...

    def on_timer(self, now: float) -> None: ...


class Rig:
    """A :class:`Net` plus apps, run in virtual time (see the module docstring)."""

    def __init__(self, net: Net, apps: list[App] | None = None) -> None:
        self.net = net
        self.apps: list[App] = list(apps or [])

    @property
    def now(self) -> float:
        return self.net.now

    def add(self, app: App) -> App:
        self.apps.append(app)
        app.poll(self.net.now)
        return app

    def _poll(self) -> None:
        for app in list(self.apps):
            app.poll(self.net.now)

    def step(self, end: float) -> bool:
        """Run the earliest instant that is due by ``end``; False when nothing is."""
        net = self.net
        net._collect()
        self._poll()
        net._collect()
        times = [net._in_flight[0][0]] if net._in_flight else []
        times += [d for d in (s.next_deadline() for s in net.stacks) if d is not None]
        times += [d for d in (a.next_deadline() for a in list(self.apps)) if d is not None]
        due = [t for t in times if t <= end]
        if not due:
            return False
        net.now = max(net.now, min(due))
        self._poll()
        while net._in_flight and net._in_flight[0][0] <= net.now:
            _, _, index, packet = heapq.heappop(net._in_flight)
            _, stack, iface = net._links[index]
            stack.receive(iface, packet, net.now)
        for stack in net.stacks:
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= net.now:
                stack.on_timer(net.now)
        for app in list(self.apps):
            deadline = app.next_deadline()
            if deadline is not None and deadline <= net.now:
                app.on_timer(net.now)
        return True

    def run_until(self, end: float, *, max_steps: int = 2_000_000) -> None:
        """Everything due up to ``end`` (inclusive), then the clock stands at ``end``."""
        for _ in range(max_steps):
            if not self.step(end):
                break
        else:  # pragma: no cover - a spinning deadline
            raise AssertionError("the simulation did not settle")
        self.net.now = max(self.net.now, end)
        self._poll()

    def run_for(self, seconds: float) -> None:
        self.run_until(self.net.now + seconds)

    def run_while(self, condition: Callable[[], bool], *, limit: float = 600.0, max_steps: int = 2_000_000) -> bool:
        """Step while ``condition()`` holds, at most until ``now + limit``; returns ``not condition()``."""
        end = self.net.now + limit
        for _ in range(max_steps):
            if not condition():
                return True
            if not self.step(end):
                self.net.now = max(self.net.now, end)
                self._poll()
                return not condition()
        raise AssertionError("the simulation did not settle")  # pragma: no cover


class _Job:
    """One transfer on the server's side."""

    def __init__(self, control: _Control, verb: str, name: str, payload: bytes, upload: bool) -> None:
        self.control = control
        self.verb = verb
        self.name = name
        self.payload = payload  # wire octets of a download
        self.upload = upload
        self.sock: TcpSocket | None = None
        self.offset = 0
        self.received = bytearray()
        self.done = False
        self.partial_done = False


class _Control:
    """One control connection."""

    def __init__(self, server: FtpServer, sock: TcpSocket) -> None:
        self.server = server
        self.sock = sock
        self.buffer = bytearray()
        self.user: str | None = None
        self.logged_in = False
        self.awaiting_account = False
        self.type = "A"
        self.cwd = ""
        self.passive: TcpServer | None = None
        self.passive_sock: TcpSocket | None = None
        self.active: tuple[bytes, int] | None = None
        self.job: _Job | None = None
        self.closed = False
        sock.on_event = self._event
        if "GREETING" in server.garbage:
            self.send_raw(server.garbage["GREETING"])
        elif "GREETING" not in server.silent:
            self.reply(220, *server.banner)

    # ---------------------------------------------------------------- output
    def send_raw(self, data: bytes) -> None:
        if self.closed:
            return
        taken = self.sock.send(data)
        assert taken == len(data), "control send buffer full"

    def reply(self, code: int, *lines: str) -> None:
        """A reply; several lines make a multi-line reply (RFC 959 §4.2)."""
        lines = lines or ("",)
        out = bytearray()
        if len(lines) == 1:
            out += f"{code} {lines[0]}".encode() + CRLF
        else:
            out += f"{code}-{lines[0]}".encode() + CRLF
            for line in lines[1:-1]:
                out += line.encode() + CRLF
            out += f"{code} {lines[-1]}".encode() + CRLF
        self.send_raw(bytes(out))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close(self.server.now)
        self._drop_passive()

    # ---------------------------------------------------------------- input
    def _event(self, sock: TcpSocket, event: TcpEvent) -> None:
        if isinstance(event, DataAvailable):
            self.buffer += sock.recv()
            while not self.closed:
                end = self.buffer.find(b"\n")
                if end < 0:
                    break
                line = bytes(self.buffer[:end]).rstrip(b"\r").decode("utf-8", "replace")
                del self.buffer[: end + 1]
                self._command(line)
        elif isinstance(event, PeerClosed):
            self.close()
            if self.job is not None and self.job.sock is not None and not self.job.done:
                self.job.sock.abort(self.server.now)
        elif isinstance(event, ConnectionFailed):
            self.closed = True
            self._drop_passive()

    def _command(self, line: str) -> None:
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        arg: str | None = argument if argument else None
        server = self.server
        server.commands.append((verb, arg))
        if verb in server.garbage:
            self.send_raw(server.garbage[verb])
            return
        if verb in server.silent:
            return
        if verb in server.hangup:
            self.close()
            return
        handler = getattr(self, f"_cmd_{verb.lower()}", None)
        if handler is None:
            self.reply(502, f"{verb} not implemented.")
            return
        if verb not in ("USER", "PASS", "ACCT", "QUIT", "HELP", "FEAT", "NOOP") and not self.logged_in:
            self.reply(530, "Please login with USER and PASS.")
            return
        handler(arg)

    # ---------------------------------------------------------------- login
    def _cmd_user(self, arg: str | None) -> None:
        self.user, self.logged_in, self.awaiting_account = arg, False, False
        self.reply(331, "Please specify the password.")

    def _cmd_pass(self, arg: str | None) -> None:
        server = self.server
        if server.refuse_login or self.user not in server.users or server.users[self.user] != (arg or ""):
            self.reply(530, "Login incorrect.")
            return
        if server.require_account is not None:
            self.awaiting_account = True
            self.reply(332, "Need account for login.")
            return
        self.logged_in = True
        self.reply(230, "Login successful.")

    def _cmd_acct(self, arg: str | None) -> None:
        if self.awaiting_account and arg == self.server.require_account:
            self.awaiting_account = False
            self.logged_in = True
            self.reply(230, "Account accepted, logged in.")
        else:
            self.reply(530, "Account refused.")

    def _cmd_quit(self, arg: str | None) -> None:
        self.reply(221, "Goodbye.")
        self.close()

    def _cmd_noop(self, arg: str | None) -> None:
        self.reply(200, "NOOP ok.")

    def _cmd_help(self, arg: str | None) -> None:
        self.reply(214, *HELP_LINES)

    def _cmd_feat(self, arg: str | None) -> None:
        self.reply(211, *FEAT_LINES)

    def _cmd_stat(self, arg: str | None) -> None:
        self.reply(
            211, "FTP server status:", f"     Logged in as {self.user}", f"     TYPE: {self.type}", "End of status"
        )

    # ---------------------------------------------------------------- file system
    def _path(self, name: str | None) -> str:
        name = name or ""
        if name.startswith("/"):
            return name.strip("/")
        if not name:
            return self.cwd
        return f"{self.cwd}/{name}".strip("/") if self.cwd else name

    def _cmd_type(self, arg: str | None) -> None:
        kind = (arg or "").upper().split(" ")[0]
        if kind not in ("A", "I"):
            self.reply(504, "Type not implemented.")
            return
        self.type = kind
        self.reply(200, f"Switching to {'ASCII' if kind == 'A' else 'Binary'} mode.")

    def _cmd_pwd(self, arg: str | None) -> None:
        self.reply(257, f'"/{self.cwd}" is the current directory')

    def _cmd_cwd(self, arg: str | None) -> None:
        path = self._path(arg)
        if path not in self.server.dirs:
            self.reply(550, "Failed to change directory.")
            return
        self.cwd = path
        self.reply(250, "Directory successfully changed.")

    def _cmd_mkd(self, arg: str | None) -> None:
        path = self._path(arg)
        if not arg or path in self.server.dirs or path in self.server.files:
            self.reply(550, "Create directory operation failed.")
            return
        self.server.dirs.add(path)
        self.reply(257, f'"/{path}" created')

    def _cmd_dele(self, arg: str | None) -> None:
        path = self._path(arg)
        if path not in self.server.files:
            self.reply(550, "Delete operation failed.")
            return
        del self.server.files[path]
        self.reply(250, "Delete operation successful.")

    def _cmd_size(self, arg: str | None) -> None:
        path = self._path(arg)
        if path not in self.server.files:
            self.reply(550, "Could not get file size.")
            return
        self.reply(213, str(len(self.server.files[path])))

    # ---------------------------------------------------------------- data connections
    def _drop_passive(self) -> None:
        if self.passive is not None:
            if not self.passive.listener.closed:
                self.passive.close(self.server.now)
            self.passive = None

    def _open_passive(self) -> TcpServer:
        self._drop_passive()
        self.passive_sock = None
        self.active = None
        listener = TcpServer(self.server.stack.tcp, 0, backlog=1)
        listener.on_accept = self._passive_accepted
        self.passive = listener
        return listener

    def _passive_accepted(self, sock: TcpSocket) -> None:
        self._drop_passive()
        if self.job is not None and self.job.sock is None and not self.job.done:
            self._attach(self.job, sock)
            self._kick(self.job)
        else:
            self.passive_sock = sock
            sock.on_event = lambda s, e: None

    def _cmd_epsv(self, arg: str | None) -> None:
        if not self.server.epsv:
            self.reply(502, "EPSV not implemented.")
            return
        listener = self._open_passive()
        port = listener.port
        if self.server.refuse_data:
            self._drop_passive()
        self.reply(229, f"Entering Extended Passive Mode (|||{port}|)")

    def _cmd_pasv(self, arg: str | None) -> None:
        listener = self._open_passive()
        port = listener.port
        if self.server.refuse_data:
            self._drop_passive()
        host = ",".join(str(b) for b in self.sock.local[0])
        self.reply(227, f"Entering Passive Mode ({host},{port >> 8},{port & 0xFF}).")

    def _cmd_port(self, arg: str | None) -> None:
        try:
            numbers = [int(n) for n in (arg or "").split(",")]
        except ValueError:
            numbers = []
        if len(numbers) != 6 or any(not 0 <= n <= 255 for n in numbers):
            self.reply(501, "Illegal PORT command.")
            return
        self._drop_passive()
        self.passive_sock = None
        self.active = (bytes(numbers[:4]), numbers[4] * 256 + numbers[5])
        self.reply(200, "PORT command successful.")

    def _cmd_retr(self, arg: str | None) -> None:
        path = self._path(arg)
        if path not in self.server.files:
            self.reply(550, "Failed to open file.")
            return
        local = self.server.files[path]
        self._start(_Job(self, "RETR", path, to_netascii(local) if self.type == "A" else local, upload=False))

    def _listing(self, base: str, names_only: bool) -> bytes:
        files, dirs = self.server.files, self.server.dirs
        if base in files:
            entries = [(base, False)]
        else:
            prefix = f"{base}/" if base else ""
            children = {p[len(prefix) :].split("/")[0] for p in (*files, *dirs) if p.startswith(prefix) and p != base}
            entries = [(f"{prefix}{c}", f"{prefix}{c}" in dirs) for c in sorted(children) if c]
        lines = []
        for path, is_dir in entries:
            name = path.split("/")[-1]
            if names_only:
                lines.append(name)
            else:
                size = 0 if is_dir else len(files[path])
                mode = "drwxr-xr-x" if is_dir else "-rw-r--r--"
                lines.append(f"{mode}    1 ftp      ftp      {size:>8} Jan 01 00:00 {name}")
        return "".join(f"{line}\r\n" for line in lines).encode()

    def _list_job(self, verb: str, arg: str | None) -> None:
        base = self._path(arg)
        if base not in self.server.files and base not in self.server.dirs:
            self.reply(550, "No such file or directory.")
            return
        self._start(_Job(self, verb, base, self._listing(base, names_only=verb == "NLST"), upload=False))

    def _cmd_list(self, arg: str | None) -> None:
        self._list_job("LIST", arg)

    def _cmd_nlst(self, arg: str | None) -> None:
        self._list_job("NLST", arg)

    def _cmd_stor(self, arg: str | None) -> None:
        if not arg:
            self.reply(501, "STOR needs a name.")
            return
        self._start(_Job(self, "STOR", self._path(arg), b"", upload=True))

    def _start(self, job: _Job) -> None:
        server = self.server
        if self.active is not None and server.refuse_data:
            self.active = None
            self.reply(425, "Failed to establish connection.")
            return
        if self.passive is None and self.passive_sock is None and self.active is None:
            self.reply(425, "Use PORT or PASV first.")
            return
        self.job = job
        server.jobs.append(job)
        if not server.skip_150:
            kind = "BINARY" if self.type == "I" else "ASCII"
            self.reply(150, f"Opening {kind} mode data connection for {job.name or 'file list'}.")
        if self.passive_sock is not None:
            sock, self.passive_sock = self.passive_sock, None
            self._attach(job, sock)
            self._kick(job)
        elif self.active is not None:
            host, port = self.active
            self.active = None
            sock = TcpSocket.connect(server.stack.tcp, host, port, server.now)
            self._attach(job, sock)

    def _kick(self, job: _Job) -> None:
        """A socket that connected before its job: catch up with what it already has."""
        sock = job.sock
        assert sock is not None
        if not job.upload:
            self._pump(job)
            return
        if sock.readable:
            self._read_upload(job)
        if not job.done and sock.state is TcpState.CLOSE_WAIT and not sock.readable:
            self._finish_upload(job)

    def _attach(self, job: _Job, sock: TcpSocket) -> None:
        job.sock = sock
        sock.on_event = lambda s, event: self._data_event(job, s, event)

    def _data_event(self, job: _Job, sock: TcpSocket, event: TcpEvent) -> None:
        if job.done:
            return
        if isinstance(event, ConnectionFailed):
            job.done = True
            if self.job is job:
                self.job = None
                self.reply(426, "Connection closed; transfer aborted.")
            return
        if job.upload:
            if isinstance(event, DataAvailable):
                self._read_upload(job)
            elif isinstance(event, PeerClosed):
                self._read_upload(job, everything=True)
                if not job.done and not sock.readable:
                    self._finish_upload(job)
        else:
            self._pump(job)

    # ---------------------------------------------------------------- moving data
    def _limit(self) -> int | None:
        limits = [n for n in (self.server.abort_after, self.server.close_control_after) if n is not None]
        return min(limits) if limits else None

    def _pump(self, job: _Job) -> None:
        """Send download octets as the socket takes them."""
        sock = job.sock
        if sock is None or job.done or job.upload or sock.state not in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
            return
        limit = self._limit()
        end = len(job.payload) if limit is None or limit >= len(job.payload) else limit
        while job.offset < end:
            taken = sock.send(job.payload[job.offset : end])
            if taken == 0:
                return
            job.offset += taken
        if end < len(job.payload):
            self._partial(job)
            return
        job.done = True
        sock.close(self.server.now)
        self.job = None
        self.server.completed.append((job.verb, job.name))
        if "226" not in self.server.silent:
            self.reply(226, "Transfer complete.")

    def _read_upload(self, job: _Job, everything: bool = False) -> None:
        sock = job.sock
        assert sock is not None
        chunk = self.server.read_chunk
        job.received += sock.recv(-1 if everything or chunk is None else chunk)
        limit = self._limit()
        if limit is not None and len(job.received) >= limit:
            self._partial(job)

    def _finish_upload(self, job: _Job) -> None:
        job.done = True
        wire = bytes(job.received)
        self.server.uploads_wire[job.name] = wire
        self.server.files[job.name] = from_netascii(wire) if self.type == "A" else wire
        assert job.sock is not None
        job.sock.close(self.server.now)
        self.job = None
        self.server.completed.append((job.verb, job.name))
        if "226" not in self.server.silent:
            self.reply(226, "Transfer complete.")

    def _partial(self, job: _Job) -> None:
        """A fault after part of the data (see ``abort_after`` and ``close_control_after``)."""
        server = self.server
        if job.partial_done:
            return
        job.partial_done = True
        if server.close_control_after is not None and (
            server.abort_after is None or server.close_control_after <= server.abort_after
        ):
            self.close()  # the data connection is left as it is
            return
        job.done = True
        self.job = None
        assert job.sock is not None
        if job.upload:
            job.sock.abort(server.now)
        else:
            job.sock.close(server.now)
        if "426" not in server.silent:
            self.reply(426, "Connection closed; transfer aborted.")

    def tick(self) -> None:
        """A slow reader's millisecond: read a little more of an upload."""
        job = self.job
        if job is None or not job.upload or job.sock is None or job.done:
            return
        self._read_upload(job)
        if not job.done and job.sock.state is TcpState.CLOSE_WAIT and not job.sock.readable:
            self._finish_upload(job)

    def wants_tick(self) -> bool:
        job = self.job
        return (
            self.server.read_chunk is not None
            and job is not None
            and job.upload
            and job.sock is not None
            and not job.done
            and (job.sock.readable > 0 or job.sock.state is TcpState.CLOSE_WAIT)
        )


class FtpServer:
    """The scripted server (see the module docstring)."""

    def __init__(
        self,
        stack: Stack,
        *,
        port: int = 21,
        users: dict[str, str] | None = None,
        files: dict[str, bytes] | None = None,
        dirs: set[str] | None = None,
        now: float = 0.0,
    ) -> None:
        self.stack = stack
        self.now = now
        self.users = {"alice": "secret"} if users is None else dict(users)
        self.files: dict[str, bytes] = dict(files or {})
        self.dirs: set[str] = {""} | set(dirs or ())
        self.banner: tuple[str, ...] = BANNER
        # fault switches
        self.refuse_login = False
        self.require_account: str | None = None
        self.close_control_after: int | None = None
        self.abort_after: int | None = None
        self.refuse_data = False
        self.silent: set[str] = set()
        self.hangup: set[str] = set()
        self.garbage: dict[str, bytes] = {}
        self.skip_150 = False
        self.epsv = True
        self.read_chunk: int | None = None
        # records
        self.commands: list[tuple[str, str | None]] = []
        self.uploads_wire: dict[str, bytes] = {}
        self.completed: list[tuple[str, str]] = []
        self.jobs: list[_Job] = []
        self.controls: list[_Control] = []
        self._tick_at: float | None = None
        self.listener = TcpServer(stack.tcp, port)
        self.listener.on_accept = self._accept

    def _accept(self, sock: TcpSocket) -> None:
        self.controls.append(_Control(self, sock))

    def verbs(self) -> list[str]:
        return [verb for verb, _ in self.commands]

    # ---------------------------------------------------------------- App
    def poll(self, now: float) -> None:
        self.now = now

    def next_deadline(self) -> float | None:
        if not any(control.wants_tick() for control in self.controls):
            self._tick_at = None
            return None
        if self._tick_at is None:
            self._tick_at = self.now + 0.001
        return self._tick_at

    def on_timer(self, now: float) -> None:
        self.now = now
        self._tick_at = None
        for control in self.controls:
            if control.wants_tick():
                control.tick()
