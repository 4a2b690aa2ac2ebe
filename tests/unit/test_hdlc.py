"""HDLC-like framing (RFC 1662 §4): escaping, encoding and the incremental deframer."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

LCP_CONF_REQ = bytes.fromhex("ff03c02101010014020600000000050620b67ba507020802")
IP_FRAME = bytes.fromhex("ff030021") + bytes(range(256)) * 2


def manual_escape(data: bytes, accm: int) -> bytes:
    out = bytearray()
    for octet in data:
        if octet in (0x7D, 0x7E) or (octet < 0x20 and accm >> octet & 1):
            out += bytes((0x7D, octet ^ 0x20))
        else:
            out.append(octet)
    return bytes(out)


def fcs16_trailer(impl: SimpleNamespace, frame: bytes) -> bytes:
    fcs: int = impl.fcs16(frame)
    return (fcs ^ 0xFFFF).to_bytes(2, "little")


def raw_frame(impl: SimpleNamespace, frame: bytes, accm: int = 0xFFFFFFFF) -> bytes:
    """Flag + escape(frame + good FCS-16) + flag, built without hdlc_encode."""
    return b"\x7e" + manual_escape(frame + fcs16_trailer(impl, frame), accm) + b"\x7e"


def test_constants(accel_impl: SimpleNamespace) -> None:
    assert (accel_impl.FLAG, accel_impl.ESCAPE) == (0x7E, 0x7D)


@pytest.mark.parametrize("accm", [0, 0xFFFFFFFF, 0x000A0000, 0x80000001, 0x00000100])
def test_escape_follows_accm(accel_impl: SimpleNamespace, accm: int) -> None:
    data = bytes(range(256))
    assert accel_impl.hdlc_escape(data, accm) == manual_escape(data, accm)


def test_escape_always_escapes_flag_and_escape(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.hdlc_escape(b"\x7e\x7d\x5e", 0) == b"\x7d\x5e\x7d\x5d\x5e"


def test_escape_without_special_octets_is_identity(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.hdlc_escape(b"hello world", 0xFFFFFFFF) == b"hello world"
    assert accel_impl.hdlc_escape(b"", 0xFFFFFFFF) == b""


def test_escape_accepts_buffer_types(accel_impl: SimpleNamespace) -> None:
    backing = b"\x00\x11\x7e\x41"
    assert accel_impl.hdlc_escape(memoryview(backing)[1:], 0xFFFFFFFF) == b"\x7d\x31\x7d\x5e\x41"
    assert accel_impl.hdlc_escape(bytearray(backing), 0) == b"\x00\x11\x7d\x5e\x41"


def test_unescape_inverts_escape(accel_impl: SimpleNamespace) -> None:
    rng = random.Random(4)
    for _ in range(300):
        data = rng.randbytes(rng.randrange(100))
        accm = rng.choice([0, 0xFFFFFFFF, rng.randrange(1 << 32)])
        assert accel_impl.hdlc_unescape(accel_impl.hdlc_escape(data, accm)) == data


def test_unescape_any_octet_may_be_escaped(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.hdlc_unescape(b"\x7d\x61\x7d\x7d\x7d\x5d") == b"\x41\x5d\x7d"


def test_unescape_drops_trailing_lone_escape(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.hdlc_unescape(b"ab\x7d") == b"ab"
    assert accel_impl.hdlc_unescape(b"\x7d\x5d\x7d") == b"\x7d"
    assert accel_impl.hdlc_unescape(b"\x7d\x7d") == b"\x5d"


def test_encode_lcp_conf_req_golden(accel_impl: SimpleNamespace) -> None:
    encoded = accel_impl.hdlc_encode(LCP_CONF_REQ)
    assert encoded == b"\x7e" + manual_escape(LCP_CONF_REQ + bytes.fromhex("f18b"), 0xFFFFFFFF) + b"\x7e"
    assert encoded.endswith(b"\xf1\x8b\x7e")


def test_encode_fcs32_trailer(accel_impl: SimpleNamespace) -> None:
    encoded = accel_impl.hdlc_encode(LCP_CONF_REQ, 0, 32)
    trailer = (accel_impl.fcs32(LCP_CONF_REQ) ^ 0xFFFFFFFF).to_bytes(4, "little")
    assert encoded == b"\x7e" + manual_escape(LCP_CONF_REQ + trailer, 0) + b"\x7e"


@pytest.mark.parametrize(("accm", "fcs_bits"), [(-1, 16), (1 << 32, 16), (0, 8), (0, 24)])
def test_encode_rejects_bad_arguments(accel_impl: SimpleNamespace, accm: int, fcs_bits: int) -> None:
    with pytest.raises(ValueError):
        accel_impl.hdlc_encode(b"\xff\x03\xc0\x21", accm, fcs_bits)


def test_deframer_delivers_frame_without_fcs(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(accel_impl.hdlc_encode(LCP_CONF_REQ)) == [LCP_CONF_REQ]
    assert deframer.counters() == {
        "frames": 1,
        "bad_fcs": 0,
        "aborted": 0,
        "too_long": 0,
        "too_short": 0,
        "bytes_in": 45,
    }


def test_deframer_defaults(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    assert (deframer.max_frame, deframer.rx_accm, deframer.fcs_bits) == (1508, 0xFFFFFFFF, 16)


def test_deframer_accepts_frames_split_at_every_byte(accel_impl: SimpleNamespace) -> None:
    stream = accel_impl.hdlc_encode(LCP_CONF_REQ) + accel_impl.hdlc_encode(IP_FRAME)
    for cut in range(len(stream) + 1):
        deframer = accel_impl.HdlcDeframer()
        assert deframer.feed(stream[:cut]) + deframer.feed(stream[cut:]) == [LCP_CONF_REQ, IP_FRAME]
    deframer = accel_impl.HdlcDeframer()
    frames = [frame for octet in stream for frame in deframer.feed(bytes((octet,)))]
    assert frames == [LCP_CONF_REQ, IP_FRAME]
    assert deframer.frames == 2


def test_deframer_shared_flag_between_frames(accel_impl: SimpleNamespace) -> None:
    first, second = accel_impl.hdlc_encode(LCP_CONF_REQ), accel_impl.hdlc_encode(IP_FRAME)
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(first + second[1:]) == [LCP_CONF_REQ, IP_FRAME]


def test_deframer_ignores_empty_frames(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(b"\x7e" * 10 + accel_impl.hdlc_encode(LCP_CONF_REQ) + b"\x7e" * 3) == [LCP_CONF_REQ]
    assert deframer.counters()["frames"] == 1
    assert sum(deframer.counters().values()) - deframer.bytes_in == 1  # no drop counted


def test_deframer_leading_garbage_before_first_flag_is_a_bad_frame(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(b"ATDT123\r" + accel_impl.hdlc_encode(LCP_CONF_REQ)) == [LCP_CONF_REQ]
    assert deframer.bad_fcs == 1


def test_deframer_counts_bad_fcs(accel_impl: SimpleNamespace) -> None:
    corrupted = bytearray(accel_impl.hdlc_encode(LCP_CONF_REQ))
    corrupted[10] ^= 0x01
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(bytes(corrupted)) == []
    assert (deframer.frames, deframer.bad_fcs) == (0, 1)


def test_deframer_counts_abort(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    aborted = accel_impl.hdlc_encode(LCP_CONF_REQ)[:-3] + b"\x7d\x7e"  # RFC 1662 §4.2
    assert deframer.feed(aborted + accel_impl.hdlc_encode(LCP_CONF_REQ)) == [LCP_CONF_REQ]
    assert (deframer.aborted, deframer.bad_fcs, deframer.frames) == (1, 0, 1)


def test_deframer_abort_split_across_feeds(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(b"\x7e\xff\x03\x7d") == []
    assert deframer.feed(b"\x7e") == []
    assert deframer.aborted == 1


def test_deframer_counts_too_short(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    deframer.feed(b"\x7e\x41\x7e\x41\x42\x7e\x41\x42\x43\x7e")
    assert deframer.too_short == 3
    deframer.feed(accel_impl.hdlc_encode(b"\x21\x45"))  # two octets + FCS is long enough
    assert deframer.frames == 1


def test_deframer_too_short_with_fcs32(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer(fcs_bits=32)
    deframer.feed(b"\x7e\x41\x42\x43\x44\x45\x7e")
    assert deframer.too_short == 1


def test_deframer_discards_too_long_frame_up_to_next_flag(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer(max_frame=100)
    long_frame = accel_impl.hdlc_encode(b"\xff\x03\x00\x21" + bytes(97))  # 101 + 2 FCS octets
    fitting = accel_impl.hdlc_encode(b"\xff\x03\x00\x21" + bytes(94))  # exactly 100 with the FCS
    assert deframer.feed(long_frame + fitting) == [b"\xff\x03\x00\x21" + bytes(94)]
    assert (deframer.too_long, deframer.frames) == (1, 1)


def test_deframer_memory_bounded_without_flags(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer(max_frame=64)
    for _ in range(100):
        assert deframer.feed(b"\x41" * 10_000) == []
    assert deframer.too_long == 1  # counted once
    if accel_impl.IMPLEMENTATION == "py":
        assert len(deframer._buffer) <= 64
    assert deframer.feed(accel_impl.hdlc_encode(b"\xc0\x21\x09\x01\x00\x04")) == [b"\xc0\x21\x09\x01\x00\x04"]


def test_deframer_lowering_max_frame_discards_buffered_frame(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    encoded = accel_impl.hdlc_encode(IP_FRAME)
    deframer.feed(encoded[:200])
    deframer.max_frame = 100
    assert deframer.too_long == 1
    assert deframer.feed(encoded[200:]) == []
    deframer.max_frame = 1508
    assert deframer.feed(encoded) == [IP_FRAME]


def test_deframer_removes_dce_inserted_controls(accel_impl: SimpleNamespace) -> None:
    encoded = accel_impl.hdlc_encode(LCP_CONF_REQ)
    noisy = encoded[:5] + b"\x11" + encoded[5:9] + b"\x13\x13" + encoded[9:]  # XON/XOFF from a DCE
    deframer = accel_impl.HdlcDeframer()  # RFC 1662 §7.1: default receive ACCM flags them
    assert deframer.feed(noisy) == [LCP_CONF_REQ]
    strict = accel_impl.HdlcDeframer(rx_accm=0)
    assert strict.feed(noisy) == []
    assert strict.bad_fcs == 1


def test_deframer_removes_control_between_escape_and_escaped(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer(rx_accm=1 << 0x11)
    body = LCP_CONF_REQ + fcs16_trailer(accel_impl, LCP_CONF_REQ)
    escaped = manual_escape(body, 0xFFFFFFFF)
    split = escaped.index(b"\x7d")
    noisy = b"\x7e" + escaped[: split + 1] + b"\x11" + escaped[split + 1 :] + b"\x7e"
    assert deframer.feed(noisy) == [LCP_CONF_REQ]


def test_deframer_rx_accm_change_applies_to_later_octets(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer(rx_accm=0)
    frame = b"\xff\x03\xc0\x21\x05"
    escaped_zero_accm = manual_escape(frame + fcs16_trailer(accel_impl, frame), 0)
    deframer.feed(b"\x7e" + escaped_zero_accm[:3])
    deframer.rx_accm = 1 << 0x13
    assert deframer.feed(b"\x13" + escaped_zero_accm[3:] + b"\x7e") == [frame]
    assert deframer.rx_accm == 1 << 0x13


def test_deframer_fcs_bits_switch(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    deframer.fcs_bits = 32
    assert deframer.feed(accel_impl.hdlc_encode(LCP_CONF_REQ, fcs_bits=32)) == [LCP_CONF_REQ]
    assert deframer.feed(accel_impl.hdlc_encode(LCP_CONF_REQ, fcs_bits=16)) == []
    assert deframer.bad_fcs == 1
    assert deframer.fcs_bits == 32


def test_deframer_unescapes_escaped_escape(accel_impl: SimpleNamespace) -> None:
    frame = b"\xff\x03\x00\x21\x7d\x7e\x7d\x7d\x5d"
    deframer = accel_impl.HdlcDeframer(rx_accm=0)  # the sender did not escape 0x00 and 0x03
    assert deframer.feed(accel_impl.hdlc_encode(frame, 0)) == [frame]


def test_deframer_keeps_address_and_control(accel_impl: SimpleNamespace) -> None:
    compressed = b"\x21" + bytes(20)  # ACFC + PFC: no address/control, 1-octet protocol
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(accel_impl.hdlc_encode(compressed)) == [compressed]


def test_deframer_accepts_buffer_types(accel_impl: SimpleNamespace) -> None:
    encoded = accel_impl.hdlc_encode(LCP_CONF_REQ)
    deframer = accel_impl.HdlcDeframer()
    assert deframer.feed(memoryview(b"xx" + encoded)[2:]) == [LCP_CONF_REQ]
    assert deframer.feed(bytearray(encoded)) == [LCP_CONF_REQ]
    assert deframer.bytes_in == 2 * len(encoded)


def test_deframer_reset_drops_partial_frame(accel_impl: SimpleNamespace) -> None:
    deframer = accel_impl.HdlcDeframer()
    encoded = accel_impl.hdlc_encode(LCP_CONF_REQ)
    deframer.feed(encoded[:10])
    deframer.reset()
    assert deframer.feed(encoded[10:]) == []
    assert deframer.feed(encoded) == [LCP_CONF_REQ]


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("max_frame", 0), ("max_frame", (1 << 20) + 1), ("rx_accm", -1), ("rx_accm", 1 << 32), ("fcs_bits", 8)],
)
def test_deframer_rejects_bad_settings(accel_impl: SimpleNamespace, attribute: str, value: int) -> None:
    deframer = accel_impl.HdlcDeframer()
    with pytest.raises(ValueError):
        setattr(deframer, attribute, value)
    with pytest.raises(ValueError):
        accel_impl.HdlcDeframer(**{attribute: value})


def test_deframer_non_canonical_escaped_escape_in_long_frame(accel_impl: SimpleNamespace) -> None:
    frame = b"\xff\x03\x00\x21" + bytes(range(0x40, 0x7D)) * 15 + b"\x5d" + bytes(range(0x40, 0x7D)) * 3
    encoded = accel_impl.hdlc_encode(frame)
    position = encoded.index(b"\x5d")
    stream = encoded[:position] + b"\x7d\x7d" + encoded[position + 1 :]  # 0x7D 0x7D also means 0x5D
    assert accel_impl.HdlcDeframer().feed(stream) == [frame]


def test_deframer_control_inserted_in_long_frame(accel_impl: SimpleNamespace) -> None:
    frame = b"\xff\x03\x00\x21" + bytes(range(256)) * 5
    encoded = accel_impl.hdlc_encode(frame)
    for position in (1, 2, 9, 100, 777, len(encoded) - 2):
        noisy = encoded[:position] + b"\x13" + encoded[position:]
        assert accel_impl.HdlcDeframer().feed(noisy) == [frame], position


def test_deframer_partial_rx_accm_keeps_other_controls(accel_impl: SimpleNamespace) -> None:
    frame = b"\xff\x03\x00\x21" + bytes(range(32)) * 40
    encoded = accel_impl.hdlc_encode(frame, 0x000A0000)  # only XON/XOFF escaped
    deframer = accel_impl.HdlcDeframer(rx_accm=0x000A0000)
    assert deframer.feed(encoded[:5] + b"\x11" + encoded[5:]) == [frame]


@pytest.mark.parametrize("extra", [0, 1])
def test_deframer_max_frame_boundary_with_escapes(accel_impl: SimpleNamespace, extra: int) -> None:
    payload = (b"\x7e\x7d" * 800)[: 1498 + extra]  # every octet escaped on the wire
    deframer = accel_impl.HdlcDeframer(max_frame=1500)
    delivered = deframer.feed(accel_impl.hdlc_encode(payload))  # with the FCS: max_frame + extra
    assert delivered == ([payload] if extra == 0 else [])
    assert deframer.too_long == extra
