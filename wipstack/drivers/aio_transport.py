"""The asyncio side of the adapter: the bridge between the network loop's thread and asyncio's
(a job dispatcher, futures resolved with ``call_soon_threadsafe``, name lookups) and
:class:`WipTransport`, an ``asyncio.Transport`` over a wipstack TCP socket with flow control
in both directions.  :mod:`wipstack.drivers.aio` builds the streams API on it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address
from typing import Any, TypeVar

from wipstack.dns import parse_dotted_quad
from wipstack.drivers.netloop import NetLoop
from wipstack.tcp.events import Closed, Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace, TcpEvent
from wipstack.tcp.socket import TcpSocket
from wipstack.tcp.state import SENDING

logger = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[], None]
Buffer = bytes | bytearray | memoryview

#: The reader's default limit (as asyncio's): the line length limit and half the pause threshold.
DEFAULT_LIMIT = 2**16
#: Default write buffer limits (as asyncio's selector transports).
DEFAULT_HIGH_WATER = 64 * 1024
#: How often a pending host name lookup is polled.
_DNS_POLL = 0.01

_EXCEPTIONS: dict[str, type[OSError]] = {
    "ECONNREFUSED": ConnectionRefusedError,
    "ECONNRESET": ConnectionResetError,
    "ETIMEDOUT": TimeoutError,
    "ECONNABORTED": ConnectionAbortedError,
}


def connection_error(errno_name: str, reason: str) -> OSError:
    """The built-in exception for a ``ConnectionFailed`` event (``errno`` set)."""
    cls = _EXCEPTIONS.get(errno_name, ConnectionError)
    return cls(getattr(errno, errno_name, 0), reason)


def _address_text(endpoint: tuple[bytes, int]) -> tuple[str, int]:
    return str(IPv4Address(endpoint[0])), endpoint[1]


# --------------------------------------------------------------------------
# jobs for the NetLoop's thread
# --------------------------------------------------------------------------


class _Dispatcher:
    """A job queue run on a NetLoop's thread, woken through a pipe the loop watches.

    ``submit`` never blocks; jobs run in submission order.  The dispatcher holds no
    reference to its loop (the loop's reader table holds the dispatcher).
    """

    def __init__(self) -> None:
        self._jobs: collections.deque[Job] = collections.deque()
        self._lock = threading.Lock()
        self._signalled = False
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)

    def submit(self, job: Job) -> None:
        """Queue ``job`` for the NetLoop's thread (any thread)."""
        with self._lock:
            self._jobs.append(job)
            if self._signalled:
                return
            self._signalled = True
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, b"\0")

    def run(self) -> None:
        """The loop's reader callback: run every queued job (the NetLoop's thread)."""
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.read_fd, 4096):
                pass
        while True:
            with self._lock:
                if not self._jobs:
                    self._signalled = False
                    return
                batch = list(self._jobs)
                self._jobs.clear()
            for job in batch:
                try:
                    job()
                except Exception:  # never into the NetLoop's thread
                    logger.exception("wipstack.aio: job %r failed on the network loop", job)

    def close(self) -> None:
        for fd in (self.read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


_dispatchers: weakref.WeakKeyDictionary[NetLoop, _Dispatcher] = weakref.WeakKeyDictionary()
_dispatchers_lock = threading.Lock()


def _install_dispatcher(netloop: NetLoop) -> _Dispatcher:
    """The loop's dispatcher, installed on first use (blocks on ``loop.call`` once)."""
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(netloop)
        if dispatcher is None:
            dispatcher = _Dispatcher()
            new = dispatcher
            netloop.call(lambda: netloop.add_reader(new.read_fd, new.run))
            weakref.finalize(netloop, new.close)
            _dispatchers[netloop] = dispatcher
        return dispatcher


async def _dispatcher_for(netloop: NetLoop) -> _Dispatcher:
    dispatcher = _dispatchers.get(netloop)
    if dispatcher is not None:
        return dispatcher
    return await asyncio.to_thread(_install_dispatcher, netloop)


def _post(aloop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> bool:
    """``call_soon_threadsafe`` that reports a closed asyncio loop instead of raising."""
    try:
        aloop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the event loop is closed: its side of the connection is gone
        return False
    return True


def _run_on(dispatcher: _Dispatcher, aloop: asyncio.AbstractEventLoop, function: Callable[[], T]) -> asyncio.Future[T]:
    """Run ``function`` on the NetLoop's thread; the future resolves with its result."""
    future: asyncio.Future[T] = aloop.create_future()

    def settle_value(value: T) -> None:
        if not future.done():
            future.set_result(value)

    def settle_error(exc: BaseException) -> None:
        if not future.done():
            future.set_exception(exc)

    def job() -> None:
        try:
            value = function()
        except Exception as exc:
            _post(aloop, settle_error, exc)
        else:
            _post(aloop, settle_value, value)

    dispatcher.submit(job)
    return future


async def _resolve(netloop: NetLoop, dispatcher: _Dispatcher, host: str) -> bytes:
    """A dotted quad, or the first address of a name resolved by the stack's DNS client."""
    packed = parse_dotted_quad(host)
    if packed is not None:
        return packed
    aloop = asyncio.get_running_loop()
    dns = netloop.stack.dns
    handle = await _run_on(dispatcher, aloop, lambda: dns.resolve(host, netloop.clock()))
    try:
        while (result := await _run_on(dispatcher, aloop, lambda: dns.result(handle))) is None:
            await asyncio.sleep(_DNS_POLL)
    except asyncio.CancelledError:
        dispatcher.submit(lambda: dns.cancel(handle))
        raise
    if result.error is not None or not result.addresses:
        reason = result.error.value if result.error is not None else "no address"
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: {reason}")
    return result.addresses[0]


# --------------------------------------------------------------------------
# one connection
# --------------------------------------------------------------------------


class WipTransport(asyncio.Transport):
    """One TCP connection bridged between the NetLoop's thread and an asyncio loop.

    The public methods are asyncio's transport API and are called on the asyncio thread.
    Methods named ``_nl_*`` run only on the NetLoop's thread, ``_aio_*`` only on the asyncio
    thread; the write buffer and its flags are shared under ``_lock``.
    """

    def __init__(
        self, netloop: NetLoop, dispatcher: _Dispatcher, aloop: asyncio.AbstractEventLoop, *, limit: int
    ) -> None:
        super().__init__()
        if limit <= 0:
            raise ValueError("limit must be positive")
        self._netloop = netloop
        self._dispatcher = dispatcher
        self._aloop = aloop
        self._limit = limit
        self._extra_info: dict[str, Any] = {}
        # ---- shared, under _lock ----
        self._lock = threading.Lock()
        self._wbuf = bytearray()
        self._flush_pending = False
        self._eof_requested = False
        self._close_requested = False
        self._write_paused = False  # above high water, until back at low water (asyncio's latch)
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_HIGH_WATER // 4
        # ---- the NetLoop's thread ----
        self._sock: TcpSocket | None = None
        self._nl_paused = False  # the reader asked for no more data
        self._nl_inflight = False  # a chunk was posted and not yet fed
        self._nl_peer_eof = False
        self._nl_eof_posted = False
        self._nl_stop_reading = False  # close() or abort(): deliver nothing more
        self._nl_failed = False  # ConnectionFailed seen
        self._nl_shut = False  # shutdown() issued
        self._nl_closed = False  # close() or abort() issued
        self._nl_orphaned = False  # the asyncio loop is gone
        # ---- the asyncio thread ----
        self._reader: asyncio.StreamReader | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        self._connect_waiter: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._reading = True
        self._closing = False
        self._lost = False
        self._exc: Exception | None = None
        self._eof_written = False
        self._eof_fed = False
        self._on_lost: Callable[[WipTransport], None] | None = None

    # ----------------------------------------------------------- asyncio side: set-up
    def _aio_setup(self) -> asyncio.StreamReader:
        if self._reader is None:
            self._reader = asyncio.StreamReader(limit=self._limit, loop=self._aloop)
            self._reader.set_transport(self)
            self._closed_waiter = self._aloop.create_future()
        return self._reader

    def _submit(self, job: Job) -> None:
        self._dispatcher.submit(job)

    # ----------------------------------------------------------- BaseTransport
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``peername`` and ``sockname`` as ``(address, port)``; ``wipstack_socket`` is the
        :class:`TcpSocket` (touch it only on the NetLoop's thread, e.g. through ``loop.call``)."""
        return self._extra_info.get(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """Send what is buffered, then close (FIN; RST if received data was left unread)."""
        if self._closing:
            return
        self._closing = True
        with self._lock:
            self._close_requested = True
            self._flush_pending = True
        self._submit(self._nl_flush)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise NotImplementedError("a WipTransport feeds its StreamReader directly")

    def get_protocol(self) -> asyncio.BaseProtocol:
        raise NotImplementedError("a WipTransport feeds its StreamReader directly")

    # ----------------------------------------------------------- ReadTransport
    def is_reading(self) -> bool:
        return self._reading and not self.is_closing()

    def pause_reading(self) -> None:
        """Take no more data from the TCP socket (its window closes as its buffer fills)."""
        if self._reading:
            self._reading = False
            self._submit(lambda: self._nl_set_paused(True))

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._submit(lambda: self._nl_set_paused(False))

    # ----------------------------------------------------------- WriteTransport
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        with self._lock:
            self._high, self._low = high, low
            size = len(self._wbuf)
            if size > high:
                self._write_paused = True
            elif size <= low and self._write_paused:
                self._write_paused = False
                resumed = True
            else:
                resumed = False
        if resumed:
            self._aio_drained()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        with self._lock:
            return self._low, self._high

    def get_write_buffer_size(self) -> int:
        """Octets written and not yet taken by the TCP send buffer."""
        with self._lock:
            return len(self._wbuf)

    def write(self, data: Buffer) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._lost or self._closing:
            logger.debug("wipstack.aio: write() on a closed connection ignored")
            return
        with self._lock:
            self._wbuf += data
            if len(self._wbuf) > self._high:
                self._write_paused = True
            schedule = not self._flush_pending
            self._flush_pending = True
        if schedule:
            self._submit(self._nl_flush)

    def writelines(self, list_of_data: Iterable[Buffer]) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        """Half-close: FIN once everything written is in the TCP send buffer."""
        if self._eof_written or self._closing or self._lost:
            return
        self._eof_written = True
        with self._lock:
            self._eof_requested = True
            self._flush_pending = True
        self._submit(self._nl_flush)

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        """Reset the connection (RST), dropping buffered data."""
        self._closing = True
        self._submit(self._nl_abort)

    # ----------------------------------------------------------- asyncio side: helpers
    def _set_nodelay(self, value: bool) -> None:
        self._submit(lambda: self._nl_set_nodelay(value))

    async def _drain(self) -> None:
        if self.is_closing():
            await asyncio.sleep(0)  # as asyncio: let a pending connection-lost report land
        while True:
            if self._exc is not None:
                raise self._exc
            if self._lost:
                raise ConnectionResetError("Connection lost")
            with self._lock:
                if not self._write_paused:
                    return
            waiter: asyncio.Future[None] = self._aloop.create_future()
            self._drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._drain_waiters.remove(waiter)

    async def _wait_closed(self) -> None:
        if self._closed_waiter is not None:
            await asyncio.shield(self._closed_waiter)
        if self._exc is not None:
            raise self._exc

    # ----------------------------------------------------------- asyncio side: reports
    def _aio_connected(self) -> None:
        waiter = self._connect_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _aio_feed(self, data: bytes) -> None:
        reader = self._reader
        if reader is not None and not self._eof_fed and self._exc is None:
            reader.feed_data(data)  # may pause_reading() (queued before the ack below)
        self._submit(self._nl_ack)

    def _aio_eof(self) -> None:
        if self._reader is not None and not self._eof_fed:
            self._eof_fed = True
            self._reader.feed_eof()

    def _aio_drained(self) -> None:
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _aio_closed(self) -> None:
        """Our close() or abort() reached the TCP socket: the reader ends, as with asyncio."""
        if self._exc is None:
            self._aio_eof()
        self._aio_lost(None)

    def _aio_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        waiter = self._connect_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc or ConnectionResetError("connection closed while opening"))
        if exc is not None:  # the NetLoop side already told our own close()/abort() from errors
            self._exc = exc
            if self._reader is not None:
                self._reader.set_exception(exc)
        self._aio_drained()
        if self._closed_waiter is not None and not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self)

    # ----------------------------------------------------------- NetLoop side
    def _post(self, callback: Callable[..., object], *args: object) -> None:
        if self._nl_orphaned:
            return
        if not _post(self._aloop, callback, *args):
            self._nl_orphaned = True  # nobody will read or write: reset rather than linger
            if not self._nl_closed:
                self._nl_abort()

    def _nl_attach(self, sock: TcpSocket) -> None:
        self._sock = sock
        sock.on_event = self._nl_event
        self._extra_info = {
            "peername": _address_text(sock.remote),
            "sockname": _address_text(sock.local),
            "wipstack_socket": sock,
        }

    def _nl_connect(self, address: bytes, port: int, local_port: int, nodelay: bool) -> None:
        if self._nl_closed:  # cancelled before this job ran
            return
        try:
            sock = TcpSocket.connect(
                self._netloop.stack.tcp, address, port, self._netloop.clock(), local_port=local_port
            )
        except Exception as exc:
            self._post(self._aio_lost, exc)
            return
        self._nl_attach(sock)
        if nodelay:
            sock.nodelay = True

    def _nl_event(self, sock: TcpSocket, event: TcpEvent) -> None:
        """The TcpSocket's on_event callback (inside the TCP layer's flush)."""
        try:
            if isinstance(event, DataAvailable):
                self._nl_pull()
            elif isinstance(event, SendSpace):
                self._nl_flush()
            elif isinstance(event, PeerClosed):
                self._nl_peer_eof = True
                self._nl_pull()
            elif isinstance(event, Connected):
                self._post(self._aio_connected)
            elif isinstance(event, ConnectionFailed):
                self._nl_fail(event)
            elif isinstance(event, Closed):
                self._nl_peer_eof = True  # nothing more can arrive
                self._nl_pull()
                self._post(self._aio_lost, None)
        except Exception:  # never into the NetLoop's thread
            logger.exception("wipstack.aio: handling %r failed", event)

    def _nl_fail(self, event: ConnectionFailed) -> None:
        self._nl_failed = True
        with self._lock:
            self._wbuf.clear()
            self._write_paused = False  # the report below wakes drain(), which raises
        if self._nl_closed:
            self._post(self._aio_lost, None)  # our own close()/abort(): not an error
        else:
            self._post(self._aio_lost, connection_error(event.errno_name, event.reason))

    def _nl_pull(self) -> None:
        """Hand the reader one chunk (or the EOF) when it has room and none is in flight."""
        sock = self._sock
        if (
            sock is None
            or self._nl_failed
            or self._nl_stop_reading
            or self._nl_inflight
            or self._nl_paused
            or self._nl_eof_posted
        ):
            return
        available = sock.readable
        if available:
            data = sock.recv(min(available, self._limit))
            self._nl_inflight = True
            self._post(self._aio_feed, data)
        elif self._nl_peer_eof:
            self._nl_eof_posted = True
            self._post(self._aio_eof)

    def _nl_set_nodelay(self, value: bool) -> None:
        if self._sock is not None:
            self._sock.nodelay = value

    def _nl_ack(self) -> None:
        self._nl_inflight = False
        self._nl_pull()

    def _nl_set_paused(self, paused: bool) -> None:
        self._nl_paused = paused
        if not paused:
            self._nl_pull()

    def _nl_flush(self) -> None:
        """Move buffered data into the TCP send buffer; then FIN or close when asked and empty."""
        sock = self._sock
        if sock is None:
            return
        with self._lock:
            self._flush_pending = False
            if self._nl_failed or self._nl_closed:
                self._wbuf.clear()
            elif self._wbuf:
                if sock.state in SENDING:
                    with memoryview(self._wbuf) as view:
                        sent = sock.send(view)
                    if sent:
                        del self._wbuf[:sent]
                else:
                    self._wbuf.clear()  # the connection can no longer send
            remaining = len(self._wbuf)
            wake = self._write_paused and remaining <= self._low
            if wake:
                self._write_paused = False
            close, eof = self._close_requested, self._eof_requested
        if wake:
            self._post(self._aio_drained)
        if close:
            self._nl_stop_reading = True
        if remaining or self._nl_failed or self._nl_closed:
            return
        if close:
            self._nl_closed = True
            sock.close(self._netloop.clock())
            self._post(self._aio_closed)
        elif eof and not self._nl_shut:
            self._nl_shut = True
            sock.shutdown(self._netloop.clock())

    def _nl_abort(self) -> None:
        self._nl_stop_reading = True
        with self._lock:
            self._wbuf.clear()
            self._write_paused = False
        if not self._nl_closed:
            self._nl_closed = True
            if self._sock is not None:
                self._sock.abort(self._netloop.clock())
        self._post(self._aio_closed)

    def __repr__(self) -> str:
        state = "closed" if self._lost else "closing" if self._closing else "open"
        peer = self._extra_info.get("peername")
        return f"<WipTransport {state}{f' peer={peer[0]}:{peer[1]}' if peer else ''}>"
