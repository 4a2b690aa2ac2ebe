"""The asyncio streams adapter (wipstack.drivers.aio) between two wipstack stacks, no root needed.

Each stack runs on its own NetLoop thread; the two are joined by PPP over a
``socket.socketpair()`` (as the demo joins its nodes)::

    server stack 192.0.2.1  ── PPP over a socketpair ──  192.0.2.2 client stack

The tests run asyncio in the test's thread with ``asyncio.run``, each under a hard timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any, TypeVar

import pytest

from wipstack.drivers import aio
from wipstack.drivers.link import SocketLink
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import PppPort
from wipstack.net import Stack
from wipstack.ppp.config import CpConfig, IpcpConfig, PppConfig
from wipstack.ppp.session import PppSession
from wipstack.tcp.socket import TcpSocket
from wipstack.tcp.state import TcpState

T = TypeVar("T")

SERVER = "192.0.2.1"
CLIENT = "192.0.2.2"
NOWHERE = "203.0.113.9"  # routed to the server stack, which does not forward: SYNs vanish
MB = 1 << 20
CHUNK = 64 * 1024


@dataclass
class Node:
    stack: Stack
    loop: NetLoop
    port: PppPort

    def call(self, function: Callable[[], T]) -> T:
        return self.loop.call(function)


@dataclass
class Pair:
    server: Node
    client: Node


def _node(seed: int, sock: socket.socket, local: str, peer: str) -> Node:
    stack = Stack(random.Random(seed))
    loop = NetLoop(stack)
    config = PppConfig(
        ipcp=IpcpConfig(local_address=IPv4Address(local), peer_address=IPv4Address(peer)),
        cp=CpConfig(restart_interval=0.5),
    )
    port = PppPort(stack, PppSession(config, random.Random(seed + 100)), SocketLink(sock), default_route=True)
    loop.add_port(port)
    port.open()
    return Node(stack, loop, port)


@pytest.fixture
def pair() -> Iterator[Pair]:
    a, b = socket.socketpair()
    server = _node(1, a, SERVER, CLIENT)
    client = _node(2, b, CLIENT, SERVER)
    try:
        server.loop.start()
        client.loop.start()
        deadline = time.monotonic() + 10
        while not (server.call(lambda: server.port.is_up) and client.call(lambda: client.port.is_up)):
            assert time.monotonic() < deadline, "the PPP link did not come up"
            time.sleep(0.005)
        yield Pair(server, client)
        assert server.loop.error is None, f"the server's loop thread died: {server.loop.error!r}"
        assert client.loop.error is None, f"the client's loop thread died: {client.loop.error!r}"
    finally:
        server.loop.close()
        client.loop.close()


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


async def read_all(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while data := await reader.read(CHUNK):
        out += data
    return bytes(out)


async def send_all(writer: aio.WipStreamWriter, payload: bytes, *, eof: bool = True) -> None:
    for i in range(0, len(payload), CHUNK):
        writer.write(payload[i : i + CHUNK])
        await writer.drain()
    if eof:
        writer.write_eof()


async def echo(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def tcp_socket(writer: aio.WipStreamWriter) -> TcpSocket:
    sock = writer.get_extra_info("wipstack_socket")
    assert isinstance(sock, TcpSocket)
    return sock


def buffered(reader: asyncio.StreamReader) -> int:
    """Octets in the StreamReader's buffer (asyncio has no public accessor)."""
    return len(reader._buffer)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def test_echo_round_trip_1mb(pair: Pair) -> None:
    payload = random.Random(1).randbytes(MB)
    peers: list[Any] = []

    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        peers.append((writer.get_extra_info("peername"), writer.get_extra_info("sockname")))
        await echo(reader, writer)

    async def main() -> bytes:
        server = await aio.start_server(pair.server.loop, handler, 7)
        assert server.is_serving()
        assert [s.getsockname() for s in server.sockets] == [("0.0.0.0", 7)]
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
        assert writer.get_extra_info("peername") == (SERVER, 7)
        client_name = writer.get_extra_info("sockname")
        assert client_name[0] == CLIENT
        sender = asyncio.create_task(send_all(writer, payload))
        echoed = await read_all(reader)
        await sender
        writer.close()
        await writer.wait_closed()
        assert writer.is_closing()
        server.close()
        await server.wait_closed()
        assert peers == [(tuple(client_name), (SERVER, 7))]
        return echoed

    echoed = run(main())
    assert len(echoed) == len(payload)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


def test_many_connections_at_once(pair: Pair) -> None:
    async def main() -> None:
        server = await aio.start_server(pair.server.loop, echo, 7, backlog=64)

        async def one(i: int) -> None:
            payload = random.Random(i).randbytes(random.Random(i).randint(1, 50_000))
            reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
            sender = asyncio.create_task(send_all(writer, payload))
            assert await read_all(reader) == payload
            await sender
            writer.close()
            await writer.wait_closed()

        await asyncio.gather(*(one(i) for i in range(30)))
        server.close()
        await server.wait_closed()

    run(main())


def test_readline_and_readexactly(pair: Pair) -> None:
    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        writer.writelines([b"hello\n", b"world\n", bytes(range(256)) * 1000])
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        async with await aio.start_server(pair.server.loop, handler, 7):
            reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7, limit=1024)
            assert await reader.readline() == b"hello\n"
            assert await reader.readuntil(b"\n") == b"world\n"
            # far beyond 2 * limit: the paused reader is resumed while waiting
            assert await reader.readexactly(256_000) == bytes(range(256)) * 1000
            assert await reader.read() == b""
            assert reader.at_eof()
            writer.close()
            await writer.wait_closed()

    run(main())


# --------------------------------------------------------------------------
# flow control
# --------------------------------------------------------------------------


def test_drain_waits_for_a_slow_reader_and_memory_stays_bounded(pair: Pair) -> None:
    total = 3 * MB
    payload = random.Random(2).randbytes(total)
    limit = 16 * 1024
    state: dict[str, Any] = {"max_buffered": 0}

    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        state["reader"], state["writer"] = reader, writer
        await state["release"].wait()
        digest = hashlib.sha256()
        count = 0
        while data := await reader.read(4096):  # slowly: small reads with pauses
            digest.update(data)
            count += len(data)
            state["max_buffered"] = max(state["max_buffered"], buffered(reader))
            if count % (64 * 1024) < 4096:
                await asyncio.sleep(0.001)
        writer.write(f"{count} {digest.hexdigest()}".encode())
        writer.close()

    async def main() -> None:
        state["release"] = asyncio.Event()
        server = await aio.start_server(pair.server.loop, handler, 7, limit=limit)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
        low, high = writer.transport.get_write_buffer_limits()
        assert (low, high) == (16 * 1024, 64 * 1024)
        # client: TCP send buffer (256 KiB) + high water + one write; server: TCP receive buffer
        # (256 KiB) + the reader's 3 * limit
        bound = 256 * 1024 + high + CHUNK + 256 * 1024 + 3 * limit
        progress = {"written": 0}

        async def send() -> None:
            while progress["written"] < total:
                start = progress["written"]
                writer.write(payload[start : start + CHUNK])
                progress["written"] += CHUNK
                assert writer.transport.get_write_buffer_size() <= high + CHUNK
                await writer.drain()
                assert writer.transport.get_write_buffer_size() <= high
            writer.write_eof()

        sender = asyncio.create_task(send())
        # the server's handler reads nothing yet: its window closes and the writer must stall
        while "writer" not in state:
            await asyncio.sleep(0.01)
        server_sock = tcp_socket(state["writer"])
        deadline = time.monotonic() + 20
        seen, since = -1, time.monotonic()
        while True:
            assert not sender.done(), "the writer finished although the peer read nothing"
            assert progress["written"] <= bound, progress
            held = pair.server.call(lambda: server_sock.readable)
            if progress["written"] != seen:
                seen, since = progress["written"], time.monotonic()
            elif held > 200 * 1024 and time.monotonic() - since > 0.5:
                break  # window closed and no progress for a while: stalled
            assert time.monotonic() < deadline, f"no stall: written {progress['written']}, server holds {held}"
            await asyncio.sleep(0.02)
        assert writer.transport.get_write_buffer_size() > low  # drain() is waiting
        server_reader: asyncio.StreamReader = state["reader"]
        assert buffered(server_reader) <= 3 * limit  # the rest waits in the server's TCP buffer
        # SendSpace (which wakes the flush) comes once half the client's TCP send buffer is free again
        client_sock = tcp_socket(writer)
        space = pair.client.call(lambda: client_sock.send_space)
        assert space < 128 * 1024, f"the client's TCP send buffer should be at least half full, {space} free"
        await asyncio.sleep(0.3)
        assert progress["written"] == seen and not sender.done()  # still waiting while nothing is read
        state["release"].set()
        await sender
        answer = await read_all(reader)
        assert answer == f"{total} {hashlib.sha256(payload).hexdigest()}".encode()
        assert state["max_buffered"] <= 3 * limit
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_paused_reader_leaves_data_in_the_tcp_window(pair: Pair) -> None:
    payload = random.Random(3).randbytes(MB)
    limit = 4096

    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        await send_all(writer, payload, eof=False)
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        server = await aio.start_server(pair.server.loop, handler, 7)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7, limit=limit)
        sock = tcp_socket(writer)
        deadline = time.monotonic() + 10
        while pair.client.call(lambda: sock.readable) < 200 * 1024:  # the TCP receive buffer fills up
            assert time.monotonic() < deadline, "data did not pile up in the TCP receive buffer"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert 2 * limit < buffered(reader) <= 3 * limit  # the reader paused after 2 * limit
        assert not reader.at_eof()
        received = await read_all(reader)
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


# --------------------------------------------------------------------------
# closing
# --------------------------------------------------------------------------


def test_write_eof_half_close(pair: Pair) -> None:
    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        request = await read_all(reader)  # until the client's FIN
        writer.write(b"got %d octets" % len(request))  # this direction is still open
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        server = await aio.start_server(pair.server.loop, handler, 7)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
        assert writer.can_write_eof()
        writer.write(b"x" * 100_000)
        writer.write_eof()
        writer.write_eof()  # idempotent
        with pytest.raises(RuntimeError):
            writer.write(b"more")
        assert not writer.is_closing()
        assert await reader.read() == b"got 100000 octets"
        assert reader.at_eof()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_connection_refused(pair: Pair) -> None:
    async def main() -> None:
        with pytest.raises(ConnectionRefusedError) as caught:
            await aio.open_connection(pair.client.loop, SERVER, 9)
        assert caught.value.errno == errno.ECONNREFUSED

    run(main())


def test_peer_reset_maps_to_connection_reset(pair: Pair) -> None:
    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        await reader.readexactly(5)
        writer.transport.abort()
        await writer.wait_closed()  # our own abort is not an error

    async def main() -> None:
        server = await aio.start_server(pair.server.loop, handler, 7)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
        writer.write(b"hello")
        with pytest.raises(ConnectionResetError) as caught:
            await reader.read(100)
        assert caught.value.errno == errno.ECONNRESET
        with pytest.raises(ConnectionResetError):
            await writer.drain()
        writer.write(b"ignored after the connection is lost")
        assert writer.is_closing()
        writer.close()
        with pytest.raises(ConnectionResetError):
            await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_reset_while_close_flushes_is_reported_by_wait_closed(pair: Pair) -> None:
    outcome: list[BaseException | None] = []

    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        writer.write(bytes(2 * MB))  # far more than the peer (reading nothing) can take
        writer.close()
        assert writer.is_closing()
        try:
            await writer.wait_closed()
        except ConnectionResetError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    async def main() -> None:
        server = await aio.start_server(pair.server.loop, handler, 7)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7, limit=1024)
        await asyncio.sleep(0.3)  # windows fill up; the server's close() is still flushing
        assert not outcome
        writer.transport.abort()
        await writer.wait_closed()  # our own abort: no error
        server.close()
        await server.wait_closed()

    run(main())
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionResetError), outcome


def test_server_close(pair: Pair) -> None:
    async def main() -> None:
        server = await aio.start_server(pair.server.loop, echo, 7)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        server.close()
        server.close()  # idempotent
        assert not server.is_serving() and server.sockets == ()
        closed = asyncio.create_task(server.wait_closed())
        # close() cannot block the asyncio thread: the listener goes on the NetLoop's thread just after
        while not server._listener_closed:
            await asyncio.sleep(0.005)
        with pytest.raises(ConnectionRefusedError):
            await aio.open_connection(pair.client.loop, SERVER, 7)
        writer.write(b"after")  # the accepted connection lives on
        assert await reader.readexactly(5) == b"after"
        await asyncio.sleep(0.05)
        assert not closed.done(), "wait_closed() returned while a connection was open"
        writer.write_eof()
        assert await reader.read() == b""
        await asyncio.wait_for(closed, 5)
        writer.close()
        await writer.wait_closed()
        # the port can be listened on again
        again = await aio.start_server(pair.server.loop, echo, 7)
        again.close()
        await again.wait_closed()

    run(main())


def test_serve_forever_context_manager_and_close_clients(pair: Pair) -> None:
    async def main() -> None:
        async with await aio.start_server(pair.server.loop, echo, 7) as server:
            forever = asyncio.create_task(server.serve_forever())
            reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            with pytest.raises(RuntimeError):
                await server.serve_forever()
            server.close_clients()  # the handlers' writers close: the client reads EOF
            assert await reader.read() == b""
            server.close()
            with pytest.raises(asyncio.CancelledError):
                await forever
            writer.close()
            await writer.wait_closed()
        assert not server.is_serving()

    run(main())


def test_port_in_use(pair: Pair) -> None:
    async def main() -> None:
        server = await aio.start_server(pair.server.loop, echo, 7)
        with pytest.raises(OSError) as caught:
            await aio.start_server(pair.server.loop, echo, 7)
        assert caught.value.errno == errno.EADDRINUSE
        server.close()
        await server.wait_closed()

    run(main())


def test_handler_exception_closes_its_connection(pair: Pair) -> None:
    errors: list[dict[str, Any]] = []

    async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        await reader.readexactly(3)
        raise ValueError("handler bug")

    def plain(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        writer.write(b"plain function")
        writer.close()

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        server = await aio.start_server(pair.server.loop, handler, 7)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
        writer.write(b"abc")
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        plain_server = await aio.start_server(pair.server.loop, plain, 8)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 8)
        assert await reader.read() == b"plain function"
        writer.close()
        for s in (server, plain_server):
            s.close()
            await s.wait_closed()

    run(main())
    assert [type(c.get("exception")) for c in errors] == [ValueError]


# --------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------


def test_cancelled_connect_resets_the_half_open_connection(pair: Pair) -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aio.open_connection(pair.client.loop, NOWHERE, 80), 0.3)

    run(main())
    deadline = time.monotonic() + 5
    while pair.client.call(lambda: [c.state for c in pair.client.stack.tcp.connections]):
        assert time.monotonic() < deadline, "the cancelled connection was left behind"
        time.sleep(0.01)


def test_connect_timeout_is_timeout_error(pair: Pair) -> None:
    tcp = pair.client.stack.tcp
    pair.client.call(lambda: setattr(tcp, "config", replace(tcp.config, connect_timeout=0.3)))

    async def main() -> None:
        with pytest.raises(TimeoutError) as caught:
            await aio.open_connection(pair.client.loop, NOWHERE, 80)
        assert caught.value.errno == errno.ETIMEDOUT

    run(main())


def test_unresolvable_name_is_gaierror(pair: Pair) -> None:
    async def main() -> None:
        with pytest.raises(socket.gaierror):
            await aio.open_connection(pair.client.loop, "nothing.invalid", 7)  # no DNS server configured

    run(main())


def test_bad_arguments(pair: Pair) -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            await aio.open_connection(pair.client.loop, SERVER, 0)
        with pytest.raises(ValueError):
            await aio.start_server(pair.server.loop, echo, 70000)
        with pytest.raises(ValueError):
            await aio.open_connection(pair.client.loop, SERVER, 7, limit=0)
        server = await aio.start_server(pair.server.loop, echo, 7)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
        with pytest.raises(TypeError):
            writer.write("text")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            writer.transport.set_write_buffer_limits(high=1, low=2)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


def test_nodelay(pair: Pair) -> None:
    async def main() -> None:
        accepted: list[aio.WipStreamWriter] = []

        def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
            accepted.append(writer)

        server = await aio.start_server(pair.server.loop, handler, 7, nodelay=True)
        reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7, nodelay=True)
        sock = tcp_socket(writer)
        assert pair.client.call(lambda: sock.nodelay)
        writer.set_nodelay(False)
        await asyncio.sleep(0.05)
        assert not pair.client.call(lambda: sock.nodelay)
        while not accepted:
            await asyncio.sleep(0.01)
        server_sock = tcp_socket(accepted[0])
        assert pair.server.call(lambda: server_sock.nodelay)
        accepted[0].close()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(main())


# --------------------------------------------------------------------------
# robustness
# --------------------------------------------------------------------------


def test_connection_outliving_its_asyncio_loop_is_reset(pair: Pair) -> None:
    """Data for a connection whose asyncio loop has gone must not hurt the NetLoop: it resets."""
    kept: list[aio.WipStreamWriter] = []

    async def first() -> None:
        async def handler(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
            kept.append(writer)

        server = await aio.start_server(pair.server.loop, handler, 7)
        await aio.open_connection(pair.client.loop, SERVER, 7)  # never closed
        while not kept:
            await asyncio.sleep(0.01)
        server.close()

    run(first())  # the asyncio loop of both ends is closed now

    sock = tcp_socket(kept[0])
    pair.server.call(lambda: sock.send(b"anyone there?"))
    deadline = time.monotonic() + 5
    while pair.server.call(lambda: sock.state) != TcpState.CLOSED:
        assert time.monotonic() < deadline, "the orphaned connection was not reset"
        time.sleep(0.01)
    assert pair.server.call(lambda: sock.connection.error) is not None  # reset by the client


def test_netloop_survives_many_short_connections(pair: Pair) -> None:
    async def tolerant_echo(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        with contextlib.suppress(ConnectionResetError):  # a third of the clients reset
            await echo(reader, writer)

    async def main() -> None:
        server = await aio.start_server(pair.server.loop, tolerant_echo, 7)
        for i in range(50):
            reader, writer = await aio.open_connection(pair.client.loop, SERVER, 7)
            if i % 3 == 0:
                writer.transport.abort()
                continue
            writer.write(os.urandom(i * 100))
            writer.write_eof()
            assert len(await read_all(reader)) == i * 100
            writer.close()
            await writer.wait_closed()
        server.close()
        server.abort_clients()
        await server.wait_closed()

    run(main())
