"""WIPSoft data-mode byte rules under garbage, arbitrary chunking and arbitrary timing.

The DLE decoder must never raise and must give the same items however the input is split
(and match a naive byte-at-a-time model); ``escape`` then ``DleDecoder`` must round-trip;
the ``+++`` detector must conserve bytes (nothing lost, duplicated or reordered, exactly
the three ``+`` of an escape removed) and agree with an offline model that applies the
guard-time rules to the whole timestamped byte stream at once; the UDP assembler must
never exceed its maximum and must conserve bytes.

Times are multiples of 1/8 s so every sum and difference is exact in binary floating
point: boundary cases (silence of exactly ``lead_min``...) are decided identically by the
detector's deadlines and the model's differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from hypothesis import example, given, settings
from hypothesis import strategies as st

from at_frontend.escaping import ETX, DecodedItem, DleDecoder, EscapeDetector, Etx, UdpDatagramAssembler, escape

INTERESTING_BYTES = [0x03, 0x10, 0x2B, 0x41, 0x61, 0x54, 0x74, 0x78, 0x00, 0xFF]
noisy_byte = st.one_of(st.sampled_from(INTERESTING_BYTES), st.integers(0, 255))
noisy_bytes = st.lists(noisy_byte, max_size=200).map(bytes)


def split_points(data: st.DataObject, length: int) -> list[int]:
    """Sorted cut positions (repeats allowed, giving empty chunks) for a buffer of ``length``."""
    cuts = data.draw(st.lists(st.integers(0, length), max_size=12))
    return sorted(cuts)


def chunks_of(buffer: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(buffer)]
    return [buffer[begin:end] for begin, end in pairwise(edges)]


def merge(items: list[DecodedItem]) -> list[DecodedItem]:
    """Coalesce adjacent data segments."""
    merged: list[DecodedItem] = []
    for item in items:
        if isinstance(item, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + item
        else:
            merged.append(item)
    return merged


def model_decode(wire: bytes) -> tuple[list[DecodedItem], bool]:
    """Byte-at-a-time DLE/ETX decoding straight from the rules; returns items, pending DLE."""
    items: list[DecodedItem] = []
    segment = bytearray()
    escaped = False
    for octet in wire:
        if escaped:
            segment.append(octet)
            escaped = False
        elif octet == 0x10:
            escaped = True
        elif octet == 0x03:
            if segment:
                items.append(bytes(segment))
                segment.clear()
            items.append(ETX)
        else:
            segment.append(octet)
    if segment:
        items.append(bytes(segment))
    return items, escaped


# -- (a) decoder under garbage ------------------------------------------------------------


@settings(max_examples=400)
@given(wire=noisy_bytes, data=st.data())
def test_decoder_garbage_any_split(wire: bytes, data: st.DataObject) -> None:
    expected_items, expected_pending = model_decode(wire)
    decoder = DleDecoder()
    collected: list[DecodedItem] = []
    for chunk in chunks_of(wire, split_points(data, len(wire))):
        items = decoder.feed(chunk)
        for item in items:
            assert item is ETX or (isinstance(item, bytes) and item), items
        # Within one feed call adjacent data is coalesced.
        assert all(not (isinstance(a, bytes) and isinstance(b, bytes)) for a, b in pairwise(items))
        assert isinstance(decoder.pending_dle, bool)
        collected += items
    assert merge(collected) == expected_items
    assert decoder.pending_dle == expected_pending
    assert merge(DleDecoder().feed(wire)) == expected_items


# -- (b) round trip -----------------------------------------------------------------------


@settings(max_examples=300)
@given(datagrams=st.lists(noisy_bytes, min_size=1, max_size=5), data=st.data())
def test_escape_decode_round_trip(datagrams: list[bytes], data: st.DataObject) -> None:
    wire = b"\x03".join(escape(payload) for payload in datagrams)
    decoder = DleDecoder()
    collected: list[DecodedItem] = []
    for chunk in chunks_of(wire, split_points(data, len(wire))):
        collected += decoder.feed(chunk)
    assert not decoder.pending_dle
    expected: list[DecodedItem] = []
    for index, payload in enumerate(datagrams):
        if index:
            expected.append(ETX)
        if payload:
            expected.append(payload)
    assert merge(collected) == expected


# -- (c) escape detector ------------------------------------------------------------------

guard_times = st.sampled_from([0.25, 0.5, 0.75, 1.0])
detector_chunk = st.one_of(
    st.sampled_from([b"", b"+", b"++", b"+++", b"A", b"a", b"T", b"AT", b"+++AT", b"x"]),
    st.lists(st.sampled_from(list(b"+++++AaTtx\x03")), max_size=6).map(bytes),
)


@dataclass(frozen=True)
class Event:
    """Wait ``gap`` seconds, maybe fire the timer first, then feed ``chunk`` (empty: a poke)."""

    gap: float
    timer_first: bool
    chunk: bytes


events = st.lists(
    st.builds(Event, st.integers(0, 16).map(lambda eighths: eighths / 8), st.booleans(), detector_chunk),
    max_size=12,
)


@dataclass(frozen=True)
class Params:
    lead_min: float
    inter_char: float
    trail_guard: float
    start: float


def model_escape(stream: list[tuple[int, float]], params: Params, end_time: float) -> tuple[bytes, int | None]:
    """Offline application of the ``+++`` rules to a timestamped stream.

    Returns the data delivered before an escape (or all data) and the index of the first
    ``+`` of the escape (None if none).  ``end_time`` is when the stream is last looked at.
    """
    plus = 0x2B
    out = bytearray()
    previous_time = params.start
    size = len(stream)
    index = 0
    while index < size:
        octet, time = stream[index]
        if octet != plus or time - previous_time < params.lead_min:
            out.append(octet)
            previous_time = time
            index += 1
            continue
        last = index  # last "+" of the candidate
        while last - index < 2 and last + 1 < size:
            next_octet, next_time = stream[last + 1]
            if next_octet != plus or next_time - stream[last][1] >= params.inter_char:
                break
            last += 1
        last_time = stream[last][1]
        if last - index < 2:  # incomplete: broken, or still held at the end (data either way)
            out += b"+" * (last - index + 1)
            previous_time = last_time
            index = last + 1
            continue
        after = last + 1
        if after == size:
            if end_time - last_time >= params.trail_guard:
                return bytes(out), index
            out += b"+++"
            break
        after_octet, after_time = stream[after]
        if after_time - last_time >= params.trail_guard:
            return bytes(out), index
        if after_octet not in b"Aa":
            out += b"+++"
            previous_time = last_time
            index = after
            continue
        if after + 1 == size:
            if end_time - after_time >= params.trail_guard:
                return bytes(out), index
            out += bytes((plus, plus, plus, after_octet))
            break
        t_octet, t_time = stream[after + 1]
        if t_time - after_time >= params.trail_guard or t_octet in b"Tt":
            return bytes(out), index
        out += bytes((plus, plus, plus, after_octet))
        previous_time = after_time
        index = after + 1
    return bytes(out), None


@settings(max_examples=400)
@given(
    lead_min=guard_times,
    inter_char=guard_times,
    trail_guard=guard_times,
    start=st.sampled_from([0.0, 1.0, -math.inf]),
    script=events,
    final_gap=st.integers(0, 16).map(lambda eighths: eighths / 8),
)
def test_detector_conserves_bytes(
    lead_min: float, inter_char: float, trail_guard: float, start: float, script: list[Event], final_gap: float
) -> None:
    """Data out + (on escape) ``+++`` + AT-mode rest + unfed input == all input, in order."""
    detector = EscapeDetector(max(1.0, lead_min), lead_min, inter_char, trail_guard, start=start)
    now = 0.0 if math.isinf(start) else start
    delivered = bytearray()
    escaped_rest: bytes | None = None
    for position, event in enumerate(script):
        previous = now
        now += event.gap
        assert detector.held in (b"", b"+", b"++", b"+++", b"+++A", b"+++a")
        deadline = detector.next_deadline()
        assert deadline is None or deadline > previous
        if event.timer_first and deadline is not None:
            timed = detector.on_timer(min(deadline, now))
            assert timed.rest in (b"", b"A", b"a")
            delivered += timed.data
            if timed.escaped:
                assert timed.data == b""
                escaped_rest = timed.rest + b"".join(e.chunk for e in script[position:])
                break
        result = detector.feed(event.chunk, now)
        delivered += result.data
        if result.escaped:
            assert detector.held == b"" and detector.next_deadline() is None
            escaped_rest = result.rest + b"".join(e.chunk for e in script[position + 1 :])
            break
        assert result.rest == b""
    if escaped_rest is None:
        timed = detector.on_timer(now + final_gap)
        delivered += timed.data
        if timed.escaped:
            escaped_rest = timed.rest
        else:
            delivered += detector.flush_held()
    assert detector.held == b""
    all_input = b"".join(event.chunk for event in script)
    if escaped_rest is None:
        assert bytes(delivered) == all_input
    else:
        assert bytes(delivered) + b"+++" + escaped_rest == all_input


@settings(max_examples=400)
@given(
    lead_min=guard_times,
    inter_char=guard_times,
    trail_guard=guard_times,
    start=st.sampled_from([0.0, 1.0, -math.inf]),
    script=events,
    final_gap=st.integers(0, 16).map(lambda eighths: eighths / 8),
)
@example(  # "+++", then a "+" after lead_min but inside trail_guard starts a new escape
    lead_min=0.25,
    inter_char=1.0,
    trail_guard=1.0,
    start=0.0,
    script=[Event(2.0, False, b"+++"), Event(0.5, False, b"+"), Event(0.125, False, b"++")],
    final_gap=2.0,
)
@example(  # "+++A" typed slowly, then silence: escape with the "A" in AT mode
    lead_min=0.5,
    inter_char=1.0,
    trail_guard=0.5,
    start=0.0,
    script=[Event(1.0, False, b"+"), Event(0.25, True, b"++"), Event(0.25, True, b"A")],
    final_gap=0.5,
)
def test_detector_agrees_with_offline_model(
    lead_min: float, inter_char: float, trail_guard: float, start: float, script: list[Event], final_gap: float
) -> None:
    """Run the whole script (ignoring pokes), then compare verdict and split with the model."""
    params = Params(lead_min, inter_char, trail_guard, start)
    detector = EscapeDetector(max(1.0, lead_min), lead_min, inter_char, trail_guard, start=start)
    now = 0.0 if math.isinf(start) else start
    delivered = bytearray()
    stream: list[tuple[int, float]] = []
    escape_at: int | None = None
    for event in script:
        now += event.gap
        if escape_at is not None:
            stream += [(octet, now) for octet in event.chunk]
            continue
        deadline = detector.next_deadline()
        if event.timer_first and deadline is not None:
            timed = detector.on_timer(min(deadline, now))
            delivered += timed.data
            if timed.escaped:
                escape_at = len(delivered)
        if escape_at is None:
            result = detector.feed(event.chunk, now)
            delivered += result.data
            if result.escaped:
                escape_at = len(delivered)
        stream += [(octet, now) for octet in event.chunk]
    end_time = now + final_gap
    if escape_at is None:
        timed = detector.on_timer(end_time)
        delivered += timed.data
        if timed.escaped:
            escape_at = len(delivered)
        else:
            delivered += detector.flush_held()
    model_data, model_index = model_escape(stream, params, end_time)
    if model_index is None:
        assert escape_at is None
        assert bytes(delivered) == model_data
    else:
        assert escape_at is not None
        assert bytes(delivered) == model_data
        # Before the escape every input byte was delivered, so the escape's "+" sit right after.
        assert model_index == escape_at
        assert bytes(octet for octet, _ in stream[model_index : model_index + 3]) == b"+++"


# -- (d) UDP assembler --------------------------------------------------------------------

assembler_item = st.one_of(st.just(ETX), st.binary(max_size=40))


@settings(max_examples=300)
@given(max_size=st.integers(1, 16), batches=st.lists(st.lists(assembler_item, max_size=6), max_size=8))
def test_udp_assembler_bounded_and_conserving(max_size: int, batches: list[list[DecodedItem]]) -> None:
    assembler = UdpDatagramAssembler(max_size)
    emitted: list[bytes] = []
    for batch in batches:
        datagrams = assembler.feed(batch)
        for datagram in datagrams:
            assert 0 < len(datagram) <= max_size
        emitted += datagrams
        assert len(assembler.pending) < max_size
    # Byte-at-a-time model of "collect until ETX or max_size".
    expected: list[bytes] = []
    collected = bytearray()
    for item in (item for batch in batches for item in batch):
        if isinstance(item, Etx):
            if collected:
                expected.append(bytes(collected))
                collected.clear()
            continue
        for octet in item:
            collected.append(octet)
            if len(collected) == max_size:
                expected.append(bytes(collected))
                collected.clear()
    assert emitted == expected
    assert assembler.pending == bytes(collected)
    all_data = b"".join(item for batch in batches for item in batch if isinstance(item, bytes))
    assert b"".join(emitted) + assembler.pending == all_data
