"""A DNS stub resolver (RFC 1035, RFC 1123 §6.1.3), sans-I/O: A lookups over UDP.

The resolver owns no socket and no clock.  The glue calls :meth:`Resolver.lookup`, sends what
:meth:`Resolver.datagrams_to_send` returns from its own UDP socket (the source port is its
business), feeds datagrams from port 53 to :meth:`Resolver.receive_datagram`, calls
:meth:`Resolver.on_timer` at :meth:`Resolver.next_deadline`, and collects
:class:`LookupResult` values with :meth:`Resolver.next_result`.

* Dotted-quad names (:func:`parse_dotted_quad`) and cache hits complete at once, without
  traffic.
* Each attempt has a fresh random 16-bit ID.  After ``timeout`` the next attempt goes to the next
  server, round robin; ``attempts`` per server, so ``attempts * len(servers)`` in all, then
  TIMEOUT.  A late answer to an earlier attempt of the same query is still accepted.
* A response is accepted only from the server, port 53 and ID of an attempt, with QR set,
  opcode QUERY and the question echoed (name case-insensitively, type A, class IN); anything
  else is dropped and counted in :attr:`Resolver.drops`.
* SERVFAIL, REFUSED and every other RCODE but NOERROR/NXDOMAIN, and responses with the TC bit,
  mark that server as failed for the query and move on to the next one; when every server
  has failed the lookup ends with SERVER_FAILURE.  **There is no TCP fallback** for truncated
  responses: a stub asking for A records practically never needs one.
* CNAMEs are followed inside the answer section; an answer that ends on a CNAME without A
  records for its target starts a new query for the target.  At most ``max_cname_chain``
  CNAMEs in all; a name seen twice or a longer chain ends with CNAME_LOOP.
* Cache: keyed by the lowercased name, LRU-bounded, TTL the smallest of the records used,
  capped at ``max_cache_ttl``.  NXDOMAIN and NOERROR-without-address (NODATA) are cached too,
  for min(SOA TTL, SOA MINIMUM) when the authority section has an SOA, else ``negative_ttl``
  (RFC 2308 §5).  Expired entries are never returned.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from wipstack.errors import DropCounters, DropReason, MalformedPacket
from wipstack.rand import RandomSource
from wipstack.wire.dns import (
    DNS_PORT,
    DnsClass,
    DnsMessage,
    DnsType,
    Opcode,
    Rcode,
    build_query,
    encode_name,
    parse_response,
    soa_minimum,
)

__all__ = ["DnsError", "LookupResult", "Resolver", "ResolverConfig", "parse_dotted_quad"]

_DIGITS = frozenset("0123456789")


def parse_dotted_quad(text: str) -> bytes | None:
    """The 4-octet address written ``a.b.c.d`` (decimal, each 0-255), else ``None``.

    Strict: exactly four parts of one to three ASCII digits, no sign, no spaces and no leading
    zeros (``"01.2.3.4"`` is rejected, since inet_aton would read it as octal).
    """
    parts = text.split(".")
    if len(parts) != 4:
        return None
    octets = bytearray()
    for part in parts:
        if not 1 <= len(part) <= 3 or not _DIGITS.issuperset(part) or (len(part) > 1 and part[0] == "0"):
            return None
        value = int(part)
        if value > 255:
            return None
        octets.append(value)
    return bytes(octets)


class DnsError(enum.Enum):
    """Why a lookup gave no address."""

    NXDOMAIN = "name does not exist"
    NO_ANSWER = "no address for the name"
    TIMEOUT = "no answer from the servers"
    SERVER_FAILURE = "the servers failed to answer"
    NO_SERVERS = "no DNS server configured"
    CNAME_LOOP = "CNAME loop or chain too long"
    TOO_MANY_PENDING = "too many lookups in progress"
    BAD_NAME = "not a valid host name"


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    """Knobs of the stub resolver."""

    timeout: float = 2.0  # seconds per attempt
    attempts: int = 3  # per server; servers are rotated between attempts (RFC 1123 §6.1.3.3)
    max_cname_chain: int = 8  # CNAMEs followed per lookup
    cache_size: int = 64  # names cached (LRU); 0 disables the cache
    max_cache_ttl: float = 3600.0  # seconds, caps every record TTL
    negative_ttl: float = 60.0  # NXDOMAIN/NODATA cache time without an SOA (RFC 2308 §5)
    max_pending: int = 16  # lookups in progress at once; more end with TOO_MANY_PENDING

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError("the DNS timeout must be positive")
        if self.attempts < 1:
            raise ValueError("at least one DNS attempt per server")
        if self.max_cname_chain < 0 or self.cache_size < 0 or self.max_pending < 1:
            raise ValueError("max_cname_chain and cache_size must be >= 0, max_pending >= 1")
        if self.max_cache_ttl < 0 or self.negative_ttl < 0:
            raise ValueError("cache TTLs must be >= 0")


@dataclass(frozen=True, slots=True)
class LookupResult:
    """A completed lookup.

    ``addresses`` are all A records of ``canonical_name`` (the end of the CNAME chain) in
    answer order; empty when ``error`` is set.  ``ttl`` is how long the answer stays valid in
    seconds (0 for dotted quads and for errors that are not cached).
    """

    handle: int
    name: str
    addresses: tuple[bytes, ...]
    canonical_name: str
    error: DnsError | None
    ttl: float

    @property
    def ok(self) -> bool:
        """Whether the lookup gave at least one address."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class _CacheEntry:
    expires: float
    addresses: tuple[bytes, ...]
    canonical_name: str
    error: DnsError | None


@dataclass(slots=True, eq=False)
class _Lookup:
    """A lookup in progress and its current query."""

    handle: int
    name: str  # as the caller wrote it
    qname: str  # the name being queried (the original, then CNAME targets)
    chain: list[str]  # lowercased names seen: the original and every CNAME target
    ttl: float = math.inf  # smallest TTL of the records used so far
    servers: tuple[bytes, ...] = ()  # snapshot taken when the query started
    tries: list[int] = field(default_factory=list)  # attempts sent to each server for the current query
    server_index: int = -1  # server of the latest attempt
    ident: int = -1  # ID of the latest attempt
    deadline: float = math.inf
    failed: set[int] = field(default_factory=set)  # servers that answered with a failure
    keys: dict[tuple[int, bytes], int] = field(default_factory=dict)  # (ID, server) -> server index


def _record_ttl(ttl: int) -> float:
    # RFC 2181 §8: a TTL with the most significant bit set is treated as zero
    return float(ttl) if ttl < 0x80000000 else 0.0


def _key(name: str) -> str:
    """Cache / comparison key: lowercased, without a final dot."""
    return (name[:-1] if name.endswith(".") else name).lower()


class Resolver:
    """The stub resolver; see the module docstring for the behaviour."""

    def __init__(self, rng: RandomSource, config: ResolverConfig | None = None, servers: Sequence[bytes] = ()) -> None:
        self.config = config or ResolverConfig()
        self.drops = DropCounters()
        self._rng = rng
        self._servers: list[bytes] = []
        self.servers = list(servers)
        self._next_handle = 1
        self._pending: dict[int, _Lookup] = {}
        self._by_query: dict[tuple[int, bytes], int] = {}  # (ID, server) -> handle
        self._outbox: list[tuple[int, int, tuple[bytes, int, bytes]]] = []  # (handle, ID, datagram)
        self._done: dict[int, LookupResult] = {}
        self._order: deque[int] = deque()
        self._cache: OrderedDict[str, _CacheEntry] = OrderedDict()

    # ---- configuration ----

    @property
    def servers(self) -> list[bytes]:
        """Server addresses (4 octets each), in order of preference; used by queries started later."""
        return self._servers

    @servers.setter
    def servers(self, value: Sequence[bytes]) -> None:
        servers = [bytes(server) for server in value]
        if any(len(server) != 4 for server in servers):
            raise ValueError("DNS server addresses are 4 octets (see wipstack.wire.ipv4.address)")
        self._servers = servers

    # ---- the application's side ----

    def lookup(self, name: str, now: float) -> int:
        """Start resolving ``name`` to IPv4 addresses; return the handle of the lookup.

        Dotted quads, cache hits and errors found at once (BAD_NAME, NO_SERVERS,
        TOO_MANY_PENDING) complete immediately: their result is already queued.
        """
        handle = self._next_handle
        self._next_handle += 1
        address = parse_dotted_quad(name)
        if address is not None:
            self._complete(LookupResult(handle, name, (address,), name, None, 0.0))
            return handle
        try:
            encode_name(name)
        except ValueError:
            self._complete(LookupResult(handle, name, (), name, DnsError.BAD_NAME, 0.0))
            return handle
        entry = self._cache_get(_key(name), now)
        if entry is not None:
            ttl = entry.expires - now
            self._complete(LookupResult(handle, name, entry.addresses, entry.canonical_name, entry.error, ttl))
            return handle
        error = None
        if not self._servers:
            error = DnsError.NO_SERVERS
        elif len(self._pending) >= self.config.max_pending:
            error = DnsError.TOO_MANY_PENDING
        if error is not None:
            self._complete(LookupResult(handle, name, (), name, error, 0.0))
            return handle
        qname = name[:-1] if name.endswith(".") else name
        lookup = _Lookup(handle, name, qname, [qname.lower()])
        self._pending[handle] = lookup
        self._start_query(lookup, qname, now)
        return handle

    def cancel(self, handle: int) -> None:
        """Forget a lookup: pending (answers to it are then dropped) or completed and not yet taken."""
        lookup = self._pending.pop(handle, None)
        if lookup is not None:
            self._forget_keys(lookup)
        self._done.pop(handle, None)

    def next_result(self) -> LookupResult | None:
        """The next completed lookup, in completion order, or ``None``; it is then forgotten."""
        while self._order:
            result = self._done.pop(self._order.popleft(), None)
            if result is not None:
                return result
        return None

    def result(self, handle: int) -> LookupResult | None:
        """Peek at a completed lookup that :meth:`next_result` has not returned yet."""
        return self._done.get(handle)

    @property
    def pending(self) -> int:
        """Number of lookups in progress."""
        return len(self._pending)

    # ---- the network's side ----

    def datagrams_to_send(self) -> list[tuple[bytes, int, bytes]]:
        """Queries to send now, as (server address, port 53, UDP payload); each is returned once."""
        out = [
            datagram
            for handle, ident, datagram in self._outbox
            if handle in self._pending and (ident, datagram[0]) in self._pending[handle].keys
        ]
        self._outbox.clear()
        return out

    def receive_datagram(self, src: bytes, src_port: int, payload: bytes, now: float) -> None:
        """Process a UDP datagram that arrived for the resolver's socket."""
        try:
            message = parse_response(payload)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return
        header = message.header
        key = (header.ident, bytes(src))
        handle = self._by_query.get(key)
        if handle is None or src_port != DNS_PORT:
            self.drops.count(DropReason.UNEXPECTED_ID)
            return
        lookup = self._pending[handle]
        if not header.qr or header.opcode != Opcode.QUERY:
            self.drops.count(DropReason.BAD_VALUE)
            return
        if message.questions:
            question = message.questions[0]
            if (
                len(message.questions) != 1
                or question.qtype != DnsType.A
                or question.qclass != DnsClass.IN
                or _key(question.name) != lookup.qname.lower()
            ):
                self.drops.count(DropReason.BAD_VALUE)
                return
        elif header.rcode in (Rcode.NOERROR, Rcode.NXDOMAIN):
            # RFC 1035 §7.3, RFC 5452 §9.1: match on the echoed question; only errors may omit it
            self.drops.count(DropReason.BAD_VALUE)
            return
        index = lookup.keys.pop(key)
        del self._by_query[key]
        if header.tc or header.rcode not in (Rcode.NOERROR, Rcode.NXDOMAIN):
            # SERVFAIL, REFUSED, FORMERR, NOTIMP, others, or truncated (no TCP fallback):
            # this server is done for this query (RFC 1123 §6.1.3.3 "try the next server")
            lookup.failed.add(index)
            if header.ident == lookup.ident and index == lookup.server_index:
                self._send_attempt(lookup, now)
            return
        self._answer(lookup, message, now)

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` must be called next, or ``None`` when nothing is pending."""
        return min((lookup.deadline for lookup in self._pending.values()), default=None)

    def on_timer(self, now: float) -> None:
        """Retry or fail the lookups whose attempt timed out by ``now``."""
        for lookup in [lookup for lookup in self._pending.values() if lookup.deadline <= now]:
            if lookup.handle in self._pending:
                self._send_attempt(lookup, now)

    # ---- queries ----

    def _start_query(self, lookup: _Lookup, qname: str, now: float) -> None:
        self._forget_keys(lookup)
        lookup.qname = qname
        lookup.servers = tuple(self._servers)
        lookup.tries = [0] * len(lookup.servers)
        lookup.server_index = -1
        lookup.ident = -1
        lookup.failed.clear()
        if not lookup.servers:
            self._finish(lookup, (), DnsError.NO_SERVERS, 0.0, now)
            return
        self._send_attempt(lookup, now)

    def _send_attempt(self, lookup: _Lookup, now: float) -> None:
        """Send the next attempt of the current query, or end the lookup when none is left."""
        servers = lookup.servers
        count = len(servers)
        for step in range(1, count + 1):
            index = (lookup.server_index + step) % count
            # round robin over the servers that neither failed nor had all their attempts
            if index not in lookup.failed and lookup.tries[index] < self.config.attempts:
                break
        else:
            self._finish(lookup, (), DnsError.SERVER_FAILURE if lookup.failed else DnsError.TIMEOUT, 0.0, now)
            return
        server = servers[index]
        ident = self._rng.getrandbits(16)
        while (ident, server) in self._by_query:
            ident = self._rng.getrandbits(16)
        lookup.tries[index] += 1
        lookup.server_index = index
        lookup.ident = ident
        lookup.deadline = now + self.config.timeout
        lookup.keys[(ident, server)] = index
        self._by_query[(ident, server)] = lookup.handle
        self._outbox.append((lookup.handle, ident, (server, DNS_PORT, build_query(ident, lookup.qname))))

    def _answer(self, lookup: _Lookup, message: DnsMessage, now: float) -> None:
        """A NOERROR or NXDOMAIN response to the current query of ``lookup``."""
        answers = message.answers
        current = lookup.qname
        ttl = lookup.ttl
        followed = False
        while True:
            key = current.lower()
            addresses: list[bytes] = []
            for record in answers:
                if (
                    record.rtype == DnsType.A
                    and record.rclass == DnsClass.IN
                    and isinstance(record.data, bytes)
                    and _key(record.name) == key
                ):
                    addresses.append(record.data)
                    ttl = min(ttl, _record_ttl(record.ttl))
            if addresses:
                self._finish(lookup, tuple(addresses), None, ttl, now, canonical=current)
                return
            target = None
            for record in answers:
                if record.rtype == DnsType.CNAME and record.rclass == DnsClass.IN and _key(record.name) == key:
                    assert isinstance(record.data, str)  # the codec decodes CNAME RDATA to a name
                    target = record.data
                    ttl = min(ttl, _record_ttl(record.ttl))
                    break
            if target is None:
                break
            if not self._follow(lookup, target, now):
                return
            current = target
            followed = True
        lookup.ttl = ttl
        # RFC 2308 §2.1: with CNAMEs in the answer, NXDOMAIN is about the end of the chain
        if message.header.rcode == Rcode.NXDOMAIN or not followed:
            error = DnsError.NXDOMAIN if message.header.rcode == Rcode.NXDOMAIN else DnsError.NO_ANSWER
            self._finish(lookup, (), error, min(ttl, self._negative_ttl(message)), now, canonical=current)
            return
        entry = self._cache_get(_key(current), now)
        if entry is not None:
            ttl = min(ttl, entry.expires - now)
            self._finish(lookup, entry.addresses, entry.error, ttl, now, canonical=entry.canonical_name)
            return
        # the answer ends on a CNAME: ask for its target
        self._start_query(lookup, current, now)

    def _follow(self, lookup: _Lookup, target: str, now: float) -> bool:
        """Record a CNAME hop to ``target``; end the lookup and return False if it must stop."""
        key = target.lower()
        if key in lookup.chain or len(lookup.chain) > self.config.max_cname_chain:
            self._finish(lookup, (), DnsError.CNAME_LOOP, 0.0, now, canonical=target)
            return False
        try:
            encode_name(target)
        except ValueError:
            # a target we could not ask for (the root, escaped octets): report it as a bad name
            self._finish(lookup, (), DnsError.BAD_NAME, 0.0, now, canonical=target)
            return False
        lookup.chain.append(key)
        return True

    def _negative_ttl(self, message: DnsMessage) -> float:
        for record in message.authority:
            minimum = soa_minimum(record)
            if minimum is not None:
                # RFC 2308 §5: the lesser of the SOA's own TTL and its MINIMUM field
                return min(_record_ttl(record.ttl), _record_ttl(minimum))
        return self.config.negative_ttl

    def _finish(
        self,
        lookup: _Lookup,
        addresses: tuple[bytes, ...],
        error: DnsError | None,
        ttl: float,
        now: float,
        *,
        canonical: str | None = None,
    ) -> None:
        del self._pending[lookup.handle]
        self._forget_keys(lookup)
        canonical_name = lookup.qname if canonical is None else canonical
        ttl = max(0.0, min(ttl, self.config.max_cache_ttl))
        if error in (None, DnsError.NXDOMAIN, DnsError.NO_ANSWER):
            if ttl > 0:
                self._cache_put(lookup.chain[0], _CacheEntry(now + ttl, addresses, canonical_name, error))
        else:
            ttl = 0.0
        self._complete(LookupResult(lookup.handle, lookup.name, addresses, canonical_name, error, ttl))

    def _forget_keys(self, lookup: _Lookup) -> None:
        for key in lookup.keys:
            del self._by_query[key]
        lookup.keys.clear()
        lookup.deadline = math.inf

    def _complete(self, result: LookupResult) -> None:
        self._done[result.handle] = result
        self._order.append(result.handle)

    # ---- cache ----

    def _cache_get(self, key: str, now: float) -> _CacheEntry | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry

    def _cache_put(self, key: str, entry: _CacheEntry) -> None:
        if self.config.cache_size == 0:
            return
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)
