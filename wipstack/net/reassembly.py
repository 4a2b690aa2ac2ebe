"""IPv4 reassembly (RFC 791 §3.2, RFC 815 ideas) on the bounded assembler, with hard limits.

Fragments are keyed by (source, destination, protocol, identification).  Each datagram in
reassembly holds an :class:`~wipstack.accel.Assembler` and a deadline; overlapping fragments
kill the whole datagram as RFC 5722 asks of IPv6 (exact duplicates are only dropped, as RFC
8200 §4.5 allows), and a killed key stays poisoned until its deadline so the rest of it is
discarded too.  Memory is bounded by a cap on datagrams and on the octets their buffers span.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wipstack.accel import ASSEMBLER_FULL, Assembler
from wipstack.errors import DropCounters, DropReason
from wipstack.wire.ipv4 import MAX_PACKET_LEN, MIN_HEADER_LEN, Ipv4Repr

Buffer = bytes | bytearray | memoryview
Key = tuple[bytes, bytes, int, int]

#: Fragments remembered per datagram (65507 octets in 48-octet pieces, at MTU 68, is 1365).
MAX_PIECES = 2048


@dataclass(slots=True)
class _Pending:
    deadline: float
    assembler: Assembler
    first: Ipv4Repr | None = None  # the header of the offset-0 fragment, once received
    first_packet: bytes = b""  # header + first 8 data octets, for ICMP Time Exceeded (RFC 792)
    total_len: int | None = None  # payload length, known once the last fragment arrived
    extent: int = 0  # octets the assembler's buffer spans (what the memory bound counts)
    poisoned: bool = False
    pieces: dict[int, int] = field(default_factory=dict)  # offset -> length, to spot exact duplicates


@dataclass(frozen=True, slots=True)
class Expired:
    """A datagram that timed out; ``first_packet`` is set when fragment zero had arrived."""

    key: Key
    first_packet: bytes


class Reassembler:
    """Collects fragments until a datagram is whole (see the module docstring)."""

    def __init__(self, *, timeout: float, max_datagrams: int, max_bytes: int, max_fragments: int) -> None:
        self.timeout = timeout
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.max_fragments = max_fragments
        self.drops = DropCounters()
        self.completed = 0
        self._pending: dict[Key, _Pending] = {}
        self._held = 0  # sum of extents

    @property
    def datagrams_held(self) -> int:
        """Datagrams in reassembly (poisoned keys included)."""
        return len(self._pending)

    @property
    def bytes_held(self) -> int:
        """Octets spanned by the buffers of datagrams in reassembly."""
        return self._held

    def add(self, header: Ipv4Repr, payload: Buffer, raw: Buffer, now: float) -> tuple[Ipv4Repr, bytes] | None:
        """Add one fragment (``raw`` is the whole fragment as received); return the datagram when whole.

        The returned header is the first fragment's with the fragment fields cleared; the
        payload is the reassembled data.  Drops are counted in :attr:`drops`.
        """
        key = (header.src, header.dst, int(header.protocol), header.identification)
        offset = header.fragment_offset
        length = len(payload)
        end = offset + length
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_datagrams:
                # full: evict the oldest (poisoned first) rather than refuse, so stale or forged
                # fragments cannot block reassembly until they time out (as BSD and lwIP do)
                self._evict_oldest()
            pending = _Pending(now + self.timeout, Assembler(MAX_PACKET_LEN - MIN_HEADER_LEN, self.max_fragments))
            self._pending[key] = pending
        if pending.poisoned:
            self.drops.count(DropReason.REASSEMBLY_OVERLAP)
            return None
        if not header.more_fragments:
            if pending.total_len is not None and pending.total_len != end or end < pending.extent:
                # RFC 791 §3.2: two different ends, or data past the end: the datagram is inconsistent
                self._poison(pending)
                return None
            pending.total_len = end
        elif pending.total_len is not None and end > pending.total_len:
            self._poison(pending)
            return None
        if length and pending.assembler.overlaps(offset, length):
            if pending.pieces.get(offset) == length:
                self.drops.count(
                    DropReason.REASSEMBLY_OVERLAP
                )  # an exact duplicate: RFC 8200 §4.5 lets us drop only it
                return None
            self._poison(pending)
            return None
        if len(pending.pieces) >= MAX_PIECES:
            self.drops.count(DropReason.REASSEMBLY_LIMIT)
            return None
        grow = max(0, end - pending.extent)
        if grow > self.max_bytes:
            self.drops.count(DropReason.REASSEMBLY_LIMIT)  # could never fit: evict nobody for it
            return None
        while self._held + grow > self.max_bytes and len(self._pending) > 1:
            self._evict_oldest(keep=key)  # make room at the expense of the oldest other datagram
        if self._held + grow > self.max_bytes:
            self.drops.count(DropReason.REASSEMBLY_LIMIT)
            return None
        if length and pending.assembler.add(offset, payload) == ASSEMBLER_FULL:
            self.drops.count(DropReason.REASSEMBLY_LIMIT)
            return None
        pending.pieces[offset] = length
        pending.extent += grow
        self._held += grow
        if offset == 0:
            pending.first = header
            pending.first_packet = bytes(memoryview(raw)[: header.header_len + 8])
        if pending.first is None or pending.total_len is None:
            return None
        if pending.first.header_len + pending.total_len > MAX_PACKET_LEN:
            # RFC 791: the whole datagram, header included, is at most 65535 octets
            self._poison(pending, DropReason.BAD_LENGTH)
            return None
        if pending.assembler.readable() < pending.total_len:
            return None
        data = pending.assembler.read(pending.total_len)
        first = pending.first
        self._forget(key)
        self.completed += 1
        whole = Ipv4Repr(
            first.src, first.dst, first.protocol, first.ttl, first.tos, first.identification,
            first.dont_fragment, False, 0, first.options,
        )  # fmt: skip
        return whole, data

    def next_deadline(self) -> float | None:
        """When the oldest datagram in reassembly times out."""
        if not self._pending:
            return None
        return min(p.deadline for p in self._pending.values())

    def expire(self, now: float) -> list[Expired]:
        """Drop datagrams whose time is up (RFC 1122 §3.3.2); return those that were live."""
        expired = []
        for key, pending in list(self._pending.items()):
            if pending.deadline <= now:
                self._forget(key)
                if not pending.poisoned:
                    self.drops.count(DropReason.REASSEMBLY_TIMEOUT)
                    expired.append(Expired(key, pending.first_packet))
        return expired

    def _evict_oldest(self, keep: Key | None = None) -> None:
        candidates = [k for k in self._pending if k != keep]
        if not candidates:
            return
        victim = min(candidates, key=lambda k: (not self._pending[k].poisoned, self._pending[k].deadline))
        self.drops.count(DropReason.REASSEMBLY_LIMIT)
        self._forget(victim)

    def _poison(self, pending: _Pending, reason: DropReason = DropReason.REASSEMBLY_OVERLAP) -> None:
        self.drops.count(reason)
        self._held -= pending.extent
        pending.extent = 0
        pending.poisoned = True
        pending.assembler.clear()
        pending.pieces.clear()
        pending.first = None
        pending.first_packet = b""

    def _forget(self, key: Key) -> None:
        pending = self._pending.pop(key)
        self._held -= pending.extent
