"""asyncio streams over wipstack TCP: :func:`open_connection` and :func:`start_server`.

Modelled on :func:`asyncio.open_connection` / :func:`asyncio.start_server`, with the
:class:`~wipstack.drivers.netloop.NetLoop` that runs the stack as first argument::

    loop = NetLoop(stack); ...; loop.start()

    async def main() -> None:
        reader, writer = await open_connection(loop, "192.0.2.1", 7)
        writer.write(b"hello")
        await writer.drain()
        print(await reader.read(100))
        writer.close()
        await writer.wait_closed()

The readers are plain :class:`asyncio.StreamReader` objects; the writers are
:class:`WipStreamWriter` (the :class:`asyncio.StreamWriter` API) over a :class:`WipTransport`.

Threads.  The stack is only ever touched on the NetLoop's thread; asyncio runs in the
caller's thread.  Work goes to the NetLoop through a per-loop job queue whose wake-up pipe
is one of the loop's readers (installed once with ``loop.call``, never blocking afterwards);
results and TCP events come back with ``call_soon_threadsafe``.  Both directions are FIFO,
so a connection's data, EOF and errors reach asyncio in order.  Nothing raised by this
module's code escapes into the NetLoop's thread.  The NetLoop must be running
(``loop.start()``) for as long as connections are in use.

Flow control, both ways:

* Reading is a pull model: the NetLoop side ``recv``\\ s at most ``limit`` octets at a time and
  hands over one chunk at a time (the next only once asyncio has fed it to the reader).
  When the reader's buffer exceeds ``2 * limit`` the reader pauses its transport (asyncio's
  own rule) and no more is taken from the TCP socket: the data waits in the TCP receive
  buffer and the advertised window closes.  Reading the buffer down to ``limit`` resumes.
  The reader never holds more than ``3 * limit`` octets.
* Writing: ``write()`` appends to a buffer that the NetLoop side moves into the TCP send
  buffer as space allows (woken by ``SendSpace`` events, which the TCP layer sends once half
  its send buffer is free).  As with asyncio's transports, once that buffer (the octets the
  TCP send buffer could not take) goes above the high-water mark (64 KiB) writing counts as
  paused until it is back at the low-water mark (16 KiB; see
  :meth:`WipTransport.set_write_buffer_limits`), and ``drain()`` waits while paused.
  Memory stays bounded by the TCP send buffer plus the high-water mark plus one ``write()``.

Errors of a connection map to the built-in exceptions: ECONNREFUSED →
ConnectionRefusedError, ECONNRESET → ConnectionResetError, ETIMEDOUT → TimeoutError,
ECONNABORTED → ConnectionAbortedError (each with its ``errno``).  A host name that does not
resolve raises :class:`socket.gaierror`.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from wipstack.drivers.aio_transport import (
    DEFAULT_LIMIT,
    Buffer,
    WipTransport,
    _Dispatcher,
    _dispatcher_for,
    _post,
    _resolve,
    _run_on,
    connection_error,
    logger,
)
from wipstack.drivers.netloop import NetLoop
from wipstack.tcp.socket import TcpServer, TcpSocket

__all__ = [
    "DEFAULT_LIMIT",
    "WipServer",
    "WipServerSocket",
    "WipStreamWriter",
    "WipTransport",
    "connection_error",
    "open_connection",
    "start_server",
]

ClientConnectedCallback = Callable[[asyncio.StreamReader, "WipStreamWriter"], Awaitable[None] | None]


class WipStreamWriter:
    """The :class:`asyncio.StreamWriter` API over a :class:`WipTransport`."""

    def __init__(self, transport: WipTransport, reader: asyncio.StreamReader) -> None:
        self._transport = transport
        self._reader = reader

    @property
    def transport(self) -> WipTransport:
        return self._transport

    def write(self, data: Buffer) -> None:
        """Buffer ``data`` (never blocks; follow with :meth:`drain`)."""
        self._transport.write(data)

    def writelines(self, data: Iterable[Buffer]) -> None:
        self._transport.writelines(data)

    def write_eof(self) -> None:
        """Half-close: the peer reads EOF after the data; reading goes on."""
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        """Flush the buffer, then close the connection (follow with :meth:`wait_closed`)."""
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed; raises the connection's error, if any."""
        await self._transport._wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_nodelay(self, value: bool = True) -> None:
        """TCP_NODELAY: Nagle's algorithm off (``True``) or on."""
        self._transport._set_nodelay(value)

    async def drain(self) -> None:
        """Wait while writing is paused: from above the high-water mark back to the low-water mark.

        Octets only stay in the write buffer while the TCP send buffer is full.

        Raises the connection's error, or ConnectionResetError once the connection is gone.
        """
        exc = self._reader.exception()
        if exc is not None:
            raise exc
        await self._transport._drain()

    async def start_tls(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("TLS is not supported over wipstack streams")

    def __repr__(self) -> str:
        return f"<WipStreamWriter transport={self._transport!r}>"


# --------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------


async def open_connection(
    loop: NetLoop,
    host: str,
    port: int,
    *,
    limit: int = DEFAULT_LIMIT,
    nodelay: bool = False,
    local_port: int = 0,
) -> tuple[asyncio.StreamReader, WipStreamWriter]:
    """Connect over wipstack TCP; like :func:`asyncio.open_connection`.

    ``host`` is a dotted quad or a name for the stack's DNS client.  Raises
    ConnectionRefusedError, TimeoutError, OSError (ENETUNREACH: no route) or
    socket.gaierror.  Cancelling resets the half-open connection.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of 1..65535")
    aloop = asyncio.get_running_loop()
    dispatcher = await _dispatcher_for(loop)
    address = await _resolve(loop, dispatcher, host)
    transport = WipTransport(loop, dispatcher, aloop, limit=limit)
    reader = transport._aio_setup()
    connected: asyncio.Future[None] = aloop.create_future()
    transport._connect_waiter = connected
    dispatcher.submit(lambda: transport._nl_connect(address, port, local_port, nodelay))
    try:
        await connected
    except asyncio.CancelledError:
        transport.abort()
        raise
    except OSError as exc:
        if isinstance(exc, ConnectionRefusedError | TimeoutError) and exc.errno is not None:
            raise type(exc)(exc.errno, f"Connect call failed ({host!r}, {port}): {exc.strerror}") from None
        raise
    return reader, WipStreamWriter(transport, reader)


class WipServerSocket:
    """What :attr:`WipServer.sockets` lists: the listening endpoint, socket-like."""

    family = socket.AF_INET
    type = socket.SOCK_STREAM

    def __init__(self, host: str, port: int) -> None:
        self._name = (host, port)

    def getsockname(self) -> tuple[str, int]:
        return self._name

    def __repr__(self) -> str:
        return f"<WipServerSocket {self._name[0]}:{self._name[1]}>"


class WipServer:
    """A listening wipstack TCP port serving ``client_connected_cb``; like :class:`asyncio.Server`."""

    def __init__(
        self,
        netloop: NetLoop,
        dispatcher: _Dispatcher,
        aloop: asyncio.AbstractEventLoop,
        client_connected_cb: ClientConnectedCallback,
        host: str,
        port: int,
        *,
        limit: int,
        backlog: int | None,
        nodelay: bool,
    ) -> None:
        self._netloop = netloop
        self._dispatcher = dispatcher
        self._aloop = aloop
        self._cb = client_connected_cb
        self._host = host
        self._port = port
        self._limit = limit
        self._backlog = backlog
        self._nodelay = nodelay
        self._tcp_server: TcpServer | None = None  # the NetLoop's thread
        self._serving = True
        self._listener_closed = False
        self._clients: set[WipTransport] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._serving_forever: asyncio.Future[None] | None = None

    # ----------------------------------------------------------- NetLoop side
    def _nl_listen(self) -> None:
        server = TcpServer(self._netloop.stack.tcp, self._port, host=self._host, backlog=self._backlog)
        server.on_accept = self._nl_accept
        self._tcp_server = server

    def _nl_accept(self, sock: TcpSocket) -> None:
        try:
            transport = WipTransport(self._netloop, self._dispatcher, self._aloop, limit=self._limit)
            transport._nl_attach(sock)
            if self._nodelay:
                sock.nodelay = True
            transport._post(self._aio_accept, transport)
        except Exception:  # never into the NetLoop's thread
            logger.exception("wipstack.aio: accepting a connection failed")
            sock.abort(self._netloop.clock())

    def _nl_close(self) -> None:
        server = self._tcp_server
        if server is not None and not server.listener.closed:
            server.close(self._netloop.clock())
        _post(self._aloop, self._aio_listener_closed)

    # ----------------------------------------------------------- asyncio side
    def _aio_accept(self, transport: WipTransport) -> None:
        reader = transport._aio_setup()
        if not self._serving:  # closed meanwhile: as a listening socket closed with a backlog
            transport.abort()
            return
        self._clients.add(transport)
        transport._on_lost = self._detach
        writer = WipStreamWriter(transport, reader)
        try:
            result = self._cb(reader, writer)
        except Exception:
            logger.exception("wipstack.aio: client_connected_cb failed")
            transport.close()
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda t: self._handler_done(t, transport))

    def _handler_done(self, task: asyncio.Future[Any], transport: WipTransport) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._aloop.call_exception_handler(
                {"message": "Unhandled exception in client_connected_cb", "exception": exc, "transport": transport}
            )
            transport.close()

    def _detach(self, transport: WipTransport) -> None:
        self._clients.discard(transport)
        self._wakeup()

    def _aio_listener_closed(self) -> None:
        self._listener_closed = True
        self._wakeup()

    def _wakeup(self) -> None:
        if self._listener_closed and not self._clients:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()

    # ----------------------------------------------------------- asyncio.Server API
    @property
    def sockets(self) -> tuple[WipServerSocket, ...]:
        """The listening endpoint (empty once closed), as asyncio's ``Server.sockets``."""
        return (WipServerSocket(self._host, self._port),) if self._serving else ()

    @property
    def port(self) -> int:
        return self._port

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._aloop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        """Already serving since :func:`start_server` (kept for the asyncio API)."""

    def close(self) -> None:
        """Stop listening (connections not yet accepted are reset); open connections stay."""
        if not self._serving:
            return
        self._serving = False
        self._dispatcher.submit(self._nl_close)
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()

    def close_clients(self) -> None:
        """Close every connection this server accepted."""
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        """Reset every connection this server accepted."""
        for transport in list(self._clients):
            transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection it accepted has closed."""
        if self._listener_closed and not self._clients:
            return
        waiter: asyncio.Future[None] = self._aloop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def serve_forever(self) -> None:
        """Serve until cancelled (or :meth:`close`, which cancels this); then close and wait."""
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if not self._serving:
            raise RuntimeError(f"server {self!r} is closed")
        self._serving_forever = self._aloop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    async def __aenter__(self) -> WipServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<WipServer {self._host}:{self._port} {'serving' if self._serving else 'closed'}>"


async def start_server(
    loop: NetLoop,
    client_connected_cb: ClientConnectedCallback,
    port: int,
    *,
    host: str = "0.0.0.0",
    limit: int = DEFAULT_LIMIT,
    backlog: int | None = None,
    nodelay: bool = False,
) -> WipServer:
    """Listen on wipstack TCP ``host:port``; like :func:`asyncio.start_server`.

    ``client_connected_cb(reader, writer)`` runs on the calling asyncio loop for each
    connection; a coroutine function's coroutine becomes a task.  Raises OSError
    (EADDRINUSE) when the port is taken.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of 1..65535")
    if limit <= 0:
        raise ValueError("limit must be positive")
    aloop = asyncio.get_running_loop()
    dispatcher = await _dispatcher_for(loop)
    server = WipServer(
        loop, dispatcher, aloop, client_connected_cb, host, port, limit=limit, backlog=backlog, nodelay=nodelay
    )
    try:
        await _run_on(dispatcher, aloop, server._nl_listen)
    except asyncio.CancelledError:
        server.close()
        raise
    return server
