"""Run a PppSession over a byte link with real time, reporting progress pppd-style.

``PppLinkDriver`` is what the CLI, the demo and the interop tests use: it owns a ``Runner``,
drains the session's events into a log and a list, and offers blocking helpers such as
``wait_ipcp_up`` and ``terminate``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from wipstack.drivers.link import ByteLink
from wipstack.drivers.runner import Clock, Runner
from wipstack.ppp.config import PppConfig
from wipstack.ppp.events import (
    AuthFailed,
    AuthSucceeded,
    IpcpDown,
    IpcpUp,
    LinkDead,
    LinkTerminated,
    LinkUp,
    PppEvent,
)
from wipstack.ppp.session import PppSession

Logger = Callable[[str], None]


def describe_event(event: PppEvent) -> list[str]:
    """Log lines for an event, worded like pppd's where pppd has a message for it."""
    if isinstance(event, LinkUp):
        link = event.link
        flags = " ".join(f for f, on in (("pcomp", link.tx_pfc), ("accomp", link.tx_acfc)) if on)
        return [
            f"LCP up: mru {link.mru}, peer mru {link.peer_mru}, asyncmap rx 0x{link.rx_accm:x} "
            f"tx 0x{link.tx_accm:x}{', ' + flags if flags else ''}, "
            f"magic 0x{link.local_magic:x}, peer magic 0x{link.peer_magic:x}"
        ]
    if isinstance(event, AuthSucceeded):
        if event.peer:
            return [f"PAP peer authentication succeeded for {event.peer_id}"]
        return ["PAP authentication succeeded"]
    if isinstance(event, AuthFailed):
        return [event.reason if event.peer else f"PAP authentication failed: {event.reason}"]
    if isinstance(event, IpcpUp):
        result = event.result
        lines = [f"local  IP address {result.local_address}", f"remote IP address {result.peer_address}"]
        for label, server in zip(("primary  ", "secondary"), result.dns_servers, strict=False):
            lines.append(f"{label} DNS address {server}")
        return lines
    if isinstance(event, IpcpDown):
        return ["IPCP down"]
    if isinstance(event, LinkDead):
        return [event.reason, "Serial link appears to be disconnected."]
    if isinstance(event, LinkTerminated):
        return [f"Connection terminated: {event.reason}"]
    return []


class PppLinkDriver:
    """A PppSession on a ByteLink, driven with real time."""

    def __init__(
        self,
        config: PppConfig,
        link: ByteLink,
        *,
        seed: int | None = None,
        log: Logger | None = None,
        trace_packets: bool = True,
        clock: Clock = time.monotonic,
    ) -> None:
        self.log = log or (lambda line: None)
        self.session = PppSession(
            config,
            random.Random(seed),
            tracer=self.log if (log is not None and trace_packets) else None,
        )
        self.link = link
        self.clock = clock
        self.runner = Runner(self.session, link, clock=clock)
        self.events: list[PppEvent] = []
        self.on_ip: Callable[[bytes], None] | None = None  # receives IPv4 datagrams; None drops them
        self.ip_dropped = 0
        self.started_at: float | None = None
        self.ipcp_up_at: float | None = None

    def open(self) -> None:
        """Start negotiating."""
        self.started_at = self.clock()
        self.session.open(self.started_at)

    def pump(self) -> None:
        """Deliver received datagrams to ``on_ip``; move the session's events into ``events`` and the log."""
        for packet in self.session.take_ip_packets():
            if self.on_ip is None:
                self.ip_dropped += 1
            else:
                self.on_ip(packet)
        while (event := self.session.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, IpcpUp) and self.ipcp_up_at is None:
                self.ipcp_up_at = self.clock()
            for line in describe_event(event):
                self.log(line)

    def run_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        """Run the link until ``condition()`` holds (True), the link dies or ``timeout`` (False)."""

        def check() -> bool:
            self.pump()
            return condition() or self.session.is_dead and self.started_at is not None

        self.runner.run(check, timeout)
        self.pump()
        return condition()

    def wait_ipcp_up(self, timeout: float) -> bool:
        """Block until IPCP is Opened."""
        return self.run_until(lambda: self.session.ipcp.result is not None, timeout)

    def terminate(self, reason: str = "User request", timeout: float = 10.0) -> bool:
        """Close the link gracefully and wait until LCP has finished."""
        self.session.close(self.clock(), reason)
        return self.run_until(lambda: self.session.is_dead, timeout)

    def close(self) -> None:
        """Release the runner and the link."""
        self.runner.close()
        self.link.close()
