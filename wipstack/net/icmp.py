"""ICMP (RFC 792) services: the error rate limiter and the echo-request client (ping)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from wipstack.rand import RandomSource


class TokenBucket:
    """``rate`` tokens per second up to ``burst``: how many ICMP errors we may send (RFC 1812 §4.3.2.8)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class PingReply:
    """The outcome of one echo request, in order of sequence number."""

    sequence: int  # 0 for the first request (the index +WIPPING reports)
    sent_at: float
    rtt: float | None  # seconds; None when no reply came before the timeout
    ttl: int | None = None  # TTL of the reply
    size: int = 0  # ICMP data octets echoed
    error: str | None = None  # an ICMP error about the request (e.g. "time exceeded from 192.0.2.9")

    @property
    def timed_out(self) -> bool:
        """True when no reply came (an error also counts as no reply)."""
        return self.rtt is None


@dataclass(frozen=True, slots=True)
class PingConfig:
    """What ``ping`` does: ``count`` requests of ``size`` data octets, ``interval`` apart."""

    count: int = 4
    interval: float = 1.0
    timeout: float = 1.0
    size: int = 56
    ttl: int | None = None  # None: the stack's default TTL

    def __post_init__(self) -> None:
        if self.count < 1 or self.interval < 0 or self.timeout <= 0:
            raise ValueError("ping needs count >= 1, interval >= 0 and timeout > 0")
        if not 0 <= self.size <= 65507:
            raise ValueError(f"ping size {self.size} out of 0..65507")
        if self.ttl is not None and not 1 <= self.ttl <= 255:
            raise ValueError(f"ping TTL {self.ttl} out of 1..255")


class PingSession:
    """Sends ``count`` echo requests to ``destination`` and collects one :class:`PingReply` each.

    Sans-I/O: the stack calls :meth:`due_requests` to learn what to send, :meth:`on_reply`
    and :meth:`on_error` with what came back, and :meth:`expire` as time passes.
    """

    def __init__(self, destination: bytes, config: PingConfig, rng: RandomSource, now: float) -> None:
        self.destination = destination
        self.config = config
        self.identifier = rng.getrandbits(16)
        self.started_at = now
        self.results: list[PingReply | None] = [None] * config.count
        self._sent: dict[int, float] = {}  # sequence -> time sent
        self._next_seq = 0
        self._next_send = now
        self._completed: deque[PingReply] = deque()
        # a recognisable payload: the sequence is in the ICMP header, the pattern checks integrity
        self._payload = bytes((i + 0x10) & 0xFF for i in range(config.size))

    @property
    def done(self) -> bool:
        """Every request has its reply or has timed out."""
        return all(r is not None for r in self.results)

    @property
    def payload(self) -> bytes:
        """The data octets of each request."""
        return self._payload

    def due_requests(self, now: float) -> list[int]:
        """Sequence numbers to send now (the wire carries them modulo 65536)."""
        due = []
        while self._next_seq < self.config.count and now >= self._next_send:
            seq = self._next_seq
            self._sent[seq] = now
            due.append(seq)
            self._next_seq += 1
            self._next_send = now + self.config.interval if self.config.interval else now
        return due

    def on_reply(self, wire_sequence: int, data: bytes, ttl: int, now: float) -> bool:
        """An echo reply with our identifier; True when it answered an outstanding request."""
        sequence = self._outstanding(wire_sequence)
        sent_at = None if sequence is None else self._sent.get(sequence)
        if sequence is None or sent_at is None or data != self._payload:
            return False  # late (already timed out), duplicated or corrupted
        self._finish(PingReply(sequence, sent_at, now - sent_at, ttl, len(data)))
        return True

    def on_error(self, wire_sequence: int, description: str) -> None:
        """An ICMP error about one of our requests (unreachable, time exceeded)."""
        sequence = self._outstanding(wire_sequence)
        if sequence is not None:
            sent_at = self._sent[sequence]
            self._finish(PingReply(sequence, sent_at, None, None, 0, description))

    def expire(self, now: float) -> None:
        """Time out requests that waited ``timeout``."""
        for seq, sent_at in list(self._sent.items()):
            if self.results[seq] is None and now >= sent_at + self.config.timeout:
                self._finish(PingReply(seq, sent_at, None))

    def next_deadline(self) -> float | None:
        """The next send or timeout."""
        deadlines = [sent + self.config.timeout for seq, sent in self._sent.items() if self.results[seq] is None]
        if self._next_seq < self.config.count:
            deadlines.append(self._next_send)
        return min(deadlines) if deadlines else None

    def next_reply(self) -> PingReply | None:
        """Replies (and timeouts) in the order they completed."""
        return self._completed.popleft() if self._completed else None

    def _outstanding(self, wire_sequence: int) -> int | None:
        """The outstanding request whose 16-bit wire sequence is ``wire_sequence``."""
        for seq in self._sent:
            if seq & 0xFFFF == wire_sequence:
                return seq
        return None

    def _finish(self, reply: PingReply) -> None:
        self.results[reply.sequence] = reply
        self._sent.pop(reply.sequence, None)
        self._completed.append(reply)
