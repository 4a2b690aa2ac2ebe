"""Drive a PppLinkDriver in a background thread while a test waits on something else.

Everything that touches the session runs in the driver's thread: tests submit work with
``call(fn)``, which wakes the loop through a pipe and waits for the result.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from wipstack.drivers.ppp_link import PppLinkDriver

T = TypeVar("T")


class ThreadedDriver:
    """``driver`` opened and run in its own thread until ``stop()``."""

    def __init__(self, driver: PppLinkDriver) -> None:
        self.driver = driver
        self.error: BaseException | None = None
        self._calls: queue.Queue[tuple[Callable[[], Any], queue.Queue[tuple[bool, Any]]]] = queue.Queue()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        driver.runner.add_reader(self._wake_r, self._drain_wakeups)
        self._thread = threading.Thread(target=self._main, name="wipstack-driver", daemon=True)

    def __enter__(self) -> ThreadedDriver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _main(self) -> None:
        try:
            self.driver.open()
            while not self._stop.is_set():
                self.driver.runner.run(lambda: self._stop.is_set() or not self._calls.empty(), None)
                self.driver.pump()
                if self._calls.empty() and not self._stop.is_set():
                    self._stop.wait(0.02)  # the link ended and no timer is left: idle politely
                while not self._calls.empty():
                    fn, reply = self._calls.get()
                    try:
                        reply.put((True, fn()))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        reply.put((False, exc))
                    self.driver.pump()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run ``fn`` in the driver thread and return its result."""
        reply: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._calls.put((fn, reply))
        os.write(self._wake_w, b"x")
        ok, value = reply.get(timeout=timeout)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def wait_for(self, predicate: Callable[[PppLinkDriver], bool], timeout: float) -> bool:
        """Poll ``predicate(driver)`` (evaluated in the driver thread) until true or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call(lambda: predicate(self.driver)):
                return True
            if self.error is not None:
                raise self.error
            time.sleep(0.02)
        return bool(self.call(lambda: predicate(self.driver)))

    def stop(self) -> None:
        """End the loop and release the driver; re-raise a failure of the driver thread."""
        if not self._stop.is_set():
            self._stop.set()
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=10)
            self.driver.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
        if self.error is not None:
            raise self.error
