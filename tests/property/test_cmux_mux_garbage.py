"""The 27.010 multiplexer (wipstack.cellular.cmux) under garbage, protocol noise and any split.

Whatever arrives, in whatever pieces, with timers firing in between: nothing raises, the
receive buffer stays within one frame and the output within the control backlog plus what
the caller queued.  Data frames separated by garbage all arrive, in order.  Data sent
through an initiator/responder pair arrives intact and in order for any N1 and any split.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack.cellular.cmux import (
    MAX_CONTROL_BACKLOG,
    ChannelClosed,
    ChannelOpened,
    DataReceived,
    FlowControlChanged,
    ModemStatusChanged,
    Multiplexer,
    MuxClosed,
    MuxEvent,
    MuxParameters,
    MuxRole,
    MuxStarted,
)
from wipstack.wire.cmux import CmuxFrame, ControlMessage, ControlType, FrameType

MAX_FRAME = 1 + 4 + 1500 + 1 + 1  # flag, header with 2-octet length, max_receive, FCS, flag
EVENT_TYPES = (
    MuxStarted, MuxClosed, ChannelOpened, ChannelClosed, DataReceived, ModemStatusChanged, FlowControlChanged,
)  # fmt: skip
SENT_PER_ROUND = 40


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def frame(dlci: int, control: FrameType, pf: bool, cr: bool, info: bytes = b"") -> bytes:
    return CmuxFrame(dlci, control, pf, cr, info).emit()


def responder_with(*dlcis: int) -> Multiplexer:
    mux = Multiplexer(MuxRole.RESPONDER)
    mux.receive(frame(0, FrameType.SABM, True, True), 0.0)
    for dlci in dlcis:
        mux.receive(frame(dlci, FrameType.SABM, True, True), 0.0)
    mux.bytes_to_send()
    return mux


@st.composite
def protocol_frames(draw: st.DrawFn) -> bytes:
    """Well-formed frames of any type on any DLCI, control messages of any type on DLCI 0."""
    dlci = draw(st.integers(0, 63))
    cr = draw(st.booleans()) or (dlci == 62)  # DLCI 62 with C/R=0 would be a flag octet
    control = draw(st.sampled_from(list(FrameType)))
    if dlci == 0 and control in (FrameType.UIH, FrameType.UI) and draw(st.booleans()):
        messages = draw(
            st.lists(
                st.builds(
                    ControlMessage,
                    st.one_of(st.sampled_from(list(ControlType)), st.integers(0, 63)),
                    st.booleans(),
                    st.one_of(st.binary(max_size=12), st.just(bytes([0x07, 0x8D])), st.just(bytes([0x07, 0x8F]))),
                ),
                min_size=1,
                max_size=3,
            )
        )
        info = b"".join(m.emit() for m in messages)
    else:
        info = draw(st.binary(max_size=40))
    return frame(dlci, control, draw(st.booleans()), cr, info)


noise = st.one_of(st.binary(max_size=60), protocol_frames(), st.just(b"\xf9"), st.just(b"\xf9\x07\xef"))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(MuxRole)),
    st.booleans(),
    st.lists(st.tuples(noise, st.floats(0, 0.5)), max_size=40),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_noise_never_raises_and_memory_stays_bounded(
    role: MuxRole, pre_started: bool, pieces: list[tuple[bytes, float]], cuts: list[int]
) -> None:
    mux = Multiplexer(role)
    if role is MuxRole.INITIATOR:
        mux.start(0.0)
        mux.open_channel(1, 0.0)
    elif pre_started:
        mux = responder_with(1, 2)
    now = 0.0
    for round_number, (piece, step) in enumerate(pieces):
        now += step
        for chunk in chunked(piece, cuts):
            events = mux.receive(chunk, now)
            assert all(isinstance(e, EVENT_TYPES) for e in events)
            assert mux.buffered <= MAX_FRAME
        deadline = mux.next_deadline()
        if deadline is not None and deadline <= now:
            mux.on_timer(now)
            next_deadline = mux.next_deadline()
            assert next_deadline is None or next_deadline > now  # a timer never stays due
        for dlci in mux.open_dlcis:
            if mux.can_send(dlci):
                mux.send(dlci, b"\xf9" * SENT_PER_ROUND)
        # what waits for the line: the peer-provoked backlog, our own commands and the data we queued
        queued_by_us = SENT_PER_ROUND * len(pieces) * 63 + 200 * 64
        assert mux.output_pending <= MAX_CONTROL_BACKLOG + queued_by_us
        if round_number % 2:
            mux.bytes_to_send(int(step * 1000))
    if mux.closed:
        assert mux.open_dlcis == frozenset() and all(mux.queued(d) == 0 for d in range(64))


# Garbage that cannot open a frame: its first octet has EA=0 and it holds no flag.
garbage = st.one_of(
    st.just(b""),
    st.tuples(
        st.integers(0, 127).map(lambda v: v << 1),
        st.binary(max_size=50).map(lambda b: b.replace(b"\xf9", b"\x00")),
    ).map(lambda t: bytes([t[0]]) + t[1]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(min_size=1, max_size=200), garbage, st.integers(0, 2))),
    st.lists(st.integers(0, 100_000), max_size=30),
)
def test_data_between_garbage_all_arrives_in_order(items: list[tuple[int, bytes, bytes, int]], cuts: list[int]) -> None:
    mux = responder_with(1, 2)
    stream = bytearray()
    for dlci, payload, junk, idle_flags in items:
        stream += b"\xf9" * idle_flags + frame(dlci, FrameType.UIH, False, True, payload) + junk
    events: list[MuxEvent] = []
    for chunk in chunked(bytes(stream), cuts):
        events += mux.receive(chunk, 0.0)
    assert events == [DataReceived(dlci, payload) for dlci, payload, _, _ in items]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 300),
    st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.booleans(), st.binary(max_size=900)), max_size=12),
    st.randoms(use_true_random=False),
)
def test_pair_delivers_everything_in_order(n1: int, sends: list[tuple[int, bool, bytes]], rng: random.Random) -> None:
    params = MuxParameters(n1=n1)
    a, b = Multiplexer(MuxRole.INITIATOR, params), Multiplexer(MuxRole.RESPONDER, params)
    events: dict[int, list[MuxEvent]] = {id(a): [], id(b): []}
    randint = rng.randint

    def settle() -> None:
        for _ in range(10_000):
            moved = False
            for src, dst in ((a, b), (b, a)):
                data = src.bytes_to_send(randint(1, 64))
                while data:
                    size = randint(1, len(data))
                    events[id(dst)] += dst.receive(data[:size], 0.0)
                    data = data[size:]
                    moved = True
            if not moved:
                return
        raise AssertionError("no settle")

    a.start(0.0)
    for dlci in (1, 2, 3):
        a.open_channel(dlci, 0.0)
    settle()
    assert a.open_dlcis == b.open_dlcis == {1, 2, 3}
    expected: dict[tuple[int, int], bytes] = {}
    for dlci, from_initiator, payload in sends:
        src = a if from_initiator else b
        src.send(dlci, payload)
        key = (id(b) if from_initiator else id(a), dlci)
        expected[key] = expected.get(key, b"") + payload
        if randint(0, 2) == 0:
            settle()
    settle()
    got: dict[tuple[int, int], bytes] = {}
    for mux in (a, b):
        for event in events[id(mux)]:
            if isinstance(event, DataReceived):
                assert 0 < len(event.data) <= n1
                got[(id(mux), event.dlci)] = got.get((id(mux), event.dlci), b"") + event.data
    assert got == {k: v for k, v in expected.items() if v}
    assert not a.counters and not b.counters
