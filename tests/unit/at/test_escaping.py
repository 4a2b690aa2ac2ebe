"""WIPSoft data-mode byte rules: DLE/ETX stuffing, UDP datagram assembly, ``+++`` detection."""

from __future__ import annotations

import dataclasses

import pytest

from at_frontend.escaping import (
    ETX,
    MAX_UDP_DATAGRAM,
    DecodedItem,
    DetectorResult,
    DleDecoder,
    EscapeDetector,
    Etx,
    UdpDatagramAssembler,
    escape,
)

ALL_BYTES = bytes(range(256))


def decoded_data(items: list[DecodedItem]) -> bytes:
    """Concatenate the data segments, asserting there is no ETX and no empty segment."""
    assert all(isinstance(item, bytes) and item for item in items), items
    return b"".join(item for item in items if isinstance(item, bytes))


def merge(items: list[DecodedItem]) -> list[DecodedItem]:
    """Coalesce adjacent data segments (to compare outputs of different chunkings)."""
    merged: list[DecodedItem] = []
    for item in items:
        if isinstance(item, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + item
        else:
            merged.append(item)
    return merged


# -- escape -------------------------------------------------------------------------------


def test_escape_stuffs_dle_and_etx_only() -> None:
    assert escape(b"a\x03b\x10c") == b"a\x10\x03b\x10\x10c"
    assert escape(b"\x10\x03") == b"\x10\x10\x10\x03"
    assert escape(b"") == b""
    plain = bytes(b for b in ALL_BYTES if b not in (0x03, 0x10))
    assert escape(plain) == plain


def test_escape_doubles_each_special_byte_once() -> None:
    escaped = escape(ALL_BYTES)
    assert len(escaped) == 258
    assert escaped.count(b"\x10") == 3  # DLE DLE for 0x10, DLE before 0x03


def test_escape_accepts_bytearray() -> None:
    assert escape(bytearray(b"\x03")) == b"\x10\x03"
    assert type(escape(bytearray(b"x"))) is bytes


# -- DleDecoder ---------------------------------------------------------------------------


def test_round_trip_all_byte_values_in_one_chunk() -> None:
    decoder = DleDecoder()
    assert decoder.feed(escape(ALL_BYTES)) == [ALL_BYTES]
    assert not decoder.pending_dle


@pytest.mark.parametrize("payload", [ALL_BYTES, b"\x10" * 7, b"\x03\x10\x03\x10", ALL_BYTES[::-1] * 2])
def test_round_trip_split_at_every_position(payload: bytes) -> None:
    wire = escape(payload)
    for split in range(len(wire) + 1):
        decoder = DleDecoder()
        first = decoder.feed(wire[:split])
        second = decoder.feed(wire[split:])
        assert decoded_data(first + second) == payload, split
        assert not decoder.pending_dle


def test_round_trip_byte_at_a_time() -> None:
    decoder = DleDecoder()
    items: list[DecodedItem] = []
    for octet in escape(ALL_BYTES * 2):
        items += decoder.feed(bytes((octet,)))
    assert decoded_data(items) == ALL_BYTES * 2


def test_dle_at_chunk_end_is_held() -> None:
    decoder = DleDecoder()
    assert decoder.feed(b"abc\x10") == [b"abc"]
    assert decoder.pending_dle
    assert decoder.feed(b"") == []
    assert decoder.pending_dle
    assert decoder.feed(b"\x03def") == [b"\x03def"]
    assert not decoder.pending_dle


def test_lone_dle_chunk_then_dle() -> None:
    decoder = DleDecoder()
    assert decoder.feed(b"\x10") == []
    assert decoder.pending_dle
    assert decoder.feed(b"\x10") == [b"\x10"]
    assert not decoder.pending_dle


def test_pending_dle_before_plain_chunk() -> None:
    decoder = DleDecoder()
    decoder.feed(b"\x10")
    assert decoder.feed(b"xyz") == [b"xyz"]
    assert not decoder.pending_dle


def test_etx_markers_split_data() -> None:
    decoder = DleDecoder()
    assert decoder.feed(b"one\x03two\x03\x03\x10\x03three\x03") == [
        b"one",
        ETX,
        b"two",
        ETX,
        ETX,
        b"\x03three",
        ETX,
    ]
    assert decoder.feed(b"\x03") == [ETX]


def test_etx_marker_is_a_singleton() -> None:
    assert ETX is Etx.ETX
    assert repr(ETX) == "ETX"
    assert len(Etx) == 1


def test_lenient_dle_before_ordinary_byte() -> None:
    decoder = DleDecoder()
    assert decoder.feed(b"a\x10bc\x10\x10\x10\x03") == [b"abc\x10\x03"]


def test_adjacent_data_is_coalesced_and_never_empty() -> None:
    decoder = DleDecoder()
    items = decoder.feed(b"\x10\x10\x10\x10\x10\x03")
    assert items == [b"\x10\x10\x03"]
    assert decoder.feed(b"\x03\x03") == [ETX, ETX]


def test_reset_drops_pending_dle() -> None:
    decoder = DleDecoder()
    decoder.feed(b"\x10")
    decoder.reset()
    assert not decoder.pending_dle
    assert decoder.feed(b"\x03") == [ETX]


def test_large_chunk() -> None:
    payload = ALL_BYTES * 4096
    decoder = DleDecoder()
    assert decoder.feed(escape(payload) + b"\x03") == [payload, ETX]


def test_same_result_for_every_two_way_split_of_mixed_input() -> None:
    wire = b"ab\x10\x03\x03\x10\x10c\x10x\x03\x03d"
    whole = DleDecoder().feed(wire)
    for split in range(len(wire) + 1):
        decoder = DleDecoder()
        assert merge(decoder.feed(wire[:split]) + decoder.feed(wire[split:])) == whole


# -- UdpDatagramAssembler -----------------------------------------------------------------


def test_etx_ends_datagrams() -> None:
    assembler = UdpDatagramAssembler()
    assert assembler.feed([b"hel", b"lo", ETX, b"world"]) == [b"hello"]
    assert assembler.pending == b"world"
    assert assembler.feed([ETX]) == [b"world"]
    assert assembler.pending == b""


def test_empty_etx_yields_nothing() -> None:
    assembler = UdpDatagramAssembler()
    assert assembler.feed([ETX, ETX]) == []
    assert assembler.feed([b"x", ETX, ETX]) == [b"x"]


def test_exactly_max_size_is_emitted_at_once() -> None:
    assembler = UdpDatagramAssembler()
    assert assembler.max_size == MAX_UDP_DATAGRAM == 5840
    payload = bytes(5840)
    assert assembler.feed([payload]) == [payload]
    assert assembler.pending == b""
    assert assembler.feed([ETX]) == []  # the ETX closes nothing: already sent


def test_one_over_max_size_leaves_one_byte_pending() -> None:
    assembler = UdpDatagramAssembler()
    payload = bytes(index % 251 for index in range(5841))
    datagrams = assembler.feed([payload])
    assert datagrams == [payload[:5840]]
    assert assembler.pending == payload[5840:]
    assert len(assembler.pending) == 1


def test_max_size_reached_across_items() -> None:
    assembler = UdpDatagramAssembler(max_size=4)
    assert assembler.feed([b"ab", b"c"]) == []
    assert assembler.feed([b"defghijkl", ETX]) == [b"abcd", b"efgh", b"ijkl"]
    assert assembler.pending == b""


def test_take_pending_and_validation() -> None:
    assembler = UdpDatagramAssembler(max_size=10)
    assembler.feed([b"part"])
    assert assembler.take_pending() == b"part"
    assert assembler.pending == b""
    with pytest.raises(ValueError):
        UdpDatagramAssembler(max_size=0)


def test_assembler_with_decoder() -> None:
    decoder = DleDecoder()
    assembler = UdpDatagramAssembler()
    wire = escape(b"first\x03") + b"\x03" + escape(b"\x10second") + b"\x03"
    assert assembler.feed(decoder.feed(wire)) == [b"first\x03", b"\x10second"]


# -- EscapeDetector -----------------------------------------------------------------------


def test_classic_guarded_escape_via_timer() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"hello", 10.0) == DetectorResult(data=b"hello")
    assert detector.feed(b"+++", 11.0) == DetectorResult()
    assert detector.held == b"+++"
    assert detector.next_deadline() == 11.5
    assert detector.on_timer(11.4) == DetectorResult()
    assert detector.on_timer(12.0) == DetectorResult(escaped=True)
    assert detector.held == b"" and detector.next_deadline() is None


def test_escape_then_at_command_in_same_feed() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"payload", 5.0)
    result = detector.feed(b"+++AT+WIPCLOSE=2,1\r", 6.5)
    assert result == DetectorResult(data=b"", escaped=True, rest=b"AT+WIPCLOSE=2,1\r")
    assert detector.held == b"" and detector.next_deadline() is None


def test_escape_then_lowercase_at_in_later_feed() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"+++", 2.0) == DetectorResult()
    assert detector.feed(b"a", 2.1) == DetectorResult()
    assert detector.held == b"+++a"
    assert detector.feed(b"t+wipclose=1,1\r", 2.2) == DetectorResult(escaped=True, rest=b"at+wipclose=1,1\r")


def test_plus_then_other_byte_is_data() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"+++", 2.0) == DetectorResult()
    assert detector.feed(b"x", 2.1) == DetectorResult(data=b"+++x")
    assert detector.next_deadline() is None


def test_plus_a_then_other_byte_is_data() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"+++A", 2.0) == DetectorResult()
    assert detector.feed(b"B", 2.1) == DetectorResult(data=b"+++AB")
    assert detector.feed(b"+++Ax", 5.0) == DetectorResult(data=b"+++Ax")


def test_plus_a_then_silence_is_escape_with_a_in_rest() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"+++", 2.0)
    detector.feed(b"A", 2.3)
    assert detector.next_deadline() == 2.8
    assert detector.on_timer(2.7) == DetectorResult()
    assert detector.on_timer(2.8) == DetectorResult(escaped=True, rest=b"A")


def test_short_leading_silence_is_data() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"data", 1.0)
    assert detector.feed(b"+++", 1.2) == DetectorResult(data=b"+++")
    assert detector.next_deadline() is None
    assert detector.on_timer(5.0) == DetectorResult()


def test_leading_silence_down_to_lead_min() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"data", 1.0)
    assert detector.feed(b"+++", 1.5) == DetectorResult()
    assert detector.on_timer(2.0).escaped


def test_silence_counts_from_start() -> None:
    detector = EscapeDetector(start=10.0)
    assert detector.feed(b"+++", 10.1) == DetectorResult(data=b"+++")
    fresh = EscapeDetector()  # start = -inf: silent since forever
    assert fresh.feed(b"+++", 0.0) == DetectorResult()
    assert fresh.on_timer(0.5).escaped


def test_incomplete_plus_expires_into_data() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"++", 3.0) == DetectorResult()
    assert detector.next_deadline() == 4.0
    assert detector.on_timer(3.9) == DetectorResult()
    assert detector.on_timer(4.0) == DetectorResult(data=b"++")
    assert detector.held == b"" and detector.next_deadline() is None


def test_pluses_in_three_feeds_after_silence() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"+", 2.0) == DetectorResult()
    assert detector.feed(b"+", 2.1) == DetectorResult()
    assert detector.feed(b"+", 2.2) == DetectorResult()
    assert detector.next_deadline() == pytest.approx(2.7)
    assert detector.on_timer(2.75) == DetectorResult(escaped=True)


def test_plus_inside_chunk_is_never_escape() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"a+++b", 5.0) == DetectorResult(data=b"a+++b")
    assert detector.feed(b"a+++", 10.0) == DetectorResult(data=b"a+++")
    assert detector.next_deadline() is None


def test_held_plus_and_flush_held() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"+++", 2.0)
    assert detector.flush_held() == b"+++"
    assert detector.held == b"" and detector.next_deadline() is None
    assert detector.flush_held() == b""
    assert detector.on_timer(10.0) == DetectorResult()


def test_four_pluses_are_data() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"++++", 2.0) == DetectorResult(data=b"++++")
    detector.feed(b"+++", 4.0)
    assert detector.feed(b"+", 4.1) == DetectorResult(data=b"++++")


def test_slow_plus_releases_and_restarts() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"+", 2.0) == DetectorResult()
    # 1.0 s later: the first "+" timed out (data) and this one starts a new candidate.
    assert detector.feed(b"++", 3.0) == DetectorResult(data=b"+")
    assert detector.feed(b"+", 3.2) == DetectorResult()
    assert detector.on_timer(3.7).escaped


def test_breaking_plus_can_start_a_new_candidate() -> None:
    # With trail_guard > lead_min a "+" 0.5 s after "+++" breaks it and starts anew.
    detector = EscapeDetector(1.0, 0.25, 1.0, 1.0, start=0.0)
    assert detector.feed(b"+++", 2.0) == DetectorResult()
    assert detector.feed(b"+", 2.5) == DetectorResult(data=b"+++")
    assert detector.held == b"+"
    assert detector.feed(b"++", 2.6) == DetectorResult()
    assert detector.on_timer(3.6) == DetectorResult(escaped=True)


def test_late_timer_feed_after_trail_guard_is_escape() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"+++", 2.0)
    # The caller missed the timer: bytes arriving after trail_guard already belong to AT mode.
    assert detector.feed(b"ATO\r", 3.0) == DetectorResult(escaped=True, rest=b"ATO\r")
    detector.feed(b"+++a", 5.0)
    assert detector.feed(b"xyz", 6.0) == DetectorResult(escaped=True, rest=b"axyz")


def test_late_inter_char_expiry_in_feed() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"++", 2.0)
    assert detector.feed(b"data", 3.5) == DetectorResult(data=b"++data")


def test_feed_empty_is_timer() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"+++", 2.0)
    assert detector.feed(b"", 2.1) == DetectorResult()
    assert detector.feed(b"", 2.5) == DetectorResult(escaped=True)


def test_escape_resets_detector() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"+++", 2.0)
    assert detector.on_timer(2.5).escaped
    assert detector.last_byte_time == 2.5
    detector.reset(100.0)
    assert detector.feed(b"+++", 100.2) == DetectorResult(data=b"+++")


def test_plus_after_data_then_at_without_guard_is_data() -> None:
    detector = EscapeDetector(start=0.0)
    detector.feed(b"x", 1.0)
    assert detector.feed(b"+++AT\r", 1.1) == DetectorResult(data=b"+++AT\r")


def test_other_bytes_after_at_candidate_in_same_chunk() -> None:
    detector = EscapeDetector(start=0.0)
    assert detector.feed(b"+++AB+++AT", 3.0) == DetectorResult(data=b"+++AB+++AT")


def test_configuration_and_validation() -> None:
    detector = EscapeDetector(2.0, 0.25, 0.75, 0.3)
    assert (detector.lead_guard, detector.lead_min, detector.inter_char, detector.trail_guard) == (2.0, 0.25, 0.75, 0.3)
    with pytest.raises(ValueError):
        EscapeDetector(lead_min=0.0)
    with pytest.raises(ValueError):
        EscapeDetector(trail_guard=-1.0)
    with pytest.raises(ValueError):
        EscapeDetector(inter_char=float("nan"))
    with pytest.raises(ValueError):
        EscapeDetector(lead_guard=0.2, lead_min=0.5)


def test_result_is_frozen() -> None:
    result = DetectorResult(data=b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.data = b"y"  # type: ignore[misc]


def test_large_chunk_passes_through_unchanged() -> None:
    detector = EscapeDetector(start=0.0)
    payload = b"+" + ALL_BYTES * 1000
    assert detector.feed(payload, 5.0) == DetectorResult(data=payload)
