"""FtpSession against the scripted server (tests/helpers/ftp_server.py) in virtual time.

The client runs on stack A (10.0.0.1), the server on stack B (10.0.0.2) of ``tcp_pair()``,
joined by a wire with 1 ms latency.  :class:`Rig` moves the datagrams and keeps the session,
the server and the test's readers and writers current at every virtual instant, so nothing
here sleeps.  Downloads are read and uploads written in small chunks on a millisecond
tick (the data sockets fill up and back-pressure does the pacing); payloads are checked
octet for octet (SHA-256 for the large ones).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from tests.helpers.ftp_server import BANNER, FEAT_LINES, HELP_LINES, FtpServer, Rig, to_netascii
from tests.unit.tcp.helpers import tcp_pair
from wipstack.apps.ftp import (
    FtpError,
    FtpErrorKind,
    FtpSession,
    LoggedIn,
    SessionClosed,
    SessionState,
    Transfer,
    TransferEvent,
    TransferState,
)
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.state import TcpState
from wipstack.wire.ftp import FtpReply

K = FtpErrorKind
TIMEOUT = 10.0
ALL_BYTES = bytes(range(256)) * 64  # every octet value, 16 KiB
MEGABYTE = random.Random(959).randbytes(1_000_000)
TEXT = b"first line\nsecond line\n\nfourth line, then an empty one\n" * 200 + b"no newline at the end"

MODES = {
    "epsv": {"passive": True},
    "pasv": {"passive": True},  # with the server's EPSV switched off
    "active": {"passive": False},
}


def sha(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- test apps


class Ticker:
    """An app that acts every ``period`` seconds of virtual time while ``active()``."""

    period = 0.001

    def __init__(self) -> None:
        self.now = 0.0
        self._at: float | None = None

    def active(self) -> bool:
        raise NotImplementedError

    def act(self) -> None:
        raise NotImplementedError

    def poll(self, now: float) -> None:
        self.now = now

    def next_deadline(self) -> float | None:
        if not self.active():
            self._at = None
            return None
        if self._at is None:
            self._at = self.now + self.period
        return self._at

    def on_timer(self, now: float) -> None:
        self.now = now
        self._at = None
        if self.active():
            self.act()


class Reader(Ticker):
    """Reads a download, at most ``chunk`` octets per tick (``chunk`` may be a callable)."""

    def __init__(self, transfer: Transfer, chunk: int | Callable[[], int] = 4096) -> None:
        super().__init__()
        self.transfer = transfer
        self.chunk = chunk
        self.data = bytearray()
        self.most_waiting = 0  # the largest backlog seen in the data socket

    def active(self) -> bool:
        return not self.transfer.done

    def act(self) -> None:
        n = self.chunk() if callable(self.chunk) else self.chunk
        self.most_waiting = max(self.most_waiting, self.transfer.readable())
        self.data += self.transfer.recv(n)


class Writer(Ticker):
    """Writes an upload, offering at most ``chunk`` octets per tick, then ``finish()``."""

    def __init__(self, transfer: Transfer, data: bytes, chunk: int | Callable[[], int] = 4096, *, finish: bool = True):
        super().__init__()
        self.transfer = transfer
        self.payload = data
        self.chunk = chunk
        self.offset = 0
        self.finish = finish
        self.finished = False
        self.refused = 0  # offers that took nothing

    def active(self) -> bool:
        return not self.transfer.done and not self.finished

    def act(self) -> None:
        if self.offset < len(self.payload):
            n = self.chunk() if callable(self.chunk) else self.chunk
            taken = self.transfer.send(self.payload[self.offset : self.offset + n])
            self.refused += taken == 0
            self.offset += taken
        if self.offset >= len(self.payload) and self.finish:
            self.transfer.finish()
            self.finished = True


# ---------------------------------------------------------------------------- environment


class Env:
    """Client session on A, scripted server on B, and the loop."""

    def __init__(
        self,
        files: dict[str, bytes] | None = None,
        *,
        mode: str = "epsv",
        latency: float = 0.001,
        server_setup: Callable[[FtpServer], None] | None = None,
        callback: bool = True,
        **session: object,
    ) -> None:
        self.net, self.a, self.b = tcp_pair(latency=latency)
        self.server = FtpServer(self.b, files=files)
        if mode == "pasv":
            self.server.epsv = False
        if server_setup is not None:
            server_setup(self.server)
        self.rig = Rig(self.net, [self.server])
        self.events: list[object] = []
        options: dict[str, object] = {"user": "alice", "password": "secret", "timeout": TIMEOUT}
        options.update(MODES[mode])
        options.update(session)
        self.session = FtpSession(
            self.a,
            "10.0.0.2",
            now=self.net.now,
            on_event=(lambda s, e: self.events.append(e)) if callback else None,
            **options,  # type: ignore[arg-type]
        )
        self.rig.add(self.session)

    @property
    def now(self) -> float:
        return self.net.now

    def run(self, condition: Callable[[], bool], limit: float = 120.0) -> bool:
        """Run while ``condition()``; True when it stopped holding within ``limit`` seconds."""
        return self.rig.run_while(condition, limit=limit)

    def login(self) -> None:
        assert self.run(lambda: self.session.state in (SessionState.CONNECTING, SessionState.LOGGING_IN), 5)
        assert self.session.state is SessionState.READY, self.session.error

    def wait(self, transfer: Transfer, limit: float = 120.0) -> None:
        assert self.run(lambda: not transfer.done, limit), f"transfer still {transfer.state}"

    def get(self, name: str, chunk: int | Callable[[], int] = 4096, limit: float = 300.0) -> tuple[Transfer, bytes]:
        transfer = self.session.retrieve(name)
        reader = Reader(transfer, chunk)
        self.rig.add(reader)
        self.last_reader = reader
        self.wait(transfer, limit)
        return transfer, bytes(reader.data)

    def put(self, name: str, data: bytes, chunk: int | Callable[[], int] = 4096, limit: float = 300.0) -> Transfer:
        transfer = self.session.store(name)
        self.rig.add(Writer(transfer, data, chunk))
        self.wait(transfer, limit)
        return transfer

    def listing(self, path: str | None = None, names_only: bool = False) -> tuple[Transfer, bytes]:
        transfer = self.session.listing(path, names_only=names_only)
        reader = Reader(transfer, 7)
        self.rig.add(reader)
        self.wait(transfer)
        return transfer, bytes(reader.data)

    def command(
        self, verb: str, argument: str | None = None, limit: float = 30.0
    ) -> tuple[FtpReply | None, FtpError | None]:
        results: list[tuple[FtpReply | None, FtpError | None]] = []
        self.session.command(verb, argument, lambda reply, error: results.append((reply, error)))
        assert self.run(lambda: not results, limit), f"no answer to {verb}"
        assert len(results) == 1
        return results[0]

    def closed_events(self) -> list[SessionClosed]:
        return [e for e in self.events if isinstance(e, SessionClosed)]

    def client_connections(self) -> list[TcpConnection]:
        return self.a.tcp.connections

    def assert_usable(self) -> None:
        """The session still answers: a PWD gets its own 257."""
        assert self.session.state is SessionState.READY
        reply, error = self.command("PWD")
        assert error is None and reply is not None and reply.code == 257, (reply, error)


def env_logged_in(files: dict[str, bytes] | None = None, **kw: object) -> Env:
    env = Env(files, **kw)  # type: ignore[arg-type]
    env.login()
    return env


# ============================================================================ login


def test_login_with_password_and_multiline_banner() -> None:
    env = Env()
    env.login()
    assert env.events == [LoggedIn()]
    assert env.session.welcome is not None
    assert env.session.welcome.code == 220
    assert env.session.welcome.lines == (BANNER[0], BANNER[1], "an inner line with our code and a dash", BANNER[-1])
    assert env.server.commands == [("USER", "alice"), ("PASS", "secret")]
    assert env.session.is_ready
    assert env.session.next_deadline() is None  # idle: nothing to time out


def test_events_without_callback_come_from_next_event() -> None:
    env = Env(callback=False)
    env.login()
    assert env.session.next_event() == LoggedIn()
    assert env.session.next_event() is None


@pytest.mark.parametrize(
    ("setup", "user", "password"),
    [
        (None, "alice", "wrong"),
        (None, "mallory", "secret"),
        (lambda s: setattr(s, "refuse_login", True), "alice", "secret"),
    ],
    ids=["wrong-password", "unknown-user", "server-refuses"],
)
def test_login_refused(setup: Callable[[FtpServer], None] | None, user: str, password: str) -> None:
    env = Env(server_setup=setup, user=user, password=password)
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    assert env.session.state is SessionState.CLOSED
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.LOGIN
    assert closed.error.reply is not None and closed.error.reply.code == 530
    assert env.session.error is closed.error
    assert LoggedIn() not in env.events
    env.run(lambda: not env.server.controls[0].closed, 5)
    assert env.server.controls[0].closed  # the client let go of the control connection
    with pytest.raises(FtpError) as info:
        env.session.retrieve("x")
    assert info.value.kind is K.CLOSED


def test_login_with_account() -> None:
    env = Env(server_setup=lambda s: setattr(s, "require_account", "proj-7"), account="proj-7")
    env.login()
    assert env.server.verbs() == ["USER", "PASS", "ACCT"]
    assert env.server.commands[-1] == ("ACCT", "proj-7")
    env.assert_usable()


@pytest.mark.parametrize(("account", "code"), [(None, 332), ("wrong", 530)])
def test_login_account_missing_or_wrong(account: str | None, code: int) -> None:
    env = Env(server_setup=lambda s: setattr(s, "require_account", "proj-7"), account=account)
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.LOGIN
    assert closed.error.reply is not None and closed.error.reply.code == code


def test_greeting_garbage_is_a_protocol_error() -> None:
    env = Env(server_setup=lambda s: s.garbage.update(GREETING=b"SSH-2.0-OpenSSH_9.6\r\n"))
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.PROTOCOL


def test_greeting_other_than_220_fails_to_connect() -> None:
    env = Env(server_setup=lambda s: s.garbage.update(GREETING=b"421 Too many users\r\n"))
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.CONNECT
    assert closed.error.reply is not None and closed.error.reply.code == 421


def test_no_server_is_a_connect_error() -> None:
    env = Env(port=2121)  # nothing listens: RST to the SYN
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.CONNECT


def test_garbage_reply_during_login_is_a_protocol_error() -> None:
    env = Env(server_setup=lambda s: s.garbage.update(USER=b"this is no reply\r\n"))
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.PROTOCOL


def test_server_hangs_up_during_login() -> None:
    env = Env(server_setup=lambda s: s.hangup.add("PASS"))
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.CLOSED


# ============================================================================ passive, PASV fallback, active


def test_passive_uses_epsv() -> None:
    env = env_logged_in({"f": b"abc"})
    transfer, data = env.get("f")
    assert transfer.ok and data == b"abc"
    assert env.server.verbs()[2:] == ["TYPE", "EPSV", "RETR"]
    assert env.server.commands[2] == ("TYPE", "I")


def test_pasv_fallback_once_epsv_is_refused() -> None:
    env = env_logged_in({"f": b"abc", "g": b"defg"}, mode="pasv")
    t1, d1 = env.get("f")
    t2, d2 = env.get("g")
    assert t1.ok and t2.ok and d1 == b"abc" and d2 == b"defg"
    # EPSV once (502), then PASV for this and every later transfer
    assert env.server.verbs()[2:] == ["TYPE", "EPSV", "PASV", "RETR", "PASV", "RETR"]


def test_active_mode_sends_port_with_our_address() -> None:
    env = env_logged_in({"f": b"abc"}, mode="active")
    transfer, data = env.get("f")
    assert transfer.ok and data == b"abc"
    assert env.server.verbs()[2:] == ["TYPE", "PORT", "RETR"]
    argument = env.server.commands[3][1]
    assert argument is not None
    fields = [int(n) for n in argument.split(",")]
    assert fields[:4] == [10, 0, 0, 1]
    assert 1 <= fields[4] * 256 + fields[5] <= 65535
    # the listener is gone after the transfer
    env.rig.run_for(1)
    assert transfer.listener is None


# ============================================================================ RETR and STOR


SIZES = {"0B": b"", "1B": b"\xa5", "all-octets": ALL_BYTES, "1MB": MEGABYTE}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name", list(SIZES))
def test_retrieve(mode: str, name: str) -> None:
    payload = SIZES[name]
    env = env_logged_in({"file.bin": payload}, mode=mode)
    rng = random.Random(len(payload))
    chunk = (lambda: rng.randint(1, 8192)) if len(payload) > 100_000 else (lambda: rng.randint(1, 97))
    transfer, data = env.get("file.bin", chunk)
    assert transfer.ok, transfer.error
    assert transfer.state is TransferState.DONE and transfer.error is None
    assert len(data) == len(payload) and sha(data) == sha(payload)
    assert transfer.bytes == len(payload)
    assert transfer.reply is not None and transfer.reply.code == 226
    assert TransferEvent(transfer) in env.events
    if len(payload) > 100_000:
        assert env.last_reader.most_waiting > 64 * 1024  # the reader was the bottleneck: data waited in TCP
    assert env.session.state is SessionState.READY
    env.assert_usable()


STORE_CASES = [pytest.param(name, mode) for name in SIZES for mode in MODES]


@pytest.mark.parametrize(("name", "mode"), STORE_CASES)
def test_store(name: str, mode: str) -> None:
    payload = SIZES[name]
    env = env_logged_in(mode=mode)
    rng = random.Random(len(payload) + 1)
    chunk = (lambda: rng.randint(1, 8192)) if len(payload) > 100_000 else (lambda: rng.randint(1, 97))
    transfer = env.put("up.bin", payload, chunk)
    assert transfer.ok, transfer.error
    assert transfer.reply is not None and transfer.reply.code == 226
    assert transfer.bytes == len(payload)
    stored = env.server.files["up.bin"]
    assert len(stored) == len(payload) and sha(stored) == sha(payload)
    env.assert_usable()


def test_slow_server_reader_pushes_back_on_the_upload() -> None:
    """The server reads 512 octets per ms: the client's send buffer fills and send() takes less."""
    payload = random.Random(5).randbytes(600_000)
    env = env_logged_in(server_setup=lambda s: setattr(s, "read_chunk", 512))
    transfer = env.session.store("slow.bin")
    writer = Writer(transfer, payload, 64 * 1024)
    env.rig.add(writer)
    env.wait(transfer, 600)
    assert transfer.ok, transfer.error
    assert writer.refused > 0  # back-pressure: some offers took nothing
    assert sha(env.server.files["slow.bin"]) == sha(payload)


def test_download_waits_for_the_reader() -> None:
    """Unread data stays in the socket: the transfer is not done until the user read it all."""
    payload = random.Random(6).randbytes(100_000)
    env = env_logged_in({"f": payload})
    transfer = env.session.retrieve("f")
    env.run(lambda: not transfer.confirmed or not transfer.data_ended, 30)
    assert transfer.confirmed and transfer.data_ended
    env.rig.run_for(1)
    assert not transfer.done and transfer.readable() > 0
    data = bytearray()
    while transfer.readable():
        data += transfer.recv(1000)
    assert transfer.ok
    assert bytes(data) == payload


def test_slow_reader_of_a_complete_download_does_not_time_out() -> None:
    payload = random.Random(18).randbytes(20_000)  # fits in the receive buffer: FIN and 226 come at once
    env = env_logged_in({"f": payload})
    transfer, data = env.get("f", 1, limit=60)  # one octet per ms: 20 s > TIMEOUT
    assert transfer.ok, transfer.error
    assert data == payload


# ============================================================================ TYPE A


def test_type_a_download_converts_crlf_even_across_chunk_boundaries() -> None:
    text = TEXT + b"\na bare CR\rstays\n"
    env = env_logged_in({"t.txt": text}, binary=False, timeout=120.0)  # 1 octet per ms is slow
    for chunk in (1, 2, 3):
        transfer, data = env.get("t.txt", chunk)
        assert transfer.ok, transfer.error
        assert data == text
        assert transfer.bytes == len(to_netascii(text))  # CRLF on the wire
    assert ("TYPE", "A") in env.server.commands


def test_type_a_download_random_chunks() -> None:
    rng = random.Random(11)
    text = bytes(rng.choice(b"ab\n\n\r") for _ in range(20_000)) + b"\n"
    env = env_logged_in({"t.txt": text}, binary=False, timeout=120.0)
    transfer, data = env.get("t.txt", lambda: rng.randint(1, 5))
    assert transfer.ok
    # the server sends each LF as CRLF and leaves bare CRs alone (a local CR LF goes out as CR CR LF);
    # the client undoes exactly that, whatever the chunk boundaries
    assert transfer.bytes == len(to_netascii(text))
    assert data == text


def test_type_a_download_keeps_a_final_bare_cr() -> None:
    env = env_logged_in({"t.txt": b"last\r"}, binary=False)
    transfer, data = env.get("t.txt", 1)
    assert transfer.ok
    assert data == b"last\r"


def test_type_a_upload_converts_lf_to_crlf() -> None:
    env = env_logged_in(binary=False, timeout=120.0)
    for chunk in (1, 2, 5, 4096):
        transfer = env.put(f"t{chunk}.txt", TEXT, chunk)
        assert transfer.ok, transfer.error
        assert env.server.uploads_wire[f"t{chunk}.txt"] == to_netascii(TEXT)
        assert env.server.files[f"t{chunk}.txt"] == TEXT
    assert ("TYPE", "A") in env.server.commands


def test_type_a_upload_of_local_crlf_whole() -> None:
    env = env_logged_in(binary=False)
    transfer = env.put("dos.txt", b"one\r\ntwo\r\n", 4096)
    assert transfer.ok
    assert env.server.uploads_wire["dos.txt"] == b"one\r\ntwo\r\n"  # CRLF is not doubled


def test_type_a_upload_of_local_crlf_split_at_the_cr() -> None:
    env = env_logged_in(binary=False)
    transfer = env.put("dos.txt", b"one\r\ntwo\r\n", 4)  # chunks b"one\r", b"\ntwo", b"\r\n"
    assert transfer.ok
    assert env.server.uploads_wire["dos.txt"] == b"one\r\ntwo\r\n"


def test_type_a_upload_offering_send_space() -> None:
    text = b"x\n" * 100_000  # 200 kB: 300 kB as CRLF, more than the 256 KiB send buffer
    env = env_logged_in(binary=False)
    transfer = env.session.store("lines.txt")

    class SpaceWriter(Writer):
        def act(self) -> None:
            if self.offset < len(self.payload):
                room = max(1, self.transfer.send_space)
                self.offset += self.transfer.send(self.payload[self.offset : self.offset + room])
            if self.offset >= len(self.payload):
                self.transfer.finish()
                self.finished = True

    writer = SpaceWriter(transfer, text)
    writer.period = 0.05
    env.rig.add(writer)
    env.run(lambda: not transfer.done, 20)
    assert transfer.ok, (transfer.state, transfer.bytes, writer.offset, transfer.send_space)
    assert env.server.files["lines.txt"] == text


# ============================================================================ LIST and NLST


LIST_FILES = {"a.bin": b"12345", "b.txt": b"x", "sub/c": b"cc"}


def test_list_and_nlst_in_a_text_session() -> None:
    env = env_logged_in(LIST_FILES, server_setup=lambda s: s.dirs.add("sub"), binary=False)
    t1, names = env.listing(names_only=True)
    assert t1.ok
    assert names == b"a.bin\nb.txt\nsub\n"
    t2, listing = env.listing()
    assert t2.ok
    lines = listing.decode().split("\n")
    assert len(lines) == 4 and lines[-1] == "" and "\r" not in listing.decode()
    assert lines[0].startswith("-rw-r--r--") and lines[0].split()[4] == "5" and lines[0].endswith(" a.bin")
    assert lines[2].startswith("d") and lines[2].endswith(" sub")
    t3, sub = env.listing("sub", names_only=True)
    assert t3.ok and sub == b"c\n"
    assert [arg for verb, arg in env.server.commands if verb == "TYPE"] == ["A"]
    assert env.server.verbs().count("NLST") == 2 and env.server.verbs().count("LIST") == 1


def test_list_in_a_binary_session_switches_types() -> None:
    env = env_logged_in(LIST_FILES, server_setup=lambda s: s.dirs.add("sub"))
    t1, names = env.listing(names_only=True)
    assert t1.ok
    assert names.splitlines() == [b"a.bin", b"b.txt", b"sub"]
    t2, data = env.get("a.bin")
    assert t2.ok and data == b"12345"
    t3, _ = env.listing()
    assert t3.ok
    assert [arg for verb, arg in env.server.commands if verb == "TYPE"] == ["A", "I", "A"]


def test_list_in_a_binary_session_converts_line_ends() -> None:
    env = env_logged_in(LIST_FILES, server_setup=lambda s: s.dirs.add("sub"))
    t1, names = env.listing(names_only=True)
    assert t1.ok
    assert names == b"a.bin\nb.txt\nsub\n"


def test_list_of_a_missing_directory_is_refused() -> None:
    env = env_logged_in()
    transfer, data = env.listing("nowhere")
    assert not transfer.ok and data == b""
    assert transfer.error is not None and transfer.error.kind is K.REFUSED
    assert transfer.error.reply is not None and transfer.error.reply.code == 550
    env.assert_usable()


# ============================================================================ plain commands


def test_size_cwd_pwd_dele_mkd() -> None:
    env = env_logged_in({"a.bin": ALL_BYTES, "docs/readme": b"hi"}, server_setup=lambda s: s.dirs.add("docs"))
    reply, error = env.command("SIZE", "a.bin")
    assert error is None and reply is not None and (reply.code, reply.text) == (213, str(len(ALL_BYTES)))
    reply, error = env.command("SIZE", "missing")
    assert error is None and reply is not None and reply.code == 550
    reply, _ = env.command("PWD")
    assert reply is not None and (reply.code, reply.text) == (257, '"/" is the current directory')
    reply, _ = env.command("CWD", "docs")
    assert reply is not None and reply.code == 250
    reply, _ = env.command("PWD")
    assert reply is not None and reply.text == '"/docs" is the current directory'
    reply, _ = env.command("CWD", "nowhere")
    assert reply is not None and reply.code == 550
    reply, _ = env.command("MKD", "new")
    assert reply is not None and reply.code == 257 and "docs/new" in env.server.dirs
    reply, _ = env.command("MKD", "new")
    assert reply is not None and reply.code == 550
    reply, _ = env.command("DELE", "readme")
    assert reply is not None and reply.code == 250 and "docs/readme" not in env.server.files
    reply, _ = env.command("DELE", "readme")
    assert reply is not None and reply.code == 550
    transfer, data = env.get("/a.bin")
    assert transfer.ok and data == ALL_BYTES
    assert env.session.state is SessionState.READY


def test_multiline_replies_to_commands() -> None:
    env = env_logged_in()
    reply, error = env.command("HELP")
    assert error is None and reply is not None
    assert reply.code == 214
    assert reply.lines == (
        HELP_LINES[0], HELP_LINES[1], "an inner line with the same code and a dash", HELP_LINES[3], HELP_LINES[4]
    )  # fmt: skip
    reply, _ = env.command("FEAT")
    assert reply is not None and reply.code == 211 and reply.lines == FEAT_LINES
    reply, _ = env.command("STAT")
    assert reply is not None and reply.code == 211 and len(reply.lines) == 4
    reply, _ = env.command("XYZZY")
    assert reply is not None and reply.code == 502
    env.assert_usable()


def test_command_with_crlf_is_refused_and_the_session_stays_usable() -> None:
    env = env_logged_in({"x": b"x"})
    with pytest.raises(ValueError):
        env.session.command("CWD", "a\r\nDELE x", lambda reply, error: None)
    assert "DELE" not in env.server.verbs()
    env.assert_usable()


@pytest.mark.parametrize("mode", ["epsv", "active"])
def test_transfer_name_with_crlf_is_refused(mode: str) -> None:
    env = env_logged_in({"x": b"x"}, mode=mode)
    transfer: Transfer | None
    try:
        transfer = env.session.retrieve("x\r\nDELE x")
    except ValueError:
        transfer = None  # refused up front: fine
    env.rig.run_for(1)  # must not raise
    if transfer is not None:
        assert transfer.done and not transfer.ok
    assert "DELE" not in env.server.verbs() and "x" in env.server.files
    env.assert_usable()


def test_quit() -> None:
    env = env_logged_in()
    env.session.quit()
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    assert env.server.verbs()[-1] == "QUIT"
    [closed] = env.closed_events()
    assert closed.error is None and env.session.error is None
    env.session.quit()  # a second quit does nothing
    env.rig.run_for(5)
    assert env.server.verbs().count("QUIT") == 1
    assert env.server.controls[0].closed


# ============================================================================ queued requests


def test_requests_queued_before_login_run_in_order() -> None:
    env = Env({"a": b"A" * 3000, "b": b"B"})
    s = env.session
    order: list[str] = []
    s.command("PWD", None, lambda r, e: order.append(f"PWD {r.code if r else e}"))
    t1 = s.retrieve("a")
    r1 = Reader(t1, 100)
    env.rig.add(r1)
    s.command("SIZE", "b", lambda r, e: order.append(f"SIZE {r.text if r else e}"))
    t2 = s.store("c")
    env.rig.add(Writer(t2, b"uploaded", 3))
    t3 = s.listing(names_only=True)
    r3 = Reader(t3, 5)
    env.rig.add(r3)
    s.command("NOOP", None, lambda r, e: order.append(f"NOOP {r.code if r else e}"))
    assert not s.is_ready
    env.run(lambda: not (t3.done and len(order) == 3), 60)
    assert order == ["PWD 257", "SIZE 1", "NOOP 200"]
    assert t1.ok and bytes(r1.data) == b"A" * 3000
    assert t2.ok and env.server.files["c"] == b"uploaded"
    assert t3.ok and bytes(r3.data).splitlines() == [b"a", b"b", b"c"]
    verbs = [v for v in env.server.verbs() if v not in ("TYPE", "EPSV")]
    assert verbs == ["USER", "PASS", "PWD", "RETR", "SIZE", "STOR", "NLST", "NOOP"]
    assert s.is_ready


# ============================================================================ fault switches


def test_missing_file_is_refused_and_the_session_stays_usable() -> None:
    env = env_logged_in({"there": b"yes"})
    transfer, data = env.get("not-there")
    assert not transfer.ok and data == b""
    assert transfer.error is not None and transfer.error.kind is K.REFUSED
    assert transfer.error.reply is not None and transfer.error.reply.code == 550
    assert transfer.reply is None
    t2, d2 = env.get("there")
    assert t2.ok and d2 == b"yes"
    env.assert_usable()


@pytest.mark.parametrize("mode", ["epsv", "active"])
def test_control_closed_mid_download(mode: str) -> None:
    payload = random.Random(7).randbytes(200_000)
    env = env_logged_in({"f": payload}, mode=mode, server_setup=lambda s: setattr(s, "close_control_after", 50_000))
    transfer, data = env.get("f", 1000)
    assert not transfer.ok
    assert transfer.error is not None and transfer.error.kind is K.CLOSED
    assert len(data) <= 50_000 and payload.startswith(data)
    assert env.session.state is SessionState.CLOSED
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.CLOSED
    env.rig.run_for(5)
    assert all(
        conn.state in (TcpState.CLOSED, TcpState.TIME_WAIT, TcpState.LAST_ACK) for conn in env.client_connections()
    )


def test_control_closed_mid_upload() -> None:
    payload = random.Random(8).randbytes(200_000)
    env = env_logged_in(server_setup=lambda s: setattr(s, "close_control_after", 50_000))
    transfer = env.put("f", payload, 1000)
    assert not transfer.ok
    assert transfer.error is not None and transfer.error.kind is K.CLOSED
    assert env.session.state is SessionState.CLOSED
    assert "f" not in env.server.files


@pytest.mark.parametrize("mode", ["epsv", "pasv", "active"])
def test_426_after_partial_download(mode: str) -> None:
    payload = random.Random(9).randbytes(100_000)
    env = env_logged_in({"f": payload}, mode=mode, server_setup=lambda s: setattr(s, "abort_after", 30_000))
    transfer, data = env.get("f", 500)
    assert not transfer.ok  # the data connection ended (FIN), but the server said 426
    assert transfer.error is not None and transfer.error.kind is K.DATA
    assert transfer.error.reply is not None and transfer.error.reply.code == 426
    assert len(data) <= 30_000 and payload.startswith(data)
    env.server.abort_after = None
    env.assert_usable()
    t2, d2 = env.get("f")
    assert t2.ok and d2 == payload


def test_426_after_partial_download_read_to_the_end_first() -> None:
    """The user read every octet up to the FIN before the 426 came: still no success."""
    payload = random.Random(10).randbytes(20_000)

    def setup(s: FtpServer) -> None:
        s.abort_after = 5000
        s.silent.add("426")  # sent by hand below

    env = env_logged_in({"f": payload}, server_setup=setup, timeout=120.0)
    transfer = env.session.retrieve("f")
    data = bytearray()
    env.run(lambda: not transfer.data_ended, 30)
    while transfer.readable():
        data += transfer.recv(100)
    env.rig.run_for(1)
    assert bytes(data) == payload[:5000]
    assert transfer.data_ended and not transfer.confirmed
    assert not transfer.done and not transfer.ok
    env.server.controls[0].reply(426, "Connection closed; transfer aborted.")
    env.wait(transfer)
    assert not transfer.ok and transfer.state is TransferState.FAILED
    assert transfer.error is not None and transfer.error.kind is K.DATA
    assert transfer.error.reply is not None and transfer.error.reply.code == 426
    env.assert_usable()


def test_426_after_partial_upload() -> None:
    payload = random.Random(12).randbytes(100_000)
    env = env_logged_in(server_setup=lambda s: setattr(s, "abort_after", 30_000))
    transfer = env.put("f", payload, 1000)
    assert not transfer.ok
    assert transfer.error is not None and transfer.error.kind is K.DATA
    assert "f" not in env.server.files
    env.server.abort_after = None
    env.assert_usable()
    t2 = env.put("f", payload)
    assert t2.ok and env.server.files["f"] == payload


def test_server_ends_upload_data_connection_early() -> None:
    payload = random.Random(21).randbytes(300_000)
    env = env_logged_in()
    transfer = env.session.store("f")
    env.rig.add(Writer(transfer, payload, 1000))
    env.run(lambda: not env.server.jobs or len(env.server.jobs[0].received) < 20_000, 10)
    job = env.server.jobs[0]
    assert job.sock is not None
    job.sock.shutdown()  # FIN while the client is still sending
    env.rig.run_for(1)  # the client resets the data connection; the server answers 426 to that itself
    env.wait(transfer, 5)
    assert not transfer.ok
    assert transfer.error is not None and transfer.error.kind is K.DATA
    env.assert_usable()


@pytest.mark.parametrize("mode", ["epsv", "pasv"])
def test_refused_passive_data_connection(mode: str) -> None:
    env = env_logged_in({"f": b"data"}, mode=mode, server_setup=lambda s: setattr(s, "refuse_data", True))
    transfer, data = env.get("f")
    assert not transfer.ok and data == b""
    assert transfer.error is not None and transfer.error.kind is K.DATA
    assert "RETR" not in env.server.verbs()  # never sent: there was no data connection
    env.server.refuse_data = False
    env.assert_usable()
    t2, d2 = env.get("f")
    assert t2.ok and d2 == b"data"


def test_refused_active_data_connection() -> None:
    env = env_logged_in({"f": b"data"}, mode="active", server_setup=lambda s: setattr(s, "refuse_data", True))
    transfer, data = env.get("f")
    assert not transfer.ok and data == b""
    assert transfer.error is not None and transfer.error.kind is K.REFUSED  # a 4xx to RETR
    assert transfer.error.reply is not None and transfer.error.reply.code == 425
    env.rig.run_for(1)
    assert transfer.listener is None  # our PORT listener is closed
    env.server.refuse_data = False
    env.assert_usable()


@pytest.mark.parametrize("mode", ["epsv", "active"])
def test_skip_150_download(mode: str) -> None:
    env = env_logged_in({"f": ALL_BYTES}, mode=mode, server_setup=lambda s: setattr(s, "skip_150", True))
    transfer, data = env.get("f", 333)
    assert transfer.ok, transfer.error
    assert data == ALL_BYTES
    assert transfer.reply is not None and transfer.reply.code == 226
    env.assert_usable()


@pytest.mark.parametrize("mode", ["epsv", "active"])
def test_skip_150_upload(mode: str) -> None:
    env = env_logged_in(mode=mode, server_setup=lambda s: setattr(s, "skip_150", True))
    up = env.put("g", ALL_BYTES, 333)
    assert up.ok, up.error
    assert env.server.files["g"] == ALL_BYTES


def test_garbage_instead_of_transfer_reply_ends_the_session() -> None:
    env = env_logged_in({"f": b"data"}, server_setup=lambda s: s.garbage.update(RETR=b"\x00\xffgarbage\r\n"))
    transfer, _ = env.get("f")
    assert not transfer.ok
    assert transfer.error is not None and transfer.error.kind is K.PROTOCOL
    assert env.session.state is SessionState.CLOSED
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.PROTOCOL


def test_garbage_instead_of_command_reply_reports_protocol_error() -> None:
    env = env_logged_in(server_setup=lambda s: s.garbage.update(PWD=b"garbage\r\n"))
    reply, error = env.command("PWD")
    assert reply is None and error is not None and error.kind is K.PROTOCOL
    assert env.session.state is SessionState.CLOSED


@pytest.mark.parametrize(
    "answer",
    [b"229 Entering Extended Passive Mode (no port)\r\n", b"229 Extended Passive Mode (|||0|)\r\n"],
    ids=["no-port", "port-0"],
)
def test_broken_epsv_answer_fails_the_transfer_only(answer: bytes) -> None:
    env = env_logged_in({"f": b"data"}, server_setup=lambda s: s.garbage.update(EPSV=answer))
    transfer, _ = env.get("f")
    assert not transfer.ok
    assert transfer.error is not None and transfer.error.kind is K.PROTOCOL
    env.assert_usable()


def test_broken_pasv_answer_fails_the_transfer_only() -> None:
    def setup(s: FtpServer) -> None:
        s.epsv = False
        s.garbage["PASV"] = b"227 Entering Passive Mode (10,0,0,2,300,1)\r\n"

    env = env_logged_in({"f": b"data"}, server_setup=setup)
    transfer, _ = env.get("f")
    assert transfer.error is not None and transfer.error.kind is K.PROTOCOL
    env.assert_usable()


def test_epsv_refused_with_other_code_is_a_data_error() -> None:
    env = env_logged_in({"f": b"data"}, server_setup=lambda s: s.garbage.update(EPSV=b"425 Cannot open passive\r\n"))
    transfer, _ = env.get("f")
    assert transfer.error is not None and transfer.error.kind is K.DATA
    assert "PASV" not in env.server.verbs()
    env.assert_usable()


def test_type_refused_fails_the_transfer_only() -> None:
    env = env_logged_in({"f": b"data"}, server_setup=lambda s: s.garbage.update(TYPE=b"504 No binary here\r\n"))
    transfer, _ = env.get("f")
    assert transfer.error is not None and transfer.error.kind is K.REFUSED
    assert transfer.error.reply is not None and transfer.error.reply.code == 504
    env.assert_usable()


def test_421_while_idle_ends_the_session() -> None:
    env = env_logged_in()
    env.server.controls[0].send_raw(b"421 Timeout, closing control connection.\r\n")
    env.run(lambda: env.session.state is not SessionState.CLOSED, 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.CLOSED


# ============================================================================ timeouts


def test_no_greeting_times_out() -> None:
    env = Env(server_setup=lambda s: s.silent.add("GREETING"))
    env.rig.run_for(0.5)  # connected: the deadline counts from there
    deadline = env.session.next_deadline()
    assert deadline is not None and TIMEOUT <= deadline <= TIMEOUT + 0.5
    env.rig.run_until(deadline - 0.01)
    assert env.session.state is SessionState.CONNECTING
    env.run(lambda: env.session.state is not SessionState.CLOSED, TIMEOUT + 5)
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.TIMEOUT
    assert env.now == pytest.approx(deadline)


def test_on_timer_before_the_deadline_does_nothing() -> None:
    env = Env(server_setup=lambda s: s.silent.add("USER"))
    env.run(lambda: env.session.state is SessionState.CONNECTING, 5)
    deadline = env.session.next_deadline()
    assert deadline is not None
    env.session.on_timer(deadline - 0.5)
    assert env.session.state is SessionState.LOGGING_IN
    env.session.on_timer(deadline)
    assert env.session.state is SessionState.CLOSED  # type: ignore[comparison-overlap]
    assert env.session.error is not None and env.session.error.kind is K.TIMEOUT
    assert env.session.next_deadline() is None


def test_unanswered_transfer_command_times_out() -> None:
    env = env_logged_in({"f": b"data"}, server_setup=lambda s: s.silent.add("RETR"))
    transfer = env.session.retrieve("f")
    start = env.now
    env.wait(transfer, TIMEOUT + 5)
    assert transfer.error is not None and transfer.error.kind is K.TIMEOUT
    assert TIMEOUT <= env.now - start <= TIMEOUT + 1
    assert env.session.state is SessionState.CLOSED


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_missing_226_after_the_data_times_out(direction: str) -> None:
    env = env_logged_in({"f": ALL_BYTES}, server_setup=lambda s: s.silent.add("226"))
    if direction == "download":
        transfer = env.session.retrieve("f")
        reader = Reader(transfer, 4096)
        env.rig.add(reader)
        env.run(lambda: not (transfer.data_ended and len(reader.data) == len(ALL_BYTES)), 10)
    else:
        transfer = env.session.store("g")
        env.rig.add(Writer(transfer, ALL_BYTES, 4096))
        env.run(lambda: not (transfer.data_ended and env.server.files.get("g") == ALL_BYTES), 10)
    assert transfer.data_ended and not transfer.confirmed
    assert env.session.next_deadline() is not None
    env.wait(transfer, TIMEOUT * 3)
    assert not transfer.ok
    assert transfer.error is not None and transfer.error.kind is K.TIMEOUT


@pytest.mark.parametrize("how", ["timeout", "abort"])
def test_pending_command_gets_the_session_error(how: str) -> None:
    env = env_logged_in(server_setup=lambda s: s.silent.add("SIZE"))
    results: list[tuple[object, object]] = []
    env.session.command("SIZE", "f", lambda r, e: results.append((r, e)))
    env.rig.run_for(0.1)
    if how == "abort":
        env.session.abort()
    env.run(lambda: env.session.state is not SessionState.CLOSED, TIMEOUT + 5)
    env.rig.run_for(1)
    expected = K.TIMEOUT if how == "timeout" else K.ABORTED
    assert env.session.error is not None and env.session.error.kind is expected
    assert len(results) == 1
    reply, error = results[0]
    assert reply is None and isinstance(error, FtpError)
    assert error.kind is expected, error


@pytest.mark.parametrize("how", ["timeout", "abort", "protocol-error"])
def test_queued_transfer_fails_when_the_session_closes(how: str) -> None:
    def setup(s: FtpServer) -> None:
        s.silent.add("PWD")
        s.garbage["NOOP"] = b"no reply at all\r\n"

    env = env_logged_in({"f": b"data"}, server_setup=setup)
    env.session.command("NOOP" if how == "protocol-error" else "PWD", None, lambda r, e: None)
    transfer = env.session.retrieve("f")
    env.rig.run_for(0.1)
    if how == "abort":
        env.session.abort()
    env.run(lambda: env.session.state is not SessionState.CLOSED, TIMEOUT + 5)
    env.rig.run_for(1)
    assert env.session.state is SessionState.CLOSED
    assert transfer.done and not transfer.ok
    assert transfer.error is not None


def test_control_lost_mid_transfer_with_a_transfer_queued() -> None:
    payload = random.Random(19).randbytes(200_000)
    env = env_logged_in({"f": payload, "g": b"g"}, server_setup=lambda s: setattr(s, "close_control_after", 20_000))
    first = env.session.retrieve("f")
    env.rig.add(Reader(first, 1000))
    second = env.session.retrieve("g")
    env.run(lambda: env.session.state is not SessionState.CLOSED, 30)
    assert first.error is not None and first.error.kind is K.CLOSED
    assert second.done and not second.ok
    assert second.error is not None and second.error.kind is K.CLOSED


def test_control_lost_mid_transfer_with_a_command_queued() -> None:
    payload = random.Random(20).randbytes(200_000)
    env = env_logged_in({"f": payload}, server_setup=lambda s: setattr(s, "close_control_after", 20_000))
    first = env.session.retrieve("f")
    env.rig.add(Reader(first, 1000))
    results: list[tuple[FtpReply | None, FtpError | None]] = []
    env.session.command("NOOP", None, lambda r, e: results.append((r, e)))
    env.run(lambda: env.session.state is not SessionState.CLOSED, 30)
    env.rig.run_for(1)
    assert first.error is not None and first.error.kind is K.CLOSED
    [(reply, error)] = results
    assert reply is None and error is not None and error.kind is K.CLOSED


def test_quit_queued_behind_a_transfer() -> None:
    env = env_logged_in({"f": ALL_BYTES})
    transfer = env.session.retrieve("f")
    env.rig.add(Reader(transfer, 1000))
    env.session.quit()
    env.run(lambda: env.session.state is not SessionState.CLOSED, 30)
    assert transfer.ok
    assert env.server.verbs()[-2:] == ["RETR", "QUIT"]
    [closed] = env.closed_events()
    assert closed.error is None


# ============================================================================ aborts


def test_session_abort_mid_transfer() -> None:
    payload = random.Random(13).randbytes(300_000)
    env = env_logged_in({"f": payload})
    transfer = env.session.retrieve("f")
    reader = Reader(transfer, 1000)
    env.rig.add(reader)
    env.run(lambda: len(reader.data) < 10_000, 30)
    env.session.abort()
    assert transfer.error is not None and transfer.error.kind is K.ABORTED
    assert env.session.state is SessionState.CLOSED
    [closed] = env.closed_events()
    assert closed.error is not None and closed.error.kind is K.ABORTED
    env.rig.run_for(2)
    assert not transfer.ok


def test_transfer_abort_keeps_the_session() -> None:
    payload = random.Random(14).randbytes(300_000)
    env = env_logged_in({"f": payload})
    transfer = env.session.retrieve("f")
    reader = Reader(transfer, 1000)
    env.rig.add(reader)
    env.run(lambda: len(reader.data) < 10_000, 30)
    transfer.abort()
    assert transfer.state is TransferState.FAILED
    assert transfer.error is not None and transfer.error.kind is K.ABORTED
    env.rig.run_for(1)  # the server answers 426 to the reset RETR; that reply is skipped
    env.assert_usable()
    t2, d2 = env.get("f")
    assert t2.ok and d2 == payload


def test_transfer_abort_with_a_queued_command_keeps_replies_in_step() -> None:
    payload = random.Random(15).randbytes(300_000)
    env = env_logged_in({"f": payload})
    transfer = env.session.retrieve("f")
    reader = Reader(transfer, 1000)
    env.rig.add(reader)
    env.run(lambda: len(reader.data) < 10_000, 30)
    results: list[tuple[FtpReply | None, FtpError | None]] = []
    env.session.command("PWD", None, lambda r, e: results.append((r, e)))
    transfer.abort()
    env.run(lambda: not results, 10)
    [(reply, error)] = results
    assert error is None and reply is not None and reply.code == 257, reply


def test_abort_of_a_queued_transfer() -> None:
    payload = random.Random(16).randbytes(50_000)
    env = env_logged_in({"f": payload, "g": b"g"})
    first = env.session.retrieve("f")
    reader = Reader(first, 500)
    env.rig.add(reader)
    second = env.session.retrieve("g")
    env.run(lambda: len(reader.data) < 1000, 30)
    second.abort()
    assert second.error is not None and second.error.kind is K.ABORTED
    env.wait(first, 60)
    assert first.ok and bytes(reader.data) == payload
    env.rig.run_for(1)
    assert second.state is TransferState.FAILED
    assert env.server.verbs().count("RETR") == 1  # the aborted transfer never went out
    env.assert_usable()


# ============================================================================ resources


def test_download_data_connection_is_released() -> None:
    env = env_logged_in({"f": b"data"})
    transfer, _ = env.get("f")
    assert transfer.ok
    env.rig.run_for(200)  # beyond TIME-WAIT and FIN-WAIT-2
    states = [conn.state for conn in env.client_connections()]
    assert states == [TcpState.ESTABLISHED], states  # the control connection only


def test_upload_data_connection_is_released() -> None:
    env = env_logged_in()
    transfer = env.put("f", b"data")
    assert transfer.ok
    env.rig.run_for(200)
    states = [conn.state for conn in env.client_connections()]
    assert states == [TcpState.ESTABLISHED], states


# ============================================================================ lossy link


@pytest.mark.parametrize("mode", ["epsv", "active"])
def test_lossy_link_byte_exact(mode: str) -> None:
    payload = random.Random(17).randbytes(200_000)
    env = Env({"down.bin": payload}, mode=mode, timeout=120.0)
    rng = random.Random(2024)
    dropped: list[bytes] = []

    def drop(name: str, packet: bytes) -> bool:
        if rng.random() < 0.05:
            dropped.append(packet)
            return True
        return False

    env.net.drop = drop
    assert env.run(lambda: env.session.state in (SessionState.CONNECTING, SessionState.LOGGING_IN), 120)
    assert env.session.state is SessionState.READY, env.session.error
    transfer, data = env.get("down.bin", lambda: rng.randint(1, 4096), limit=900)
    assert transfer.ok, transfer.error
    assert sha(data) == sha(payload)
    up = env.put("up.bin", payload, lambda: rng.randint(1, 4096), limit=900)
    assert up.ok, up.error
    assert sha(env.server.files["up.bin"]) == sha(payload)
    assert len(dropped) >= 10  # the link really lost datagrams
