"""The event loop that drives a :class:`~wipstack.net.Stack` over several ports with real time.

A *port* binds one stack interface to a device: a TUN device (:class:`TunPort`) or a PPP
session on a byte link (:class:`PppPort`).  The loop waits with a selector until a device is
readable, a device can take queued output, the stack's next deadline comes, or another
thread hands it work through :meth:`NetLoop.call`; the stack itself is only ever touched
from the loop's thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from wipstack.net.stack import Stack

Clock = Callable[[], float]
T = TypeVar("T")

#: Datagrams read from one device per loop round, so one busy device cannot starve the others.
READ_BUDGET = 256


class Port(Protocol):
    """One device attached to the loop."""

    name: str

    def read_fds(self) -> list[int]:
        """File descriptors to watch for input."""

    def write_fds(self) -> list[int]:
        """File descriptors to watch for output space (those with a backlog)."""

    def on_readable(self, fd: int, now: float) -> None:
        """Input is waiting on ``fd``."""

    def on_writable(self, fd: int, now: float) -> None:
        """``fd`` can take output."""

    def flush(self, now: float) -> None:
        """Move what the stack queued for this port's interface to the device."""

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` is due (the port's own timers, e.g. PPP)."""

    def on_timer(self, now: float) -> None:
        """Run the port's due timers."""

    def close(self) -> None:
        """Release the device."""


class NetLoop:
    """Runs ``stack`` and its ports (see the module docstring)."""

    def __init__(self, stack: Stack, *, clock: Clock = time.monotonic) -> None:
        self.stack = stack
        self.clock = clock
        self.ports: list[Port] = []
        self._selector = selectors.DefaultSelector()
        self._registered: dict[int, int] = {}
        self._readers: dict[int, Callable[[], None]] = {}
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    # ---------------------------------------------------------------- set-up
    def add_port(self, port: Port) -> Port:
        """Attach a device."""
        self.ports.append(port)
        self._wake()
        return port

    def remove_port(self, port: Port) -> None:
        """Detach a device (the caller closes it)."""
        if port in self.ports:
            self.ports.remove(port)
        self._wake()

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        """Also wait on ``fd`` (a signal wake-up pipe, a control socket...)."""
        self._readers[fd] = callback

    def remove_reader(self, fd: int) -> None:
        """Stop waiting on ``fd``."""
        self._readers.pop(fd, None)

    @property
    def wakeup_fd(self) -> int:
        """Writing a byte here wakes the loop (e.g. for ``signal.set_wakeup_fd``)."""
        return self._wake_w

    # ------------------------------------------------------ cross-thread calls
    def call(self, function: Callable[[], T], timeout: float | None = 10.0) -> T:
        """Run ``function`` on the loop's thread and return its result (or raise its exception).

        From the loop's own thread (or with no thread running) it runs at once.
        """
        if self._thread is None or threading.current_thread() is self._thread:
            value = function()
            self._flush(self.clock())
            return value
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = function()
            except BaseException as exc:  # handed back to the caller's thread
                box["error"] = exc
            done.set()

        self._calls.put(run)
        self._wake()
        if not done.wait(timeout):
            raise TimeoutError("the network loop did not run the call in time")
        if "error" in box:
            raise box["error"]
        result: T = box["result"]
        return result

    def start(self) -> None:
        """Run the loop in a background thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("the loop is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._thread_main, name="wipstack-netloop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (it finishes its current round)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake()
        thread.join(10.0)
        self._thread = None

    def _thread_main(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(1.0)
        except BaseException as exc:  # kept for the owner; the thread must not die silently
            self.error = exc
            raise

    # ------------------------------------------------------------------ loop
    def run(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> bool:
        """Run in this thread until ``until()`` holds (True) or ``timeout`` passes (False)."""
        stop_at = None if timeout is None else self.clock() + timeout
        while True:
            if until is not None and until():
                return True
            now = self.clock()
            if stop_at is not None and now >= stop_at:
                return False
            self.step(None if stop_at is None else stop_at - now)

    def step(self, max_wait: float | None = 1.0) -> None:
        """Wait for one round of I/O, timers or calls, and handle it."""
        now = self.clock()
        self._flush(now)
        wait = max_wait
        deadline = self.next_deadline()
        if deadline is not None:
            until_deadline = max(0.0, deadline - now)
            wait = until_deadline if wait is None else min(wait, until_deadline)
        self._update_interest()
        events = self._selector.select(wait)
        now = self.clock()
        for key, mask in events:
            fd = key.fd
            if fd == self._wake_r:
                _drain(fd)
                continue
            if fd in self._readers:
                self._readers[fd]()
            for port in list(self.ports):
                if mask & selectors.EVENT_READ and fd in port.read_fds():
                    port.on_readable(fd, now)
                if mask & selectors.EVENT_WRITE and fd in port.write_fds():
                    port.on_writable(fd, now)
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                break
            call()
        self.run_timers(self.clock())
        self._flush(self.clock())

    def next_deadline(self) -> float | None:
        """The earliest deadline of the stack and the ports."""
        deadlines = [self.stack.next_deadline()] + [p.next_deadline() for p in self.ports]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def run_timers(self, now: float) -> None:
        """Fire every due timer of the stack and the ports."""
        deadline = self.stack.next_deadline()
        if deadline is not None and deadline <= now:
            self.stack.on_timer(now)
        for port in list(self.ports):
            deadline = port.next_deadline()
            if deadline is not None and deadline <= now:
                port.on_timer(now)

    def close(self) -> None:
        """Stop the thread, close every port and the loop's own descriptors."""
        self.stop()
        for port in self.ports:
            port.close()
        self.ports.clear()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> NetLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --------------------------------------------------------------- helpers
    def _flush(self, now: float) -> None:
        for port in list(self.ports):
            port.flush(now)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _update_interest(self) -> None:
        wanted: dict[int, int] = dict.fromkeys(self._readers, selectors.EVENT_READ)
        wanted[self._wake_r] = selectors.EVENT_READ
        for port in self.ports:
            for fd in port.read_fds():
                wanted[fd] = wanted.get(fd, 0) | selectors.EVENT_READ
            for fd in port.write_fds():
                wanted[fd] = wanted.get(fd, 0) | selectors.EVENT_WRITE
        for fd in list(self._registered):
            if fd not in wanted:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(fd)
                del self._registered[fd]
        for fd, mask in wanted.items():
            if fd not in self._registered:
                self._selector.register(fd, mask)
            elif self._registered[fd] != mask:
                self._selector.modify(fd, mask)
            self._registered[fd] = mask


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError, OSError):
        while os.read(fd, 512):
            pass
