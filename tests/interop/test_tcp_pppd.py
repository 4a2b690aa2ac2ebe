"""TCP between wipstack and a real Linux over PPP: pppd in a User-Mode-Linux guest dials wipstack.

Topology (TEST-NET)::

    UML guest (pppd, Linux TCP)  --PPP over a socketpair--  wipstack (PPP server, TCP)
    192.0.2.2                                                192.0.2.1

Linux applications in the guest (the host's binaries, through hostfs) talk to wipstack servers,
and wipstack clients talk to python3 servers in the guest; every transfer is 5 MB and is checked
end to end with SHA-256:

* curl and busybox wget download a 5 MB HTTP/1.0 response from a minimal wipstack HTTP server;
* busybox nc uploads 5 MB to a wipstack server that answers with the SHA-256 of what it got;
* a wipstack :class:`TcpSocket` client uploads 5 MB to a guest python3 server that answers with
  the SHA-256 of what it got;
* :class:`BulkTransfer` downloads 5 MB from, and uploads 5 MB to, guest python3 servers.

The link is a host socketpair, so the rate is bounded by the guest: towards the guest by UML's
serial-line input, which costs one host read(2) per octet (arch/um/drivers/chan_kern.c,
chan_interrupt), so ~5 Mbit/s; from the guest it is ~10 times faster.  Each test prints its
payload rate (``pytest -s`` shows it).  Scripts and results go through the guest's run dir
(``guest.run_dir / name`` on the host is ``/run/name`` in the guest).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

import pytest

from tests.harness.uml import REQUIRE_ENV, PppdGuest, skip_unless_uml
from wipstack.drivers.link import SocketLink
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import PppPort
from wipstack.drivers.services import BulkTransfer
from wipstack.net import Stack
from wipstack.ppp.config import CpConfig, IpcpConfig, PppConfig
from wipstack.ppp.session import PppSession
from wipstack.tcp.events import Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.tcp.state import TcpState

pytestmark = pytest.mark.interop

LOCAL = "192.0.2.1"  # wipstack
GUEST = "192.0.2.2"  # pppd's end
SIZE = 5 * 1024 * 1024
FAST = ["lcp-restart", "1", "ipcp-restart", "1"]
TRANSFER_TIMEOUT = 60.0  # seconds for one 5 MB transfer (each test must stay under 90 s)
HTTP_PORT = 80
SHA_PORT = 5001  # wipstack: reads to EOF, answers the SHA-256 (hex) of what it read, closes
GUEST_SINK_PORT = 6001  # guest: reads to EOF, answers the SHA-256, closes
GUEST_SOURCE_PORT = 6002  # guest: sends /run/source.bin, half-closes, waits for our close
GUEST_WAITER_PORT = 6003  # guest: sends /run/source.bin, then waits for our close before closing
GUEST_CHARGEN_PORT = 6004  # guest: streams /run/source.bin over and over until we close
SOURCE_SEED = 3
_DONE = (TcpState.TIME_WAIT, TcpState.CLOSED)  # both FINs exchanged (or the end of the connection)


def pattern(seed: int, size: int = SIZE) -> bytes:
    """``size`` seeded pseudo-random octets."""
    return random.Random(seed).randbytes(size)


def mbit(octets: int, seconds: float) -> float:
    return octets * 8 / max(seconds, 1e-9) / 1e6


def require_guest_tool(tool: str, package: str) -> None:
    """Skip (fail under WIPSTACK_REQUIRE_INTEROP=1) unless the host has ``tool`` (the guest runs
    the host's binaries): Debian ``package`` provides it."""
    if shutil.which(tool, path="/usr/local/bin:/usr/bin:/bin") is None:
        reason = f"{tool} is not installed (Debian package {package}); the guest runs the host's binaries"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)


# ---------------------------------------------------------------------------- the link


@dataclass
class Link:
    """A guest whose pppd dialled a running wipstack (IPCP up on both ends)."""

    guest: PppdGuest
    loop: NetLoop
    port: PppPort

    @property
    def stack(self) -> Stack:
        return self.loop.stack

    def run_file(self, name: str) -> str:
        try:
            return (self.guest.run_dir / name).read_text(errors="replace")
        except OSError:
            return ""

    def wait(self, what: str, done: Callable[[], bool], timeout: float) -> float:
        """Poll ``done`` until true (failing with the guest's story after ``timeout``); the time it took."""
        start = time.monotonic()
        while not done():
            if self.loop.error is not None:
                raise AssertionError(f"the network loop died: {self.loop.error!r}") from self.loop.error
            if time.monotonic() - start >= timeout:
                raise AssertionError(f"{what}: not done after {timeout:g} s\n{self.story()}")
            time.sleep(0.05)
        return time.monotonic() - start

    def wait_on_loop(self, what: str, done: Callable[[], bool], timeout: float) -> float:
        """Like :meth:`wait`, with ``done`` evaluated on the loop's thread."""
        return self.wait(what, lambda: self.loop.call(done), timeout)

    def wait_cmd(self, timeout: float) -> str:
        """Wait until the guest's command finished; its output."""
        self.wait("guest command", lambda: self.guest.cmd_status() is not None, timeout)
        return self.guest.cmd_output()

    def story(self) -> str:
        """What both ends say, for failure messages."""

        def collect() -> dict[str, Any]:
            tcp = self.stack.tcp
            return {
                "segments_in": tcp.segments_in,
                "segments_out": tcp.segments_out,
                "resets_sent": tcp.resets_sent,
                "drops": {str(k): v for k, v in tcp.drops.items()},
                "connections": [
                    f"{c.state} retransmitted={c.retransmitted_segments} timeouts={c.timeouts}" for c in tcp.connections
                ],
                "ppp_up": self.port.is_up,
            }

        try:
            stats: object = self.loop.call(collect, timeout=2)
        except Exception as exc:  # the loop may be gone
            stats = repr(exc)
        return (
            f"--- wipstack TCP: {stats}\n"
            f"--- guest cmd status {self.guest.cmd_status()}, output:\n{self.guest.cmd_output()[-3000:]}\n"
            f"--- guest servers.log:\n{self.run_file('servers.log')[-2000:]}\n"
            f"--- guest log tail:\n{self.guest.log_tail(25)}"
        )


Dial = Callable[..., Link]


@pytest.fixture
def dial() -> Iterator[Dial]:
    """``dial(cmd, files=..., setup=..., name=...)``: boot a guest whose pppd dials wipstack and
    wait for IPCP on both ends.  ``files`` ({name: bytes}) are put in the guest's /run before
    the link comes up; ``setup(stack)`` runs before the loop starts (listen there, so a guest
    client started by ``cmd`` right after IPCP finds the server); ``cmd`` runs in the guest once
    IPCP is up, and the guest shuts down when it ends."""
    skip_unless_uml()
    guests: list[PppdGuest] = []
    loops: list[NetLoop] = []

    def open_link(
        cmd: str,
        *,
        files: dict[str, bytes] | None = None,
        setup: Callable[[Stack], object] | None = None,
        name: str = "tcp",
    ) -> Link:
        options = ["debug", "local", "noauth", f"{GUEST}:{LOCAL}", *FAST]
        guest = PppdGuest(options, cmd=cmd, name=name, up_timeout=30)
        guests.append(guest)
        sock = guest.start()
        for fname, data in (files or {}).items():  # wipstack has not answered yet: cmd cannot run
            (guest.run_dir / fname).write_bytes(data)
        stack = Stack(random.Random(21))
        if setup is not None:
            setup(stack)
        loop = NetLoop(stack)
        loops.append(loop)
        config = PppConfig(
            ipcp=IpcpConfig(local_address=IPv4Address(LOCAL), peer_address=IPv4Address(GUEST)),
            cp=CpConfig(restart_interval=1.0),
        )
        port = PppPort(stack, PppSession(config, random.Random(22)), SocketLink(sock))
        loop.add_port(port)
        port.open()
        loop.start()
        link = Link(guest, loop, port)
        info = guest.wait_ip_up(30)
        assert info["local"] == GUEST and info["remote"] == LOCAL, info
        link.wait_on_loop("wipstack IPCP up", lambda: port.is_up, 10)
        return link

    try:
        yield open_link
    finally:
        for loop in loops:
            loop.close()
        for guest in guests:
            guest.close(grace=0)


# ---------------------------------------------------------------------------- wipstack servers


@dataclass
class Served:
    """One server connection (touched on the loop's thread only)."""

    sock: TcpSocket
    request: bytes = b""
    received: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    sent: int = 0
    first_byte_at: float | None = None
    last_byte_at: float | None = None
    done_at: float | None = None  # TIME-WAIT or CLOSED
    error: str | None = None
    events: list[str] = field(default_factory=list)

    def note(self, event: TcpEvent) -> None:
        self.events.append(type(event).__name__)
        if isinstance(event, ConnectionFailed):
            self.error = f"{event.errno_name}: {event.reason}"
        if self.done_at is None and self.sock.state in _DONE:
            self.done_at = time.monotonic()

    def counters(self) -> str:
        conn = self.sock.connection
        return f"retransmitted {conn.retransmitted_segments} segments, {conn.timeouts} RTOs"


def serve_http(stack: Stack, body: bytes, connections: list[Served]) -> TcpServer:
    """A minimal HTTP/1.0 server on port 80: reads the request head, answers ``200 OK`` with
    ``body`` for ``GET /file`` (404 otherwise), then closes."""
    server = TcpServer(stack.tcp, HTTP_PORT)

    def accepted(sock: TcpSocket) -> None:
        served = Served(sock)
        connections.append(served)
        head = bytearray()
        out = memoryview(b"")

        def pump() -> None:
            nonlocal out
            if not served.request:
                head.extend(sock.recv())
                if b"\r\n\r\n" not in head:
                    return
                served.request = bytes(head)
                line = served.request.split(b"\r\n", 1)[0]
                if re.fullmatch(rb"GET /file HTTP/1\.[01]", line):
                    reply = (
                        b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                    ) + body
                else:
                    reply = b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                out = memoryview(reply)
                served.first_byte_at = time.monotonic()
            else:
                sock.recv()  # nothing more is expected; never close with unread data (that resets)
            while out:
                n = sock.send(out)
                if n == 0:
                    return  # send buffer full: SendSpace brings us back
                served.sent += n
                out = out[n:]
            if served.last_byte_at is None and sock.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
                served.last_byte_at = time.monotonic()
                sock.close()  # FIN after the queued rest of the body

        def on_event(s: TcpSocket, event: TcpEvent) -> None:
            if isinstance(event, Connected | DataAvailable | SendSpace | PeerClosed):
                pump()
            served.note(event)

        sock.on_event = on_event
        pump()

    server.on_accept = accepted
    return server


def serve_sha(stack: Stack, port: int, connections: list[Served]) -> TcpServer:
    """Reads to EOF, answers the SHA-256 (hex and LF) of what it read, closes."""
    server = TcpServer(stack.tcp, port)

    def accepted(sock: TcpSocket) -> None:
        served = Served(sock)
        connections.append(served)

        def on_event(s: TcpSocket, event: TcpEvent) -> None:
            if isinstance(event, DataAvailable | PeerClosed):
                data = s.recv()
                if data and served.first_byte_at is None:
                    served.first_byte_at = time.monotonic()
                served.received += len(data)
                served.sha256.update(data)
            if isinstance(event, PeerClosed):
                served.last_byte_at = time.monotonic()
                served.sent = s.send(served.sha256.hexdigest().encode() + b"\n")
                s.close()
            served.note(event)

        sock.on_event = on_event

    server.on_accept = accepted
    return server


# ---------------------------------------------------------------------------- guest clients

HTTP_CLIENTS = {
    # name: (Debian package or None when busybox-static (a harness package) has it, guest command)
    "curl": (
        "curl",
        "curl -sS --max-time 60 -o /tmp/body -w 'http=%{http_code} size=%{size_download} time=%{time_total}\\n' "
        f"http://{LOCAL}/file",
    ),
    # not "wget -T": Debian's busybox-static 1.35 segfaults with it (on the host too)
    "busybox-wget": (None, f"timeout 60 busybox wget -q -O /tmp/body http://{LOCAL}/file"),
}


@pytest.mark.parametrize("client", sorted(HTTP_CLIENTS))
def test_guest_http_client_downloads_5mb_from_wipstack(dial: Dial, client: str) -> None:
    package, fetch = HTTP_CLIENTS[client]
    if package is not None:
        require_guest_tool(client, package)
    body = pattern(1)
    expected = hashlib.sha256(body).hexdigest()
    cmd = textwrap.dedent(
        f"""\
        start=$(date +%s.%N)
        {fetch}
        echo "client rc=$?"
        end=$(date +%s.%N)
        echo "client time=$(echo "$end $start" | busybox awk '{{print $1 - $2}}')"
        sha256sum /tmp/body
        """
    )
    connections: list[Served] = []
    link = dial(cmd, setup=lambda stack: serve_http(stack, body, connections), name=client)
    out = link.wait_cmd(TRANSFER_TIMEOUT + 15)
    assert "client rc=0" in out, link.story()
    assert f"{expected}  /tmp/body" in out, link.story()
    if client == "curl":
        assert f"size={SIZE}" in out and "http=200" in out, out
    link.wait_on_loop(
        "wipstack's HTTP connection closed", lambda: bool(connections) and connections[0].done_at is not None, 10
    )
    served = connections[0]
    assert len(connections) == 1 and served.error is None, (served.error, served.events)
    assert served.request.startswith(b"GET /file HTTP/1."), served.request
    assert served.sent > SIZE
    assert served.first_byte_at is not None and served.done_at is not None
    seconds = served.done_at - served.first_byte_at
    match = re.search(r"client time=([0-9.]+)", out)
    guest_seconds = float(match.group(1)) if match else float("nan")
    print(
        f"\n[rate] wipstack HTTP -> guest {client}: {SIZE} octets, {seconds:.2f} s from the first octet "
        f"to both FINs = {mbit(SIZE, seconds):.2f} Mbit/s; the guest's whole run {guest_seconds:.2f} s "
        f"= {mbit(SIZE, guest_seconds):.2f} Mbit/s; wipstack {served.counters()}"
    )


def test_guest_busybox_nc_uploads_5mb_to_wipstack(dial: Dial) -> None:
    data = pattern(2)
    expected = hashlib.sha256(data).hexdigest()
    cmd = textwrap.dedent(
        f"""\
        cp /run/upload.bin /tmp/upload.bin
        sha256sum /tmp/upload.bin
        start=$(date +%s.%N)
        busybox nc {LOCAL} {SHA_PORT} </tmp/upload.bin >/tmp/reply
        echo "nc rc=$?"
        end=$(date +%s.%N)
        echo "nc time=$(echo "$end $start" | busybox awk '{{print $1 - $2}}')"
        echo "reply=$(cat /tmp/reply)"
        """
    )
    connections: list[Served] = []
    link = dial(cmd, files={"upload.bin": data}, setup=lambda stack: serve_sha(stack, SHA_PORT, connections), name="nc")
    out = link.wait_cmd(TRANSFER_TIMEOUT + 15)
    assert f"{expected}  /tmp/upload.bin" in out, out  # the guest itself read the file intact
    assert "nc rc=0" in out, link.story()
    link.wait_on_loop(
        "wipstack's sha connection closed", lambda: bool(connections) and connections[0].done_at is not None, 10
    )
    served = connections[0]
    assert len(connections) == 1 and served.error is None, (served.error, served.events)
    assert served.received == SIZE, link.story()
    assert served.sha256.hexdigest() == expected
    assert f"reply={expected}" in out, out  # and nc got our answer back after its half-close
    assert served.first_byte_at is not None and served.last_byte_at is not None
    seconds = served.last_byte_at - served.first_byte_at
    match = re.search(r"nc time=([0-9.]+)", out)
    guest_seconds = float(match.group(1)) if match else float("nan")
    print(
        f"\n[rate] guest busybox nc -> wipstack: {SIZE} octets, {seconds:.2f} s from the first octet to the FIN "
        f"= {mbit(SIZE, seconds):.2f} Mbit/s; nc's whole run {guest_seconds:.2f} s = {mbit(SIZE, guest_seconds):.2f} "
        f"Mbit/s"
    )


# ---------------------------------------------------------------------------- guest servers

GUEST_SERVERS = textwrap.dedent(
    f"""\
    import hashlib, socket, threading, time

    source = open("/run/source.bin", "rb").read()  # read before listening, not during a transfer

    def log(line):
        with open("/run/servers.log", "a") as f:
            f.write(line + "\\n")

    def listener(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("{GUEST}", port))
        s.listen(4)
        return s

    def drain(c):
        n = 0
        while True:
            b = c.recv(1 << 16)
            if not b:
                return n
            n += len(b)

    def sink(c, peer):  # reads to EOF, answers the SHA-256, closes
        h, n, t0 = hashlib.sha256(), 0, None
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            t0 = t0 or time.monotonic()
            h.update(b)
            n += len(b)
        t1 = time.monotonic()
        c.sendall(h.hexdigest().encode() + b"\\n")
        c.close()
        return "%d octets sha256=%s time=%.3f" % (n, h.hexdigest(), t1 - (t0 or t1))

    def source_server(c, peer):  # sends the source, half-closes, waits for the peer's close
        t0 = time.monotonic()
        c.sendall(source)
        c.shutdown(socket.SHUT_WR)
        drain(c)
        c.close()
        return "%d octets time=%.3f" % (len(source), time.monotonic() - t0)

    def waiter(c, peer):  # sends the source, then waits for the peer to close first
        c.sendall(source)
        drain(c)
        c.close()
        return "%d octets, then the peer closed" % len(source)

    def chargen(c, peer):  # streams until the peer goes away
        n = 0
        try:
            while True:
                c.sendall(source[:1 << 16])
                n += 1 << 16
        except OSError as exc:
            c.close()
            return "streamed %d octets until %r" % (n, exc)

    def serve(name, handler, s):
        while True:
            c, peer = s.accept()
            try:
                result = handler(c, peer)
            except OSError as exc:
                result = "failed: %r" % exc
            log("%s %s:%d %s" % (name, peer[0], peer[1], result))

    for name, handler, port in (("sink", sink, {GUEST_SINK_PORT}), ("source", source_server, {GUEST_SOURCE_PORT}),
                                ("waiter", waiter, {GUEST_WAITER_PORT}), ("chargen", chargen, {GUEST_CHARGEN_PORT})):
        threading.Thread(target=serve, args=(name, handler, listener(port)), daemon=True).start()
    open("/run/servers.ready", "w").close()
    while True:
        time.sleep(3600)
    """
)

GUEST_SERVERS_CMD = textwrap.dedent(
    """\
    python3 /run/servers.py &
    # serve until the test is done (85 s at most)
    for i in $(seq 850); do [ -e /run/test-done ] && break; sleep 0.1; done
    echo "servers done"
    """
)


def start_guest_servers(dial: Dial, name: str) -> Link:
    link = dial(
        GUEST_SERVERS_CMD,
        files={"servers.py": GUEST_SERVERS.encode(), "source.bin": pattern(SOURCE_SEED)},
        name=name,
    )
    # python3 starts slowly in UML (~1-2 s) and reads the 5 MB source from hostfs first
    link.wait("guest python3 servers listening", lambda: (link.guest.run_dir / "servers.ready").exists(), 30)
    return link


@dataclass
class ShaClient:
    """Connects, sends ``data``, half-closes, reads the answer to the peer's FIN (loop thread only)."""

    data: bytes
    sock: TcpSocket | None = None
    offset: int = 0
    reply: bytearray = field(default_factory=bytearray)
    connected_at: float | None = None
    all_queued_at: float | None = None
    done_at: float | None = None
    error: str | None = None

    def start(self, stack: Stack, host: str, port: int) -> None:
        self.sock = TcpSocket.connect(stack.tcp, host, port, time.monotonic())
        self.sock.on_event = self.on_event

    def pump(self, sock: TcpSocket) -> None:
        view = memoryview(self.data)
        while self.offset < len(self.data):
            n = sock.send(view[self.offset : self.offset + (1 << 16)])
            if n == 0:
                return
            self.offset += n
        if self.all_queued_at is None:
            self.all_queued_at = time.monotonic()
            sock.shutdown()

    def on_event(self, sock: TcpSocket, event: TcpEvent) -> None:
        if isinstance(event, Connected):
            self.connected_at = time.monotonic()
        if isinstance(event, Connected | SendSpace):
            self.pump(sock)
        if isinstance(event, DataAvailable | PeerClosed):
            self.reply += sock.recv()
        if isinstance(event, PeerClosed):
            sock.close()
        if isinstance(event, ConnectionFailed):
            self.error = f"{event.errno_name}: {event.reason}"
        if self.done_at is None and sock.state in _DONE:
            self.done_at = time.monotonic()


def test_wipstack_tcp_socket_uploads_5mb_to_guest_python_server(dial: Dial) -> None:
    link = start_guest_servers(dial, "pysink")
    data = pattern(4)
    expected = hashlib.sha256(data).hexdigest()
    client = ShaClient(data)
    link.loop.call(lambda: client.start(link.stack, GUEST, GUEST_SINK_PORT))
    link.wait_on_loop("upload to the guest's sink", lambda: client.done_at is not None, TRANSFER_TIMEOUT)
    # the sink logs after its close() returned: maybe after we saw its FIN
    link.wait("the guest's sink log", lambda: f"sink {LOCAL}:" in link.run_file("servers.log"), 10)
    (link.guest.run_dir / "test-done").touch()
    assert client.error is None, f"{client.error}\n{link.story()}"
    assert client.offset == SIZE
    assert client.reply.decode().strip() == expected, (bytes(client.reply), link.story())
    log = link.run_file("servers.log")
    assert f"sink {LOCAL}:" in log and f"{SIZE} octets sha256={expected}" in log, log
    assert client.connected_at is not None and client.done_at is not None
    seconds = client.done_at - client.connected_at
    conn = client.sock.connection if client.sock is not None else None
    print(
        f"\n[rate] wipstack TcpSocket -> guest python3: {SIZE} octets, {seconds:.2f} s from connected to the "
        f"answer = {mbit(SIZE, seconds):.2f} Mbit/s; wipstack retransmitted "
        f"{conn.retransmitted_segments if conn else '?'} segments, {conn.timeouts if conn else '?'} RTOs; "
        f"guest: {log.strip()}"
    )


def bulk_receive(link: Link, port: int) -> tuple[BulkTransfer, list[float]]:
    """A BulkTransfer(receive=True) of SIZE octets; the list gets the time all SIZE octets were in."""
    all_in: list[float] = []

    def start() -> BulkTransfer:
        now = time.monotonic()
        transfer = BulkTransfer(link.stack, GUEST, port, SIZE, now, time.monotonic, receive=True)
        handler = transfer.sock.on_event
        assert handler is not None

        def spy(sock: TcpSocket, event: TcpEvent) -> None:
            handler(sock, event)
            if transfer.received >= SIZE and not all_in:
                all_in.append(time.monotonic())

        transfer.sock.on_event = spy
        return transfer

    return link.loop.call(start), all_in


def test_wipstack_bulk_transfer_5mb_both_ways_with_guest_python_servers(dial: Dial) -> None:
    link = start_guest_servers(dial, "pybulk")
    # guest -> wipstack: from the guest's source (sends, half-closes, waits for our close)
    down, all_in = bulk_receive(link, GUEST_SOURCE_PORT)
    # both ends closed; not down.done: see test_bulk_transfer_receive_is_done_once_both_ends_closed
    link.wait_on_loop("download from the guest", lambda: bool(all_in) and down.sock.state in _DONE, TRANSFER_TIMEOUT)
    assert down.error is None, f"{down.error}\n{link.story()}"
    assert down.received == SIZE, link.story()
    assert down.sha256.hexdigest() == hashlib.sha256(pattern(SOURCE_SEED)).hexdigest()
    assert down.connected_at is not None
    down_seconds = all_in[0] - down.connected_at
    # wipstack -> guest: BulkTransfer's own pattern to the guest's sink
    now = time.monotonic
    up = link.loop.call(lambda: BulkTransfer(link.stack, GUEST, GUEST_SINK_PORT, SIZE, now(), now))
    link.wait_on_loop("upload to the guest", lambda: up.done, TRANSFER_TIMEOUT)
    assert up.error is None, f"{up.error}\n{link.story()}"
    assert up.sent == SIZE
    link.wait("the guest's sink log", lambda: f"sink {LOCAL}:" in link.run_file("servers.log"), 10)
    (link.guest.run_dir / "test-done").touch()
    log = link.run_file("servers.log")
    assert f"{SIZE} octets sha256={up.sha256.hexdigest()}" in log, log
    print(
        f"\n[rate] BulkTransfer guest python3 -> wipstack: {SIZE} octets in {down_seconds:.2f} s = "
        f"{mbit(SIZE, down_seconds):.2f} Mbit/s (connected to the last octet); wipstack -> guest python3: "
        f"{up.rate_bps() / 1e6:.2f} Mbit/s (connected to the FIN acknowledged); guest: {log.strip()}"
    )


# ---------------------------------------------------------------------------- known bugs


def test_bulk_transfer_receive_is_done_once_both_ends_closed(dial: Dial) -> None:
    link = start_guest_servers(dial, "bulkdone")
    transfer, all_in = bulk_receive(link, GUEST_WAITER_PORT)
    link.wait_on_loop(
        "download from the guest", lambda: bool(all_in) and transfer.sock.state in _DONE, TRANSFER_TIMEOUT
    )
    assert transfer.error is None and transfer.received == SIZE
    assert transfer.sha256.hexdigest() == hashlib.sha256(pattern(SOURCE_SEED)).hexdigest()
    # both FINs exchanged, every octet in: the transfer is over
    time.sleep(2.0)
    state = link.loop.call(lambda: transfer.sock.state)
    assert transfer.done, f"BulkTransfer not done 2 s after both ends closed (connection in {state})"
    assert transfer.finished_at is not None and transfer.finished_at - all_in[0] < 2.0


def test_bulk_transfer_receive_from_a_streaming_server(dial: Dial) -> None:
    link = start_guest_servers(dial, "bulkchargen")
    transfer, all_in = bulk_receive(link, GUEST_CHARGEN_PORT)
    link.wait_on_loop("download from the guest's chargen", lambda: transfer.done, TRANSFER_TIMEOUT)
    assert transfer.received >= SIZE, link.story()
    assert transfer.error is None, transfer.error
