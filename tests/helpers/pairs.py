"""Two sans-I/O PPP sessions joined by a simulated serial line with seeded faults.

The line delivers byte chunks with a fixed latency; a seeded fault injector may drop,
duplicate or corrupt whole chunks, and chunks are split at random points, so the
deframers see frames cut anywhere.  Time is simulated: the pair jumps to the next event.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from wipstack.ppp.config import PppConfig
from wipstack.ppp.events import PppEvent
from wipstack.ppp.session import PppSession


@dataclass
class Faults:
    """Per-chunk fault probabilities of one direction of the line."""

    loss: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    split: bool = True


@dataclass
class Direction:
    """One direction of the simulated line: chunks in flight with their arrival time."""

    faults: Faults
    rng: random.Random
    latency: float
    in_flight: list[tuple[float, bytes]] = field(default_factory=list)
    sent_chunks: int = 0
    lost_chunks: int = 0
    corrupted_chunks: int = 0
    duplicated_chunks: int = 0

    def send(self, data: bytes, now: float) -> None:
        """Queue one burst of line output; faults apply per burst, then it is cut at random."""
        self.sent_chunks += 1
        if self.rng.random() < self.faults.loss:
            self.lost_chunks += 1
            return
        if self.rng.random() < self.faults.corrupt:
            self.corrupted_chunks += 1
            damaged = bytearray(data)
            damaged[self.rng.randrange(len(damaged))] ^= 1 << self.rng.randrange(8)
            data = bytes(damaged)
        copies = 1
        if self.rng.random() < self.faults.duplicate:
            self.duplicated_chunks += 1
            copies = 2
        pieces = [data]
        if self.faults.split and len(data) > 1:
            cut = sorted(self.rng.sample(range(1, len(data)), k=min(3, len(data) - 1)))
            pieces = [data[a:b] for a, b in zip([0, *cut], [*cut, len(data)], strict=True)]
        for _ in range(copies):
            self.in_flight.extend((now + self.latency, piece) for piece in pieces)

    def due(self, now: float) -> list[bytes]:
        ready = [d for t, d in self.in_flight if t <= now]
        self.in_flight = [(t, d) for t, d in self.in_flight if t > now]
        return ready

    def next_arrival(self) -> float | None:
        return min((t for t, _ in self.in_flight), default=None)


class SessionPair:
    """Session ``a`` and session ``b`` on one simulated line."""

    def __init__(
        self,
        config_a: PppConfig,
        config_b: PppConfig,
        *,
        seed: int = 0,
        faults_ab: Faults | None = None,
        faults_ba: Faults | None = None,
        latency: float = 0.01,
        trace: bool = False,
    ) -> None:
        rng = random.Random(seed)
        self.log: list[str] = []
        tracer_a = (lambda line: self.log.append(f"a {line}")) if trace else None
        tracer_b = (lambda line: self.log.append(f"b {line}")) if trace else None
        self.a = PppSession(config_a, random.Random(rng.random()), tracer=tracer_a)
        self.b = PppSession(config_b, random.Random(rng.random()), tracer=tracer_b)
        self.ab = Direction(faults_ab or Faults(split=True), random.Random(rng.random()), latency)
        self.ba = Direction(faults_ba or Faults(split=True), random.Random(rng.random()), latency)
        self.now = 0.0
        self.events_a: list[tuple[float, PppEvent]] = []
        self.events_b: list[tuple[float, PppEvent]] = []
        self.ip_a: list[bytes] = []
        self.ip_b: list[bytes] = []

    def open(self) -> None:
        self.a.open(self.now)
        self.b.open(self.now)
        self._exchange()

    def _exchange(self) -> None:
        if out := self.a.bytes_to_send():
            self.ab.send(out, self.now)
        if out := self.b.bytes_to_send():
            self.ba.send(out, self.now)
        for session, events in ((self.a, self.events_a), (self.b, self.events_b)):
            while (event := session.next_event()) is not None:
                events.append((self.now, event))
        self.ip_a += self.a.take_ip_packets()
        self.ip_b += self.b.take_ip_packets()

    def step(self) -> bool:
        """Advance to the next arrival or deadline; False when nothing is left to happen."""
        candidates = [
            self.ab.next_arrival(),
            self.ba.next_arrival(),
            self.a.next_deadline(),
            self.b.next_deadline(),
        ]
        times = [t for t in candidates if t is not None]
        if not times:
            return False
        self.now = max(self.now, min(times))
        for chunk in self.ab.due(self.now):
            self.b.receive_bytes(chunk, self.now)
        for chunk in self.ba.due(self.now):
            self.a.receive_bytes(chunk, self.now)
        for session in (self.a, self.b):
            deadline = session.next_deadline()
            if deadline is not None and deadline <= self.now:
                session.on_timer(self.now)
        self._exchange()
        return True

    def run_until(self, condition: Callable[[], bool], limit: float = 600.0) -> bool:
        """Step until ``condition()`` or simulated time passes ``limit`` (or nothing is left)."""
        while not condition():
            if self.now > limit or not self.step():
                return condition()
        return True

    def run_for(self, seconds: float) -> None:
        """Step through ``seconds`` of simulated time."""
        end = self.now + seconds
        while self.now < end and self.step():
            pass

    def after(self, action: Callable[[float], None]) -> None:
        """Do something to a session at the current time, then deliver its output."""
        action(self.now)
        self._exchange()

    def both_ipcp_up(self) -> bool:
        return self.a.ipcp.result is not None and self.b.ipcp.result is not None
