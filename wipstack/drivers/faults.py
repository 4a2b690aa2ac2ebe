"""A seeded fault injector for datagram links, in the spirit of smoltcp's ``FaultInjector`` middleware.

:class:`FaultInjector` is pure logic with an explicit ``now``: it reads no clock, so the same
seed and the same calls give the same output, in a simulation with virtual time as well as in
a driver with a real clock.  One injector impairs one direction of a link; put one between the
core and the device in each direction.  Datagrams go in with :meth:`FaultInjector.push` and
come out, when due, from :meth:`FaultInjector.pop_ready`; :meth:`FaultInjector.next_deadline`
says when the next one is due.

What happens to a pushed datagram, in this order (like Linux's netem):

1. **loss** -- dropped with probability ``loss``; with ``burst_loss`` a Gilbert-Elliott chain
   decides instead (``loss`` is then the loss probability of its good state);
2. **rate** -- with ``rate_bps`` > 0 the datagram waits its turn in a FIFO of at most
   ``queue_limit`` datagrams and leaves after its serialisation time ``len * 8 / rate_bps``;
   a datagram that finds the queue full is tail-dropped (``queue_drops``);
3. **corrupt** -- one random bit of the datagram flipped with probability ``corrupt``;
4. **duplicate** -- a second copy delivered right behind the first with probability ``duplicate``;
5. **delay** -- ``delay`` seconds of one-way latency plus a uniform ``jitter`` in
   ``[0, jitter)``; jitter never changes the order of datagrams (a datagram is never due
   before the one pushed ahead of it);
6. **reorder** -- with probability ``reorder`` the datagram is held back: it is delivered
   ``reorder_delay`` seconds late when that is set, otherwise right behind the next datagram
   pushed after it (or :data:`MAX_REORDER_HOLD` seconds late if none follows in time).

:class:`FaultyTunPort` puts an injector in each direction of a :class:`~wipstack.drivers.ports.TunPort`
for the network loop, and :func:`parse_faults` reads a ``--faults`` specification such as
``"loss=0.05,dup=0.01,reorder=0.02,corrupt=0.01,delay=50ms,rate=80k"``.
"""

from __future__ import annotations

import heapq
import math
import random
import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

from wipstack.drivers.netloop import READ_BUDGET
from wipstack.drivers.pcap import Direction

if TYPE_CHECKING:
    from wipstack.drivers.pcap import PcapTap
    from wipstack.net.interface import Interface
    from wipstack.net.stack import Stack

#: How long a reordered datagram (with ``reorder_delay`` 0) waits for a successor, in seconds.
MAX_REORDER_HOLD = 0.1

#: The keys of :attr:`FaultInjector.counters`.
COUNTER_NAMES = (
    "pushed",  # datagrams offered to push()
    "passed",  # datagrams neither lost nor tail-dropped (each counted once, duplicates not)
    "delivered",  # datagrams handed out by pop_ready() (duplicates included)
    "lost",  # dropped by the loss model
    "queue_drops",  # tail-dropped by the rate limiter's full queue
    "duplicated",  # datagrams delivered twice
    "reordered",  # datagrams held back
    "corrupted",  # datagrams with one bit flipped
    "bytes_delivered",  # octets handed out by pop_ready()
)


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Bursty loss: a two-state Markov chain, evaluated once per datagram.

    Each datagram first moves the chain (good to bad with ``p_good_to_bad``, bad to good with
    ``p_bad_to_good``), then is lost with ``loss_in_bad`` in the bad state or with the
    injector's ``loss`` in the good state.  The mean burst length is ``1 / p_bad_to_good``
    datagrams; the long-run share of time in the bad state is
    ``p_good_to_bad / (p_good_to_bad + p_bad_to_good)``.
    """

    p_good_to_bad: float
    p_bad_to_good: float
    loss_in_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p_good_to_bad", "p_bad_to_good", "loss_in_bad"):
            _check_probability(name, getattr(self, name))
        if self.p_bad_to_good == 0.0 and self.p_good_to_bad > 0.0:
            raise ValueError("p_bad_to_good must be > 0 (the bad state would never end)")

    @property
    def bad_share(self) -> float:
        """The long-run probability of being in the bad state."""
        total = self.p_good_to_bad + self.p_bad_to_good
        return 0.0 if total == 0 else self.p_good_to_bad / total


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """The impairments of one direction (see the module docstring); all zero: a perfect wire."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    rate_bps: float = 0.0
    queue_limit: int = 1000
    burst_loss: GilbertElliott | None = None

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            _check_probability(name, getattr(self, name))
        for name in ("reorder_delay", "delay", "jitter", "rate_bps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        if self.queue_limit < 1:
            raise ValueError(f"queue_limit must be at least 1, not {self.queue_limit}")

    @property
    def is_clean(self) -> bool:
        """No impairment at all: datagrams pass at once, unchanged and in order."""
        burst = self.burst_loss
        return (
            self.loss == self.duplicate == self.reorder == self.corrupt == 0.0
            and self.delay == self.jitter == self.rate_bps == 0.0
            and (burst is None or burst.p_good_to_bad == 0.0)
        )

    def describe(self) -> str:
        """The non-default settings as ``parse_faults`` reads them (``"none"`` when clean)."""
        parts: list[str] = []
        default = FaultConfig()
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            if isinstance(value, GilbertElliott):
                parts.append(f"burst={value.p_good_to_bad:g}:{value.p_bad_to_good:g}:{value.loss_in_bad:g}")
            else:
                parts.append(f"{f.name}={value:g}")
        return ",".join(parts) or "none"


def _check_probability(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], not {value!r}")


class FaultInjector:
    """One impaired direction of a link (see the module docstring).

    ``rng`` is the only source of randomness: seed it for reproducible runs.  A probability
    of 0 draws nothing from it, so turning one impairment on leaves a clean link's behaviour
    (and the draws of the impairments that were on) where they were.
    """

    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self._heap: list[tuple[float, int, bytes]] = []  # (due, order, datagram)
        self._order = 0
        self._last_due = -math.inf  # due time of the last datagram delivered in order (jitter clamp)
        self._departures: list[float] = []  # rate limiter: when each queued datagram has left the wire
        self._departures_head = 0
        self._link_free_at = -math.inf
        self._bad_state = False
        self._held: list[tuple[float, bytes]] = []  # reordered, waiting for a successor: (deadline, datagram)

    # ------------------------------------------------------------------ API
    def push(self, packet: bytes, now: float) -> None:
        """Offer one datagram to the link at ``now``."""
        config = self.config
        counters = self.counters
        counters["pushed"] += 1
        if self._lose():
            counters["lost"] += 1
            return
        leaves = now
        if config.rate_bps > 0:
            departures = self._departures
            head = self._departures_head
            while head < len(departures) and departures[head] <= now:
                head += 1
            if head > 64 and head * 2 > len(departures):
                del departures[:head]
                head = 0
            self._departures_head = head
            if len(departures) - head >= config.queue_limit:
                counters["queue_drops"] += 1
                return
            leaves = max(now, self._link_free_at) + len(packet) * 8 / config.rate_bps
            self._link_free_at = leaves
            departures.append(leaves)
        counters["passed"] += 1
        if config.corrupt and self.rng.random() < config.corrupt and packet:
            damaged = bytearray(packet)
            bit = self.rng.randrange(len(damaged) * 8)
            damaged[bit >> 3] ^= 0x80 >> (bit & 7)
            packet = bytes(damaged)
            counters["corrupted"] += 1
        copies = 1
        if config.duplicate and self.rng.random() < config.duplicate:
            copies = 2
            counters["duplicated"] += 1
        due = leaves + config.delay
        if config.jitter:
            due += self.rng.random() * config.jitter
        if config.reorder and self.rng.random() < config.reorder:
            counters["reordered"] += 1  # held back: not part of the in-order sequence
            if config.reorder_delay > 0:
                due += config.reorder_delay
                for _ in range(copies):
                    self._schedule(due, packet)
            else:
                self._held.extend([(due + MAX_REORDER_HOLD, packet)] * copies)
            return
        due = max(due, self._last_due)  # jitter never reorders
        self._last_due = due
        for _ in range(copies):
            self._schedule(due, packet)
        if self._held:  # whatever waited for a successor goes right behind this one
            for _, held in self._held:
                self._schedule(due, held)
            self._held.clear()

    def pop_ready(self, now: float) -> list[bytes]:
        """Every datagram due by ``now``, in delivery order."""
        if self._held:
            self._release_held(now)
        heap = self._heap
        if not heap or heap[0][0] > now:
            return []
        out: list[bytes] = []
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        self.counters["delivered"] += len(out)
        self.counters["bytes_delivered"] += sum(len(p) for p in out)
        return out

    def next_deadline(self) -> float | None:
        """When the next datagram is due (None when none is in flight)."""
        deadline = self._heap[0][0] if self._heap else None
        if self._held:
            first_held = min(d for d, _ in self._held)
            deadline = first_held if deadline is None else min(deadline, first_held)
        return deadline

    @property
    def in_flight(self) -> int:
        """Datagrams pushed and not yet delivered (held ones included)."""
        return len(self._heap) + len(self._held)

    @property
    def queued(self) -> int:
        """Datagrams in the rate limiter's queue as of the last push."""
        return len(self._departures) - self._departures_head

    def clear(self) -> None:
        """Forget everything in flight (counters stay)."""
        self._heap.clear()
        self._held.clear()

    # ------------------------------------------------------------------ internals
    def _lose(self) -> bool:
        config = self.config
        burst = config.burst_loss
        if burst is not None:
            if self._bad_state:
                if burst.p_bad_to_good and self.rng.random() < burst.p_bad_to_good:
                    self._bad_state = False
            elif burst.p_good_to_bad and self.rng.random() < burst.p_good_to_bad:
                self._bad_state = True
            if self._bad_state:
                return bool(burst.loss_in_bad) and self.rng.random() < burst.loss_in_bad
        return bool(config.loss) and self.rng.random() < config.loss

    def _schedule(self, due: float, packet: bytes) -> None:
        self._order += 1
        heapq.heappush(self._heap, (due, self._order, packet))

    def _release_held(self, now: float) -> None:
        """Held datagrams whose successor never came are delivered at their deadline."""
        keep: list[tuple[float, bytes]] = []
        for deadline, packet in self._held:
            if deadline <= now:
                self._schedule(deadline, packet)
            else:
                keep.append((deadline, packet))
        self._held = keep


# ---------------------------------------------------------------------- the loop's port


class _Device(Protocol):
    """What :class:`FaultyTunPort` needs of the wrapped port's device (a TunDevice)."""

    def read_packet(self) -> bytes | None: ...

    def write_packet(self, packet: bytes) -> bool: ...


class _TunLikePort(Protocol):
    """A port that moves an interface's datagrams through a device, as TunPort does."""

    @property
    def stack(self) -> Stack: ...

    @property
    def interface(self) -> Interface: ...

    @property
    def device(self) -> _Device: ...

    @property
    def tap(self) -> PcapTap | None: ...

    @property
    def name(self) -> str: ...

    def read_fds(self) -> list[int]: ...

    def write_fds(self) -> list[int]: ...

    def on_writable(self, fd: int, now: float) -> None: ...

    def close(self) -> None: ...


class FaultyTunPort:
    """A :class:`~wipstack.drivers.ports.TunPort` (or any port like it) with faults both ways.

    Datagrams read from the device go through ``inbound`` before the stack sees them;
    datagrams the stack queues go through ``outbound`` before the device gets them.  Delayed
    datagrams are moved when due from :meth:`on_timer` (the loop asks :meth:`next_deadline`).
    The wrapped port's pcap tap sees the wire side: inbound datagrams as the device gave them
    (before the faults), outbound ones as the device gets them (after the faults).
    Implements the network loop's ``Port`` protocol; use it instead of the wrapped port.
    """

    def __init__(self, port: _TunLikePort, *, inbound: FaultInjector, outbound: FaultInjector) -> None:
        self.port = port
        self.name = port.name
        self.inbound = inbound
        self.outbound = outbound

    @classmethod
    def wrap(
        cls,
        port: _TunLikePort,
        inbound: FaultConfig | None = None,
        outbound: FaultConfig | None = None,
        *,
        seed: int | None = None,
    ) -> FaultyTunPort:
        """Wrap ``port`` with one injector per direction, each seeded from ``seed`` (None: random)."""
        master = random.Random(seed)
        return cls(
            port,
            inbound=FaultInjector(inbound or FaultConfig(), random.Random(master.getrandbits(64))),
            outbound=FaultInjector(outbound or FaultConfig(), random.Random(master.getrandbits(64))),
        )

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """Both injectors' counters: ``{"inbound": {...}, "outbound": {...}}``."""
        return {"inbound": dict(self.inbound.counters), "outbound": dict(self.outbound.counters)}

    # ------------------------------------------------------------------ Port
    def read_fds(self) -> list[int]:
        return self.port.read_fds()

    def write_fds(self) -> list[int]:
        return self.port.write_fds()

    def on_readable(self, fd: int, now: float) -> None:
        device, tap = self.port.device, self.port.tap
        for _ in range(READ_BUDGET):
            packet = device.read_packet()
            if packet is None:
                break
            if tap is not None:
                tap(Direction.INBOUND, packet)
            self.inbound.push(packet, now)
        self._deliver(now)

    def on_writable(self, fd: int, now: float) -> None:
        self.port.on_writable(fd, now)

    def flush(self, now: float) -> None:
        interface = self.port.interface
        if interface.output:
            for packet in interface.take_output():
                self.outbound.push(packet, now)
        self._transmit(now)

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.inbound.next_deadline(), self.outbound.next_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        self._deliver(now)
        self._transmit(now)

    def close(self) -> None:
        self.port.close()

    # ------------------------------------------------------------------ internals
    def _deliver(self, now: float) -> None:
        stack, interface = self.port.stack, self.port.interface
        for packet in self.inbound.pop_ready(now):
            stack.receive(interface, packet, now)

    def _transmit(self, now: float) -> None:
        device, tap = self.port.device, self.port.tap
        for packet in self.outbound.pop_ready(now):
            if tap is not None:
                tap(Direction.OUTBOUND, packet)
            device.write_packet(packet)


# ---------------------------------------------------------------------- --faults

_ALIASES = {
    "loss": "loss",
    "drop": "loss",
    "dup": "duplicate",
    "duplicate": "duplicate",
    "reorder": "reorder",
    "reorder_delay": "reorder_delay",
    "reorder-delay": "reorder_delay",
    "corrupt": "corrupt",
    "delay": "delay",
    "latency": "delay",
    "jitter": "jitter",
    "rate": "rate_bps",
    "rate_bps": "rate_bps",
    "queue": "queue_limit",
    "queue_limit": "queue_limit",
    "limit": "queue_limit",
    "burst": "burst_loss",
    "burst_loss": "burst_loss",
}
_PROBABILITIES = {"loss", "duplicate", "reorder", "corrupt"}
_TIMES = {"reorder_delay", "delay", "jitter"}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_RATE_UNITS = {"": 1.0, "bps": 1.0, "bit": 1.0, "k": 1e3, "kbit": 1e3, "kbps": 1e3, "m": 1e6, "mbit": 1e6,
               "mbps": 1e6, "g": 1e9, "gbit": 1e9, "gbps": 1e9}  # fmt: skip
_NUMBER = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z%]*)\s*")


def _number(key: str, text: str, units: dict[str, float]) -> float:
    match = _NUMBER.fullmatch(text)
    if match is None or match.group(2).lower() not in units:
        choices = ", ".join(repr(u) for u in units if u)
        raise ValueError(f"--faults {key}={text!r}: expected a number (units: {choices})")
    return float(match.group(1)) * units[match.group(2).lower()]


def parse_faults(spec: str) -> FaultConfig:
    """Read a ``--faults`` specification into a :class:`FaultConfig`.

    Comma-separated ``key=value`` items: ``loss``, ``dup``, ``reorder``, ``corrupt``
    (probabilities, ``0.05`` or ``5%``); ``delay``, ``jitter``, ``reorder_delay`` (seconds, or
    with ``s``/``ms``/``us``); ``rate`` (bits per second, or with ``k``/``M``/``G``, e.g.
    ``80k``); ``queue`` (datagrams); ``burst=P_GB:P_BG[:LOSS_IN_BAD]`` (Gilbert-Elliott).
    An empty string or ``none`` is a clean link.  ValueError says what is wrong.
    """
    values: dict[str, object] = {}
    text = spec.strip()
    if text.lower() in ("", "none", "off"):
        return FaultConfig()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        name = _ALIASES.get(key.strip().lower())
        if not sep or name is None:
            known = ", ".join(sorted({k for k in _ALIASES if "_" not in k and "-" not in k}))
            raise ValueError(f"--faults: bad item {item!r} (want key=value with key one of {known})")
        if name in values:
            raise ValueError(f"--faults: {key.strip()} given twice")
        raw = raw.strip()
        if name in _PROBABILITIES:
            value: object = _number(key, raw, {"": 1.0, "%": 0.01})
        elif name in _TIMES:
            value = _number(key, raw, _TIME_UNITS)
        elif name == "rate_bps":
            value = _number(key, raw, _RATE_UNITS)
        elif name == "queue_limit":
            if not raw.isdigit():
                raise ValueError(f"--faults {key}={raw!r}: expected a whole number of datagrams")
            value = int(raw)
        else:
            parts = raw.split(":")
            if len(parts) not in (2, 3):
                raise ValueError(f"--faults {key}={raw!r}: expected P_GOOD_TO_BAD:P_BAD_TO_GOOD[:LOSS_IN_BAD]")
            numbers = [_number(key, p, {"": 1.0, "%": 0.01}) for p in parts]
            value = GilbertElliott(*numbers)
        values[name] = value
    try:
        return FaultConfig(**values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"--faults: {exc}") from None
