"""TS 27.010 basic option deframer under garbage and arbitrary chunking.

Random octets fed with random splits must never raise, must give the same frames and drop
counters as one buffer and as octet-at-a-time feeding, and must keep the buffer within one
maximum-size frame.  Valid frames with garbage between them must all come back.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.cmux import (
    CmuxDeframer,
    CmuxFrame,
    ControlMessage,
    FrameType,
    parse_control_messages,
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def run(deframer: CmuxDeframer, chunks: list[bytes]) -> list[CmuxFrame]:
    out: list[CmuxFrame] = []
    for chunk in chunks:
        out += deframer.feed(chunk)
        assert deframer.buffered <= deframer.max_frame_size
    return out


# Streams rich in flags and plausible headers, so that the deframer's paths are all reached.
octet = st.one_of(
    st.integers(0, 255),
    st.sampled_from([0xF9, 0x03, 0x07, 0x3F, 0x73, 0xEF, 0xFF, 0x01, 0x00, 0x1C, 0xD7]),
)
streams = st.lists(octet, max_size=400).map(bytes)


@settings(max_examples=300)
@given(streams, st.lists(st.integers(0, 10_000), max_size=20), st.integers(0, 64))
def test_garbage_never_raises_and_split_independent(data: bytes, cuts: list[int], max_info: int) -> None:
    whole = CmuxDeframer(max_info)
    expected = run(whole, [data])
    split = CmuxDeframer(max_info)
    assert run(split, chunked(data, cuts)) == expected
    assert split.drops == whole.drops
    assert split.buffered == whole.buffered
    single = CmuxDeframer(max_info)
    assert run(single, [bytes([b]) for b in data]) == expected
    assert single.drops == whole.drops
    for frame in expected:
        assert len(frame.information) <= max_info


@given(st.binary(max_size=2000), st.lists(st.integers(0, 10_000), max_size=10))
def test_random_binary_bounded(data: bytes, cuts: list[int]) -> None:
    deframer = CmuxDeframer()
    frames = run(deframer, chunked(data, cuts))
    for frame in frames:
        assert frame.emit() == frame.emit()  # every emitted frame is a well-formed value


@given(st.binary(max_size=200))
def test_control_parser_only_raises_malformed(data: bytes) -> None:
    try:
        messages = parse_control_messages(data)
    except MalformedPacket:
        return
    assert parse_control_messages(b"".join(m.emit() for m in messages)) == messages


@st.composite
def frames(draw: st.DrawFn, max_info: int = 200) -> CmuxFrame:
    dlci = draw(st.integers(0, 63))
    cr = draw(st.booleans())
    if dlci == 62 and not cr:  # address 0xF9 is not receivable (idle fill)
        cr = True
    return CmuxFrame(
        dlci=dlci,
        control=draw(st.sampled_from(list(FrameType))),
        poll_final=draw(st.booleans()),
        command_response=cr,
        information=draw(st.binary(max_size=max_info)),
    )


# Garbage that cannot begin a frame: first octet has EA=0, and no flag anywhere in it.
garbage = st.one_of(
    st.just(b""),
    st.tuples(
        st.integers(0, 127).map(lambda v: v << 1),
        st.binary(max_size=40).map(lambda b: b.replace(b"\xf9", b"\x00")),
    ).map(lambda t: bytes([t[0]]) + t[1]),
)


@settings(max_examples=200)
@given(
    st.lists(st.tuples(frames(), garbage, st.integers(0, 3)), max_size=12),
    st.binary(max_size=30).map(lambda b: b.replace(b"\xf9", b"")),
    st.lists(st.integers(0, 100_000), max_size=20),
)
def test_frames_with_garbage_round_trip(
    items: list[tuple[CmuxFrame, bytes, int]], lead: bytes, cuts: list[int]
) -> None:
    stream = bytearray(lead)
    nonempty_garbage = 0
    for frame, junk, extra_flags in items:
        wire = frame.emit()
        stream += b"\xf9" * extra_flags + wire
        if junk:
            stream += junk
            nonempty_garbage += 1
    deframer = CmuxDeframer(max_information=200)
    out = run(deframer, chunked(bytes(stream), cuts))
    assert out == [frame for frame, _, _ in items]
    assert deframer.frames == len(items)
    # Each garbage run is judged at its first octet (address EA=0) after the closing flag.
    assert deframer.drops[DropReason.BAD_VALUE] == nonempty_garbage
    assert sum(deframer.drops.values()) == nonempty_garbage


@given(st.lists(frames(max_info=31), min_size=1, max_size=8), st.lists(st.integers(0, 5000), max_size=10))
def test_shared_flags_round_trip(items: list[CmuxFrame], cuts: list[int]) -> None:
    stream = bytearray()
    for frame in items:
        stream += frame.emit()[:-1]  # the next frame's opening flag closes this one
    stream += b"\xf9"
    deframer = CmuxDeframer()
    assert run(deframer, chunked(bytes(stream), cuts)) == items
    assert not deframer.drops


@given(st.lists(st.tuples(st.integers(0, 63), st.booleans(), st.binary(max_size=300)), max_size=6))
def test_control_messages_round_trip(specs: list[tuple[int, bool, bytes]]) -> None:
    messages = [ControlMessage(t, c, v) for t, c, v in specs]
    assert parse_control_messages(b"".join(m.emit() for m in messages)) == messages
