"""3GPP TS 27.010 basic option frames, FCS and control messages (wipstack.wire.cmux)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.cmux import (
    DV,
    FC,
    FCS_TABLE,
    IC,
    RTC,
    RTR,
    CmuxDeframer,
    CmuxFrame,
    ControlMessage,
    ControlType,
    FrameType,
    ModemStatus,
    encode_control_length,
    encode_length,
    fcs,
    frame_fcs_ok,
    msc,
    parse_control_messages,
)


def slow_fcs(data: bytes) -> int:
    """§5.2.1.6 straight from the definition: a bit-serial LFSR, LSB first, for x^8+x^2+x+1.

    Each input bit is XORed with the register's feedback bit; when the feedback is 1 the
    register shifts and XORs in the generator's low terms (x^2+x+1 → taps at bits 0,1,2
    of the non-reflected form, i.e. 0xE0 once reflected).  Preset all ones, complement.
    """
    register = [1] * 8  # register[k] is the coefficient of x^k in the remainder
    for octet in data:
        for bit_index in range(8):  # least significant bit first (§5.2.1.6 / ITU-T V.42)
            bit = (octet >> bit_index) & 1
            feedback = register[7] ^ bit
            register = [0, *register[:7]]
            if feedback:
                for tap in (0, 1, 2):  # x^8 ≡ x^2 + x + 1
                    register[tap] ^= 1
    # The register is transmitted highest coefficient first (as the LSB of the FCS octet).
    value = 0
    for k in range(8):
        value |= register[7 - k] << k
    return value ^ 0xFF


def test_slow_reference_agrees_with_known_frames() -> None:
    assert slow_fcs(bytes([0x03, 0x3F, 0x01])) == 0x1C
    assert slow_fcs(bytes([0x03, 0x73, 0x01])) == 0xD7


@given(st.binary(max_size=64))
def test_fcs_matches_bitwise_reference(data: bytes) -> None:
    assert fcs(data) == slow_fcs(data)


@given(st.binary(max_size=64))
def test_fcs_receiver_check_value(data: bytes) -> None:
    assert frame_fcs_ok(data, fcs(data))
    assert not frame_fcs_ok(data, fcs(data) ^ 0x01)


def test_fcs_table_is_derived() -> None:
    assert len(FCS_TABLE) == 256
    assert FCS_TABLE[0] == 0
    assert FCS_TABLE[1] == 0x91  # bit-serial division of 0x01 by the reflected polynomial
    assert FCS_TABLE[0x80] == 0xE0


def test_sabm_dlci0_classic_bytes() -> None:
    frame = CmuxFrame(dlci=0, control=FrameType.SABM, poll_final=True, command_response=True)
    assert frame.emit() == bytes.fromhex("F9033F011CF9")


def test_ua_dlci0_classic_bytes() -> None:
    frame = CmuxFrame(dlci=0, control=FrameType.UA, poll_final=True, command_response=True)
    assert frame.emit() == bytes.fromhex("F90373 01D7F9".replace(" ", ""))


@pytest.mark.parametrize(
    ("frame_type", "poll_final", "octet"),
    [
        (FrameType.SABM, True, 0x3F),
        (FrameType.UA, True, 0x73),
        (FrameType.DM, True, 0x1F),
        (FrameType.DISC, True, 0x53),
        (FrameType.UIH, True, 0xFF),
        (FrameType.UIH, False, 0xEF),
        (FrameType.UI, False, 0x03),
    ],
)
def test_control_octets(frame_type: FrameType, poll_final: bool, octet: int) -> None:
    frame = CmuxFrame(5, frame_type, poll_final, False)
    assert frame.control_octet == octet
    assert frame.emit()[2] == octet


def test_address_octet() -> None:
    assert CmuxFrame(1, FrameType.UIH, False, True).address == 0x07
    assert CmuxFrame(63, FrameType.UIH, False, True).address == 0xFF
    assert CmuxFrame(2, FrameType.UIH, False, False).address == 0x09


def test_length_field() -> None:
    assert encode_length(0) == b"\x01"
    assert encode_length(127) == b"\xff"
    assert encode_length(128) == b"\x00\x01"
    assert encode_length(300) == bytes([(300 & 0x7F) << 1, 300 >> 7])
    assert encode_length(0x7FFF) == b"\xfe\xff"
    with pytest.raises(ValueError):
        encode_length(0x8000)


@pytest.mark.parametrize("frame_type", list(FrameType))
@pytest.mark.parametrize("size", [0, 1, 31, 127, 128, 1000])
def test_round_trip_every_type_and_size(frame_type: FrameType, size: int) -> None:
    info = bytes((i * 7 + 0xF9) & 0xFF for i in range(size))  # includes 0xF9 octets
    frame = CmuxFrame(dlci=3, control=frame_type, poll_final=True, command_response=False, information=info)
    wire = frame.emit()
    assert wire[0] == wire[-1] == 0xF9
    assert len(wire) == 1 + 2 + (1 if size <= 127 else 2) + size + 1 + 1
    assert CmuxFrame.parse_body(wire[1:-1], max_information=1000) == frame
    deframer = CmuxDeframer(max_information=1000)
    assert deframer.feed(wire) == [frame]
    assert not deframer.drops


def test_two_octet_length_on_wire() -> None:
    frame = CmuxFrame(1, FrameType.UIH, False, True, bytes(200))
    wire = frame.emit()
    assert wire[3:5] == bytes([(200 & 0x7F) << 1, 200 >> 7])
    assert wire[3] & 1 == 0


def test_non_canonical_two_octet_length_accepted() -> None:
    header = bytes([0x07, 0xEF, 0x0A, 0x00])  # length 5 in the two-octet form
    body = header + b"hello" + bytes([fcs(header)])
    assert CmuxFrame.parse_body(body).information == b"hello"


def test_uih_fcs_excludes_information() -> None:
    wire = bytearray(CmuxFrame(1, FrameType.UIH, False, True, b"hello").emit())
    wire[5] ^= 0xFF  # corrupt the information
    frame = CmuxFrame.parse_body(wire[1:-1])
    assert frame.information == bytes([ord("h"), ord("e") ^ 0xFF, *b"llo"])
    header_corrupt = bytearray(CmuxFrame(1, FrameType.UIH, False, True, b"hello").emit())
    header_corrupt[1] ^= 0x04  # DLCI 1 -> DLCI 0
    with pytest.raises(MalformedPacket) as exc:
        CmuxFrame.parse_body(header_corrupt[1:-1])
    assert exc.value.reason is DropReason.BAD_CHECKSUM


@pytest.mark.parametrize("frame_type", [FrameType.UI, FrameType.SABM, FrameType.DISC])
def test_other_fcs_covers_information(frame_type: FrameType) -> None:
    wire = bytearray(CmuxFrame(1, frame_type, False, True, b"hello").emit())
    wire[5] ^= 0x01
    with pytest.raises(MalformedPacket) as exc:
        CmuxFrame.parse_body(wire[1:-1])
    assert exc.value.reason is DropReason.BAD_CHECKSUM


def test_uih_and_ui_fcs_differ() -> None:
    uih = CmuxFrame(1, FrameType.UIH, False, True, b"x").emit()
    assert uih[-2] == fcs(uih[1:4])
    ui = CmuxFrame(1, FrameType.UI, False, True, b"x").emit()
    assert ui[-2] == fcs(ui[1:5])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", DropReason.TRUNCATED),
        (b"\x03", DropReason.TRUNCATED),
        (b"\x03\x3f", DropReason.TRUNCATED),
        (b"\x03\x3f\x01", DropReason.TRUNCATED),
        (b"\x03\x3f\x00", DropReason.TRUNCATED),  # two-octet length missing its second octet
        (b"\x03\x3f\x05\x00", DropReason.TRUNCATED),
        (b"\x03\x3f\x01\x1c\x00", DropReason.BAD_LENGTH),
        (b"\x03\x3f\x01\x1d", DropReason.BAD_CHECKSUM),
        (b"\x02\x3f\x01\x1c", DropReason.BAD_VALUE),  # address EA = 0
        (b"\x03\x3e\x01\x1c", DropReason.BAD_VALUE),  # unknown control
        (b"\x03\xef\x41" + bytes(32) + b"\x00", DropReason.FRAME_TOO_LONG),  # 32 > N1 31
    ],
)
def test_parse_body_errors(body: bytes, reason: DropReason) -> None:
    with pytest.raises(MalformedPacket) as exc:
        CmuxFrame.parse_body(body, max_information=31)
    assert exc.value.reason is reason


def test_parse_body_accepts_exactly_max() -> None:
    frame = CmuxFrame(2, FrameType.UIH, False, True, bytes(31))
    assert CmuxFrame.parse_body(frame.emit()[1:-1], 31) == frame


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dlci": 64},
        {"dlci": -1},
        {"dlci": 62, "command_response": False},  # address would be 0xF9
        {"information": bytes(0x8000)},
    ],
)
def test_emit_rejects(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"dlci": 1, "control": FrameType.UIH, "poll_final": False, "command_response": True}
    fields.update(kwargs)
    with pytest.raises(ValueError):
        CmuxFrame(**fields).emit()  # type: ignore[arg-type]


# --- deframer ---------------------------------------------------------------------------

SABM = bytes.fromhex("F9033F011CF9")
UA = bytes.fromhex("F9037301D7F9")


def test_deframer_shared_and_repeated_flags() -> None:
    deframer = CmuxDeframer()
    frames = deframer.feed(b"junk" + SABM + UA[1:] + b"\xf9\xf9\xf9" + SABM)
    assert [f.control for f in frames] == [FrameType.SABM, FrameType.UA, FrameType.SABM]
    assert not deframer.drops
    assert deframer.frames == 3


def test_deframer_byte_at_a_time() -> None:
    deframer = CmuxDeframer()
    out = []
    for octet in SABM + UA:
        out += deframer.feed(bytes([octet]))
    assert len(out) == 2


def test_deframer_information_may_contain_flags() -> None:
    frame = CmuxFrame(1, FrameType.UIH, False, True, b"\xf9\xf9a\xf9")
    assert CmuxDeframer().feed(frame.emit()) == [frame]


def test_deframer_bad_fcs_then_good() -> None:
    bad = bytearray(SABM)
    bad[4] ^= 0xFF
    deframer = CmuxDeframer()
    assert deframer.feed(bytes(bad) + UA) == [CmuxFrame.parse_body(UA[1:-1])]
    assert deframer.drops[DropReason.BAD_CHECKSUM] == 1


def test_deframer_missing_closing_flag_resyncs() -> None:
    deframer = CmuxDeframer()
    frames = deframer.feed(SABM[:-1] + b"\x00" + UA)
    assert [f.control for f in frames] == [FrameType.UA]
    assert deframer.drops[DropReason.BAD_LENGTH] == 1


def test_deframer_too_long_dropped_and_bounded() -> None:
    big = CmuxFrame(1, FrameType.UIH, False, True, bytes(32)).emit()
    deframer = CmuxDeframer(max_information=31)
    assert deframer.feed(big[:5]) == []
    assert deframer.drops[DropReason.FRAME_TOO_LONG] == 1
    assert deframer.buffered == 0
    assert deframer.feed(big[5:] + SABM) == [CmuxFrame.parse_body(SABM[1:-1])]


def test_deframer_resync_finds_frame_swallowed_by_bad_length() -> None:
    # A corrupt opening claims 20 octets of information, which would swallow the SABM.
    deframer = CmuxDeframer()
    frames = deframer.feed(b"\xf9\x07\xef\x29" + SABM + bytes(20))
    assert [f.control for f in frames] == [FrameType.SABM]


def test_deframer_config_validation() -> None:
    with pytest.raises(ValueError):
        CmuxDeframer(max_information=-1)
    assert CmuxDeframer(31).max_frame_size == 38


# --- control channel --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtype", "command", "octet"),
    [
        (ControlType.PN, True, 0x83),
        (ControlType.PN, False, 0x81),
        (ControlType.CLD, True, 0xC3),
        (ControlType.CLD, False, 0xC1),
        (ControlType.MSC, True, 0xE3),
        (ControlType.MSC, False, 0xE1),
    ],
)
def test_control_type_octets(mtype: ControlType, command: bool, octet: int) -> None:
    message = ControlMessage(mtype, command, b"")
    assert message.type_octet == octet
    assert message.emit() == bytes([octet, 0x01])


@pytest.mark.parametrize("mtype", list(ControlType))
@pytest.mark.parametrize("size", [0, 1, 127, 128, 300])
def test_control_round_trip(mtype: ControlType, size: int) -> None:
    message = ControlMessage(mtype, size % 2 == 0, bytes(range(256))[: size % 256] * (size // 256 + 1))
    message = ControlMessage(mtype, message.command, message.value[:size])
    assert parse_control_messages(message.emit()) == [message]


def test_several_control_messages_in_one_uih() -> None:
    messages = [
        msc(1, DV | RTC | RTR, True),
        ControlMessage(ControlType.TEST, True, b"ping"),
        ControlMessage(0x30, True),
    ]
    info = b"".join(m.emit() for m in messages)
    assert parse_control_messages(info) == messages
    frame = CmuxFrame(0, FrameType.UIH, False, True, info)
    parsed = CmuxDeframer().feed(frame.emit())
    assert parse_control_messages(parsed[0].information) == messages


@pytest.mark.parametrize("info", [b"\xe3", b"\xe3\x05\x07", b"\xe3\x00", b"\x81\x00\x03" + bytes(10)])
def test_control_truncated(info: bytes) -> None:
    with pytest.raises(MalformedPacket) as exc:
        parse_control_messages(info)
    assert exc.value.reason is DropReason.TRUNCATED


@pytest.mark.parametrize(
    ("length", "octets"),
    [
        (0, b"\x01"),
        (4, b"\x09"),  # what Linux n_gsm writes for an MSC: (len << 1) | EA
        (127, b"\xff"),
        (128, b"\x00\x03"),  # EA=0 L1..L7 = 0, then EA=1 L8..L14 = 1
        (300, bytes([(300 & 0x7F) << 1, ((300 >> 7) << 1) | 1])),
        (0x7FFF, b"\xfe\xfe\x03"),  # 15 bits need a third 7-bit octet
    ],
)
def test_control_length_is_ea_chained(length: int, octets: bytes) -> None:
    """§5.4.6.1: every length octet carries EA; unlike the frame length (§5.2.1.5) whose 2nd octet has none."""
    assert encode_control_length(length) == octets
    assert all(o & 1 == 0 for o in octets[:-1]) and octets[-1] & 1
    message = ControlMessage(ControlType.TEST, True, bytes(length))
    assert message.emit()[1 : 1 + len(octets)] == octets
    assert parse_control_messages(message.emit()) == [message]


def test_control_length_of_128_differs_from_frame_length() -> None:
    # The old codec wrote the frame-length layout (00 01) here; an EA-aware reader takes 01 as
    # "last octet, L8..L14 = 0", i.e. a length of 0, and then misreads the value as messages.
    assert encode_length(128) == b"\x00\x01"
    assert encode_control_length(128) == b"\x00\x03"
    assert parse_control_messages(b"\xe1\x00\x01") == [ControlMessage(ControlType.MSC, False, b"")]


def test_control_length_chain_too_long() -> None:
    with pytest.raises(MalformedPacket) as exc:
        parse_control_messages(b"\x23\x00\x00\x00\x01")
    assert exc.value.reason is DropReason.BAD_LENGTH
    with pytest.raises(ValueError):
        encode_control_length(0x8000)


def test_control_extended_type_rejected() -> None:
    with pytest.raises(MalformedPacket) as exc:
        parse_control_messages(b"\xe2\x01")
    assert exc.value.reason is DropReason.BAD_VALUE


def test_control_emit_rejects_bad_type() -> None:
    with pytest.raises(ValueError):
        ControlMessage(64, True).emit()


def test_msc_bytes_and_parse() -> None:
    message = msc(1, RTC | RTR | DV, True)
    assert message.emit() == bytes([0xE3, 0x05, 0x07, 0x8D])
    status = ModemStatus.parse(message.value)
    assert status == ModemStatus(dlci=1, rtc=True, rtr=True, dv=True)
    assert status.emit() == message.value


@given(
    st.integers(0, 63),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 255)),
)
def test_modem_status_round_trip(
    dlci: int, fc: bool, rtc: bool, rtr: bool, ic: bool, dv: bool, brk: int | None
) -> None:
    status = ModemStatus(dlci, fc, rtc, rtr, ic, dv, None if brk is None else brk | 1)
    value = status.emit()
    assert value[0] == (dlci << 2) | 0x03
    assert value[1] & 1 == (1 if brk is None else 0)
    assert ModemStatus.parse(value) == status
    assert status.signals == (FC * fc) | (RTC * rtc) | (RTR * rtr) | (IC * ic) | (DV * dv)
    wrapped = ControlMessage(ControlType.MSC, True, value)
    assert ModemStatus.parse(parse_control_messages(wrapped.emit())[0].value) == status


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x07", DropReason.TRUNCATED),
        (b"\x07\x01\x01\x01", DropReason.BAD_LENGTH),
        (b"\x06\x01", DropReason.BAD_VALUE),
    ],
)
def test_modem_status_errors(value: bytes, reason: DropReason) -> None:
    with pytest.raises(MalformedPacket) as exc:
        ModemStatus.parse(value)
    assert exc.value.reason is reason


def test_msc_rejects() -> None:
    with pytest.raises(ValueError):
        msc(64, 0, True)
    with pytest.raises(ValueError):
        msc(1, 256, True)
    with pytest.raises(ValueError):
        ModemStatus(64).emit()
