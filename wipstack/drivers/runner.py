"""The event loop that drives a sans-I/O endpoint over a byte link with real time.

It waits on the link with a selector until input arrives, output space frees up, or the
endpoint's next deadline comes, whichever is first, so timers fire on time without polling.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable
from typing import Protocol

from wipstack.drivers.link import ByteLink

Clock = Callable[[], float]

MAX_PENDING_OUTPUT = 1 << 20  # bytes held for a slow link before we stop reading input


class Endpoint(Protocol):
    """What the runner drives: a PppSession or anything with the same sans-I/O surface."""

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Bytes from the link."""

    def bytes_to_send(self) -> bytes:
        """Bytes for the link."""

    def next_deadline(self) -> float | None:
        """When ``on_timer`` is due."""

    def on_timer(self, now: float) -> None:
        """Run due timers."""

    def lower_down(self, now: float) -> None:
        """The link ended."""


class Runner:
    """Moves bytes between ``link`` and ``endpoint`` and fires the endpoint's timers."""

    def __init__(self, endpoint: Endpoint, link: ByteLink, *, clock: Clock = time.monotonic) -> None:
        self.endpoint = endpoint
        self.link = link
        self.clock = clock
        self.eof = False
        self.bytes_in = 0
        self.bytes_out = 0
        self._pending = bytearray()
        self._selector = selectors.DefaultSelector()
        self._registered: dict[int, int] = {}
        self._readers: dict[int, Callable[[], None]] = {}

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        """Also wait on ``fd`` and call ``callback`` when it is readable (e.g. a wake-up pipe)."""
        self._readers[fd] = callback

    def backlog(self) -> int:
        """Bytes produced by the endpoint and not yet written to the link."""
        self._collect_output()
        return len(self._pending)

    def close(self) -> None:
        """Release the selector (the link belongs to the caller)."""
        self._selector.close()

    def run(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> bool:
        """Run until ``until()`` is true (returns True), the link ends or ``timeout`` passes (False)."""
        stop_at = None if timeout is None else self.clock() + timeout
        while True:
            if until is not None and until():
                return True
            now = self.clock()
            if stop_at is not None and now >= stop_at:
                return False
            if self.eof and not self._pending and self.endpoint.next_deadline() is None:
                return until is None
            self.step(None if stop_at is None else stop_at - now)

    def step(self, max_wait: float | None = 1.0) -> None:
        """Wait for one round of I/O or timers and handle it."""
        self._collect_output()
        now = self.clock()
        wait = max_wait
        deadline = self.endpoint.next_deadline()
        if deadline is not None:
            until_deadline = max(0.0, deadline - now)
            wait = until_deadline if wait is None else min(wait, until_deadline)
        self._update_interest()
        events = self._selector.select(wait) if self._registered else _sleep(wait)
        for key, mask in events:
            if key.fd in self._readers:
                self._readers[key.fd]()
            if mask & selectors.EVENT_READ and key.fd == self.link.read_fd:
                self._read()
            if mask & selectors.EVENT_WRITE and key.fd == self.link.write_fd:
                self._write()
        now = self.clock()
        deadline = self.endpoint.next_deadline()
        if deadline is not None and now >= deadline:
            self.endpoint.on_timer(now)
        self._collect_output()
        self._write()

    def _read(self) -> None:
        try:
            data = self.link.read()
        except BlockingIOError:
            return
        if not data:
            self.eof = True
            self.endpoint.lower_down(self.clock())
            return
        self.bytes_in += len(data)
        self.endpoint.receive_bytes(data, self.clock())

    def _collect_output(self) -> None:
        out = self.endpoint.bytes_to_send()
        if out:
            self._pending += out

    def _write(self) -> None:
        if not self._pending or self.eof:
            if self.eof:
                self._pending.clear()
            return
        try:
            written = self.link.write(bytes(self._pending))
        except (BrokenPipeError, ConnectionResetError):
            self._pending.clear()
            self.eof = True
            self.endpoint.lower_down(self.clock())
            return
        self.bytes_out += written
        del self._pending[:written]

    def _update_interest(self) -> None:
        wanted: dict[int, int] = dict.fromkeys(self._readers, selectors.EVENT_READ)
        if not self.eof and len(self._pending) < MAX_PENDING_OUTPUT:
            wanted[self.link.read_fd] = wanted.get(self.link.read_fd, 0) | selectors.EVENT_READ
        if self._pending and not self.eof:
            wanted[self.link.write_fd] = wanted.get(self.link.write_fd, 0) | selectors.EVENT_WRITE
        for fd in list(self._registered):
            if fd not in wanted:
                self._selector.unregister(fd)
                del self._registered[fd]
        for fd, mask in wanted.items():
            if fd not in self._registered:
                self._selector.register(fd, mask)
            elif self._registered[fd] != mask:
                self._selector.modify(fd, mask)
            self._registered[fd] = mask


def _sleep(seconds: float | None) -> list[tuple[selectors.SelectorKey, int]]:
    time.sleep(0.05 if seconds is None else min(seconds, 0.05))
    return []
