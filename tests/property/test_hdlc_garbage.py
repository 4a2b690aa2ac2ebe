"""HDLC deframer under garbage and arbitrary chunking (h11-style ``tr()`` and afl invariants).

Random bytes fed with random splits must never raise, must give the same frames and
counters as one buffer and as byte-at-a-time feeding, and must match a deliberately naive
octet-at-a-time model of the RFC 1662 receiver written here from the rules.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack._py.hdlc import hdlc_encode


def reference_fcs(data: bytes, fcs_bits: int) -> int:
    fcs, generator = (0xFFFF, 0x8408) if fcs_bits == 16 else (0xFFFFFFFF, 0xEDB88320)
    for octet in data:
        fcs ^= octet
        for _ in range(8):
            fcs = (fcs >> 1) ^ generator if fcs & 1 else fcs >> 1
    return fcs


class ModelDeframer:
    """One octet at a time, straight from RFC 1662 §4 and §7.1; no attempt at speed."""

    def __init__(self, max_frame: int, rx_accm: int, fcs_bits: int) -> None:
        self.max_frame, self.rx_accm, self.fcs_bits = max_frame, rx_accm, fcs_bits
        self.frame = bytearray()
        self.escaped = False
        self.discarding = False
        self.counts = dict.fromkeys(("frames", "bad_fcs", "aborted", "too_long", "too_short", "bytes_in"), 0)

    def set_max_frame(self, value: int) -> None:
        self.max_frame = value
        if len(self.frame) > value:
            self.counts["too_long"] += 1
            self.frame, self.escaped, self.discarding = bytearray(), False, True

    def feed(self, data: bytes) -> list[bytes]:
        delivered: list[bytes] = []
        self.counts["bytes_in"] += len(data)
        for octet in data:
            if octet == 0x7E:
                self.close(delivered)
            elif self.discarding:
                continue
            elif octet < 0x20 and self.rx_accm >> octet & 1:
                continue  # deleted on arrival
            elif octet == 0x7D and not self.escaped:
                self.escaped = True
            else:
                if len(self.frame) == self.max_frame:
                    self.counts["too_long"] += 1
                    self.frame, self.escaped, self.discarding = bytearray(), False, True
                    continue
                self.frame.append(octet ^ 0x20 if self.escaped else octet)
                self.escaped = False
        return delivered

    def close(self, delivered: list[bytes]) -> None:
        frame, fcs_length = bytes(self.frame), self.fcs_bits // 8
        good = 0xF0B8 if self.fcs_bits == 16 else 0xDEBB20E3
        if self.discarding:
            pass
        elif self.escaped:
            self.counts["aborted"] += 1
        elif not frame:
            pass
        elif len(frame) < fcs_length + 2:
            self.counts["too_short"] += 1
        elif reference_fcs(frame, self.fcs_bits) != good:
            self.counts["bad_fcs"] += 1
        else:
            self.counts["frames"] += 1
            delivered.append(frame[:-fcs_length])
        self.frame, self.escaped, self.discarding = bytearray(), False, False


GARBAGE = st.one_of(
    st.binary(max_size=600),
    st.lists(st.sampled_from([0x7E, 0x7D, 0x5D, 0x5E, 0x11, 0x13, 0x00, 0xFF, 0x03, 0x41]), max_size=300).map(bytes),
)
PARAMETERS = st.tuples(
    st.integers(1, 80) | st.just(1508),
    st.sampled_from([0, 0xFFFFFFFF, 1 << 0x11 | 1 << 0x13]),
    st.sampled_from([16, 32]),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    return [data[start:end] for start, end in zip(points, points[1:], strict=False)]


def feed_all(deframer: Any, pieces: list[bytes]) -> list[bytes]:
    return [frame for piece in pieces for frame in deframer.feed(piece)]


@settings(max_examples=300)
@given(data=GARBAGE, cuts=st.lists(st.integers(0, 600), max_size=20), parameters=PARAMETERS)
def test_garbage_never_raises_and_matches_model(
    accel_impl: SimpleNamespace, data: bytes, cuts: list[int], parameters: tuple[int, int, int]
) -> None:
    model = ModelDeframer(*parameters)
    whole = accel_impl.HdlcDeframer(*parameters)
    chunked = accel_impl.HdlcDeframer(*parameters)
    expected = model.feed(data)
    assert whole.feed(data) == expected
    assert feed_all(chunked, split(data, cuts)) == expected
    assert whole.counters() == chunked.counters() == model.counts
    if accel_impl.IMPLEMENTATION == "py":
        assert len(chunked._buffer) <= parameters[0]  # memory bounded by max_frame


@settings(max_examples=100)
@given(data=GARBAGE, parameters=PARAMETERS)
def test_byte_at_a_time_equals_one_buffer(
    accel_impl: SimpleNamespace, data: bytes, parameters: tuple[int, int, int]
) -> None:
    whole = accel_impl.HdlcDeframer(*parameters)
    single = accel_impl.HdlcDeframer(*parameters)
    assert feed_all(single, [bytes((octet,)) for octet in data]) == whole.feed(data)
    assert single.counters() == whole.counters()


@settings(max_examples=200)
@given(data=GARBAGE, cuts=st.lists(st.integers(0, 600), max_size=20), parameters=PARAMETERS)
def test_counters_account_for_every_closed_frame(
    accel_impl: SimpleNamespace, data: bytes, cuts: list[int], parameters: tuple[int, int, int]
) -> None:
    deframer = accel_impl.HdlcDeframer(*parameters)
    delivered = feed_all(deframer, split(data, cuts))
    counts = deframer.counters()
    flags = data.count(0x7E)
    assert counts["frames"] == len(delivered)
    assert counts["bytes_in"] == len(data)
    # every verdict but "too long" is given at a flag; "too long" at most once per frame
    assert counts["frames"] + counts["bad_fcs"] + counts["aborted"] + counts["too_short"] <= flags
    assert counts["frames"] + sum(counts[key] for key in ("bad_fcs", "aborted", "too_short", "too_long")) <= (flags + 1)


@st.composite
def valid_traffic(draw: st.DrawFn) -> tuple[list[bytes], bytes, int]:
    fcs_bits = draw(st.sampled_from([16, 32]))
    payloads = draw(st.lists(st.binary(min_size=2, max_size=200), max_size=6))
    tx_accm = draw(st.sampled_from([0xFFFFFFFF, 0x000A0000]))
    stream = b"".join(hdlc_encode(payload, tx_accm, fcs_bits) for payload in payloads)
    return payloads, stream, fcs_bits


@settings(max_examples=200)
@given(traffic=valid_traffic(), cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_valid_frames_survive_any_split(
    accel_impl: SimpleNamespace, traffic: tuple[list[bytes], bytes, int], cuts: list[int]
) -> None:
    payloads, stream, fcs_bits = traffic
    # receive ACCM matching what the sender escaped (RFC 1662 §7.1)
    deframer = accel_impl.HdlcDeframer(rx_accm=0x000A0000, fcs_bits=fcs_bits)
    assert feed_all(deframer, split(stream, cuts)) == payloads
    assert deframer.counters()["frames"] == len(payloads)
    assert sum(deframer.counters().values()) == len(payloads) + len(stream)


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 64), garbage=st.binary(min_size=1, max_size=50))
def test_memory_bounded_on_endless_flagless_input(accel_impl: SimpleNamespace, size: int, garbage: bytes) -> None:
    deframer = accel_impl.HdlcDeframer(max_frame=size, rx_accm=0)
    flagless = garbage.replace(b"\x7e", b"") or b"\x41"
    for _ in range(200):
        deframer.feed(flagless * 8)
    assert deframer.too_long <= 1
    if accel_impl.IMPLEMENTATION == "py":
        assert len(deframer._buffer) <= size
    deframer.max_frame = 1508
    assert deframer.feed(b"\x7e" + hdlc_encode(b"\x21\x45\x00", 0)) == [b"\x21\x45\x00"]
