"""The 27.010 basic option multiplexer (wipstack.cellular.cmux): known-answer frames, the
responder's answers to a Linux n_gsm initiator, and an initiator/responder pair on a fake clock."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from wipstack.cellular.cmux import (
    DEFAULT_PARAMETERS,
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
from wipstack.errors import DropReason
from wipstack.wire.cmux import (
    DV,
    FC,
    RTC,
    RTR,
    CmuxDeframer,
    CmuxFrame,
    ControlMessage,
    ControlType,
    FrameType,
    ModemStatus,
    fcs,
    msc,
    parse_control_messages,
)

INITIATOR, RESPONDER = MuxRole.INITIATOR, MuxRole.RESPONDER


def crc_by_division(data: bytes) -> int:
    """§5.2.1.6 by polynomial long division, independent of the codec's reflected table.

    The octets go out least significant bit first, so each is bit-reversed and divided
    MSB-first by x^8+x^2+x+1 (0x07) from an all-ones register; the FCS is the one's
    complement of the remainder, transmitted (hence bit-reversed) like any other octet.
    """

    def reverse(octet: int) -> int:
        return int(f"{octet:08b}"[::-1], 2)

    register = 0xFF
    for octet in data:
        register ^= reverse(octet)
        for _ in range(8):
            register = ((register << 1) ^ 0x07) & 0xFF if register & 0x80 else (register << 1) & 0xFF
    return reverse(register ^ 0xFF)


def frame(dlci: int, control: FrameType, pf: bool, cr: bool, info: bytes = b"") -> bytes:
    return CmuxFrame(dlci, control, pf, cr, info).emit()


def control(message: ControlMessage, cr: bool) -> bytes:
    """A DLCI 0 UIH frame carrying ``message``; ``cr`` is the sender's command C/R."""
    return frame(0, FrameType.UIH, False, cr, message.emit())


def frames_of(data: bytes) -> list[CmuxFrame]:
    deframer = CmuxDeframer(32767)
    out = deframer.feed(data)
    assert not deframer.drops and deframer.buffered in (0, 1)
    return out


def started_responder(*dlcis: int, params: MuxParameters = DEFAULT_PARAMETERS, **kwargs: object) -> Multiplexer:
    mux = Multiplexer(RESPONDER, params, **kwargs)  # type: ignore[arg-type]
    mux.receive(frame(0, FrameType.SABM, True, True), 0.0)
    for dlci in dlcis:
        mux.receive(frame(dlci, FrameType.SABM, True, True), 0.0)
    mux.bytes_to_send()
    return mux


# --- known answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [("033f01", 0x1C), ("037301", 0xD7), ("073f01", 0xDE), ("077301", 0x15), ("03ef09", 0xFB), ("01ef09", 0x9A)],
)
def test_fcs_vectors_by_division(header: str, expected: int) -> None:
    assert crc_by_division(bytes.fromhex(header)) == expected
    assert fcs(bytes.fromhex(header)) == expected


def test_responder_answers_sabm0_with_ua() -> None:
    mux = Multiplexer(RESPONDER)
    assert not mux.started
    assert mux.receive(bytes.fromhex("F9033F011CF9"), 0.0) == [MuxStarted()]
    assert mux.bytes_to_send() == bytes.fromhex("F9037301D7F9")
    assert mux.started and mux.next_deadline() is None


def test_sabm_before_dlci0_is_refused_with_dm() -> None:
    mux = Multiplexer(RESPONDER)
    assert mux.receive(bytes.fromhex("F9073F01DEF9"), 0.0) == []
    assert mux.bytes_to_send() == bytes.fromhex("F9071F01F4F9")  # DM, F=1, C/R=1 (a responder's response)
    assert not mux.started and not mux.open_dlcis


def test_sabm_on_dlci_not_accepted_is_refused() -> None:
    mux = started_responder(accept_dlcis=(1, 2))
    assert mux.receive(frame(3, FrameType.SABM, True, True), 0.0) == []
    assert frames_of(mux.bytes_to_send()) == [CmuxFrame(3, FrameType.DM, True, True)]


def test_repeated_sabm_gets_ua_again_without_second_event() -> None:
    mux = started_responder()
    assert mux.receive(frame(1, FrameType.SABM, True, True), 0.0) == [ChannelOpened(1)]
    out = frames_of(mux.bytes_to_send())
    assert out[0] == CmuxFrame(1, FrameType.UA, True, True)
    assert parse_control_messages(out[1].information) == [msc(1, RTC | RTR | DV, True)]  # our V.24 signals
    assert mux.receive(frame(1, FrameType.SABM, True, True), 0.0) == []
    assert frames_of(mux.bytes_to_send()) == [CmuxFrame(1, FrameType.UA, True, True)]
    assert mux.open_dlcis == {1}


def test_sabm_with_response_cr_is_dropped() -> None:
    mux = Multiplexer(RESPONDER)
    assert mux.receive(frame(0, FrameType.SABM, True, False), 0.0) == []
    assert mux.bytes_to_send() == b""
    assert mux.counters[DropReason.BAD_VALUE] == 1


def test_disc_open_closed_and_dlci0() -> None:
    mux = started_responder(1, 2)
    assert mux.receive(frame(1, FrameType.DISC, True, True), 0.0) == [ChannelClosed(1, "peer")]
    assert frames_of(mux.bytes_to_send()) == [CmuxFrame(1, FrameType.UA, True, True)]
    assert mux.receive(frame(1, FrameType.DISC, True, True), 0.0) == []
    assert frames_of(mux.bytes_to_send()) == [CmuxFrame(1, FrameType.DM, True, True)]
    events = mux.receive(frame(0, FrameType.DISC, True, True), 0.0)
    assert events == [ChannelClosed(2, "peer"), MuxClosed("peer")]
    assert frames_of(mux.bytes_to_send()) == [CmuxFrame(0, FrameType.UA, True, True)]
    assert mux.closed and not mux.started and not mux.is_open(2)
    assert mux.receive(frame(0, FrameType.SABM, True, True), 0.0) == []  # closed for good: the line is AT again
    assert mux.bytes_to_send() == b""


def test_data_on_closed_dlci_is_counted_and_answered_with_dm() -> None:
    mux = started_responder(1)
    assert mux.receive(frame(5, FrameType.UIH, False, True, b"x"), 0.0) == []
    assert mux.counters[DropReason.NOT_ALLOWED_IN_STATE] == 1
    assert frames_of(mux.bytes_to_send()) == [CmuxFrame(5, FrameType.DM, False, True)]
    # UIH and UI are both data, whatever their C/R bit
    events = mux.receive(frame(1, FrameType.UIH, False, False, b"a") + frame(1, FrameType.UI, True, True, b"b"), 0.0)
    assert events == [DataReceived(1, b"a"), DataReceived(1, b"b")]


def test_information_over_max_receive_is_dropped() -> None:
    mux = started_responder(1, params=MuxParameters(n1=31, max_receive=40))
    big, ok = frame(1, FrameType.UIH, False, True, bytes(41)), frame(1, FrameType.UIH, False, True, bytes(40))
    assert mux.receive(big + ok, 0.0) == [DataReceived(1, bytes(40))]
    assert mux.counters[DropReason.FRAME_TOO_LONG] == 1


# --- what Linux n_gsm 6.1 sends as initiator ------------------------------------------------

LINUX_SABM0 = "F9 03 3F 01 1C F9"  # gsm_dlci_begin_open(dlci 0): SABM|PF, C/R=1, FCS over 03 3F 01
LINUX_SABM1 = "F9 07 3F 01 DE F9"  # opening /dev/gsmtty1
# gsm_modem_upd_via_msc for DLCI 1 (DTR, RTS raised; DV because it is the initiator):
# UIH DLCI 0 (03 EF, length 4), type (CMD_MSC << 1 | CR | EA) = E3, length (2 << 1 | EA) = 05,
# DLCI octet (1 << 2 | 2 | EA) = 07, signals ((RTC|RTR|DV) << 1 | EA) = 8D; FCS over the header only.
LINUX_MSC1_COMMAND = "F9 03 EF 09 E3 05 07 8D FB F9"
LINUX_MSC1_RESPONSE = "F9 03 EF 09 E1 05 07 8D FB F9"  # gsm_control_reply: C/R of the type cleared
# gsm_dlci_negotiate for DLCI 2 (when the DLCI config differs from the defaults): PN command
# with D=2, I=0 (UIH) CL=0 (type 1), priority 7, T1 10, N1 64 (LE), N2 3, k 2.
LINUX_PN2 = "F9 03 EF 15 83 11 02 00 07 0A 40 00 03 02 EE F9"
LINUX_DISC1 = "F9 07 53 01 3F F9"
LINUX_DISC0 = "F9 03 53 01 FD F9"


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


def test_linux_initiator_session_exact_replies() -> None:
    mux = Multiplexer(RESPONDER, accept_dlcis=range(1, 5))
    assert mux.receive(hexbytes(LINUX_SABM0), 0.0) == [MuxStarted()]
    assert mux.bytes_to_send() == hexbytes("F9 03 73 01 D7 F9")  # UA|F, C/R=1

    assert mux.receive(hexbytes(LINUX_SABM1), 0.01) == [ChannelOpened(1)]
    # UA|F on DLCI 1, then our own MSC command (C/R=0: a responder's command) so Linux sees DCD
    assert mux.bytes_to_send() == hexbytes("F9 07 73 01 15 F9" + "F9 01 EF 09 E3 05 07 8D 9A F9")

    events = mux.receive(hexbytes(LINUX_MSC1_COMMAND), 0.02)
    assert events == [ModemStatusChanged(1, ModemStatus(1, rtc=True, rtr=True, dv=True))]
    assert mux.bytes_to_send() == hexbytes("F9 01 EF 09 E1 05 07 8D 9A F9")  # MSC response, same value

    assert mux.next_deadline() == pytest.approx(0.01 + 0.3)  # our MSC awaits its answer (T2)
    assert mux.receive(hexbytes(LINUX_MSC1_RESPONSE), 0.03) == []
    assert mux.next_deadline() is None and not mux.counters

    # PN before SABM (Linux 6.x with a non-default DLCI config): echoed, N1 64 is within our 1500
    assert mux.receive(hexbytes(LINUX_PN2), 0.04) == []
    assert mux.bytes_to_send() == hexbytes("F9 01 EF 15 81 11 02 00 07 0A 40 00 03 02 8F F9")

    assert mux.receive(hexbytes(LINUX_DISC1), 0.05) == [ChannelClosed(1, "peer")]
    assert mux.bytes_to_send() == hexbytes("F9 07 73 01 15 F9")
    assert mux.receive(hexbytes(LINUX_DISC0), 0.06) == [MuxClosed("peer")]
    assert mux.bytes_to_send() == hexbytes("F9 03 73 01 D7 F9")
    assert not mux.counters


def test_linux_msc_before_our_ua_is_answered() -> None:
    # n_gsm raises DTR/RTS (an MSC) while tty_port_block_til_ready waits for the UA
    mux = started_responder()
    events = mux.receive(hexbytes(LINUX_MSC1_COMMAND), 0.0)
    assert [type(e) for e in events] == [ModemStatusChanged]
    assert mux.bytes_to_send() == hexbytes("F9 01 EF 09 E1 05 07 8D 9A F9")


# --- control channel ----------------------------------------------------------------------


def responses(mux: Multiplexer) -> list[ControlMessage]:
    out: list[ControlMessage] = []
    for f in frames_of(mux.bytes_to_send()):
        assert f.dlci == 0 and f.control is FrameType.UIH and f.command_response is False
        out += parse_control_messages(f.information)
    return out


def test_test_command_is_echoed() -> None:
    mux = started_responder()
    mux.receive(control(ControlMessage(ControlType.TEST, True, b"\x04TEMUX_VERSION\xf9"), True), 0.0)
    assert responses(mux) == [ControlMessage(ControlType.TEST, False, b"\x04TEMUX_VERSION\xf9")]


@pytest.mark.parametrize("mtype", [ControlType.RPN, ControlType.PSC, ControlType.SNC, ControlType.RLS, 0x3F])
def test_unknown_command_gets_nsc_with_its_type_octet(mtype: int) -> None:
    mux = started_responder()
    command = ControlMessage(mtype, True, b"\x07")
    mux.receive(control(command, True), 0.0)
    assert responses(mux) == [ControlMessage(ControlType.NSC, False, bytes([command.type_octet]))]
    assert mux.counters[DropReason.BAD_CODE] == 1


def test_unsolicited_responses_and_bad_messages_are_counted() -> None:
    mux = started_responder()
    mux.receive(control(ControlMessage(ControlType.CLD, False), True), 0.0)
    mux.receive(control(msc(1, RTC, False), True), 0.0)
    mux.receive(control(ControlMessage(ControlType.TEST, False, b"x"), True), 0.0)
    assert mux.counters[DropReason.UNEXPECTED_ID] == 3
    mux.receive(frame(0, FrameType.UIH, False, True, b"\xe3\x05\x07"), 0.0)  # value cut short
    mux.receive(control(ControlMessage(ControlType.MSC, True, b"\x07"), True), 0.0)  # MSC without signals
    mux.receive(control(ControlMessage(ControlType.PN, True, b"\x01"), True), 0.0)
    assert mux.counters[DropReason.TRUNCATED] == 2 and mux.counters[DropReason.BAD_LENGTH] == 1
    assert mux.bytes_to_send() == b"" and mux.started


def test_control_before_dlci0_is_dropped() -> None:
    mux = Multiplexer(RESPONDER)
    assert mux.receive(control(ControlMessage(ControlType.TEST, True, b"x"), True), 0.0) == []
    assert mux.bytes_to_send() == b"" and mux.counters[DropReason.NOT_ALLOWED_IN_STATE] == 1


def test_several_commands_in_one_frame_each_answered_in_its_own_frame() -> None:
    mux = started_responder(1)
    info = ControlMessage(ControlType.TEST, True, b"a").emit() + ControlMessage(ControlType.FCOFF, True).emit()
    assert mux.receive(frame(0, FrameType.UIH, False, True, info), 0.0) == [FlowControlChanged(None, True)]
    out = frames_of(mux.bytes_to_send())
    assert [parse_control_messages(f.information) for f in out] == [
        [ControlMessage(ControlType.TEST, False, b"a")],
        [ControlMessage(ControlType.FCOFF, False)],
    ]


def test_fcoff_holds_data_but_not_control() -> None:
    mux = started_responder(1, 2)
    assert mux.receive(control(ControlMessage(ControlType.FCOFF, True), True), 0.0) == [FlowControlChanged(None, True)]
    assert responses(mux) == [ControlMessage(ControlType.FCOFF, False)]
    assert not mux.can_send(1) and mux.is_open(1)
    mux.send(1, b"held")
    assert mux.queued(1) == 4 and mux.output_pending == 0
    mux.receive(control(ControlMessage(ControlType.TEST, True, b"t"), True), 0.0)
    assert responses(mux) == [ControlMessage(ControlType.TEST, False, b"t")]  # the control channel still runs
    assert mux.queued(1) == 4
    assert mux.receive(control(ControlMessage(ControlType.FCOFF, True), True), 0.0) == []  # no change, no event
    mux.bytes_to_send()
    assert mux.receive(control(ControlMessage(ControlType.FCON, True), True), 0.0) == [FlowControlChanged(None, False)]
    out = frames_of(mux.bytes_to_send())
    assert parse_control_messages(out[0].information) == [ControlMessage(ControlType.FCON, False)]
    assert out[1] == CmuxFrame(1, FrameType.UIH, False, False, b"held")
    assert mux.queued(1) == 0


def test_msc_fc_bit_stops_one_dlci() -> None:
    mux = started_responder(1, 2)
    events = mux.receive(control(msc(1, FC | RTC | RTR | DV, True), True), 0.0)
    assert events == [
        ModemStatusChanged(1, ModemStatus(1, fc=True, rtc=True, rtr=True, dv=True)),
        FlowControlChanged(1, True),
    ]
    assert responses(mux) == [msc(1, FC | RTC | RTR | DV, False)]
    mux.send(1, b"one")
    mux.send(2, b"two")
    assert not mux.can_send(1) and mux.can_send(2)
    assert frames_of(mux.bytes_to_send()) == [CmuxFrame(2, FrameType.UIH, False, False, b"two")]
    assert mux.queued(1) == 3
    events = mux.receive(control(msc(1, RTC | RTR | DV, True), True), 0.0)
    assert events[1:] == [FlowControlChanged(1, False)]
    assert frames_of(mux.bytes_to_send())[1] == CmuxFrame(1, FrameType.UIH, False, False, b"one")


def test_pn_clamps_n1_and_keeps_uih() -> None:
    mux = started_responder(params=MuxParameters(n1=64, max_receive=100))
    # D=3, I=1 (UI) CL=1 (type 2), priority 7, T1 10, N1 2000, N2 3, k 2
    request = bytes([3, 0x11, 7, 10, 2000 & 0xFF, 2000 >> 8, 3, 2])
    mux.receive(control(ControlMessage(ControlType.PN, True, request), True), 0.0)
    reply = bytes([3, 0x00, 7, 10, 100, 0, 3, 2])  # N1 down to what we accept, UIH, type 1
    assert responses(mux) == [ControlMessage(ControlType.PN, False, reply)]
    # a smaller N1 asked by the peer bounds what we send on that DLCI once it is open
    mux.receive(control(ControlMessage(ControlType.PN, True, bytes([4, 0, 7, 10, 16, 0, 3, 2])), True), 0.0)
    mux.receive(frame(4, FrameType.SABM, True, True), 0.0)
    mux.bytes_to_send()
    mux.send(4, bytes(40))
    assert [len(f.information) for f in frames_of(mux.bytes_to_send())] == [16, 16, 8]


def test_peer_cld_closes_everything() -> None:
    mux = started_responder(1, 3)
    mux.send(3, b"never sent")
    events = mux.receive(control(ControlMessage(ControlType.CLD, True), True), 0.0)
    assert events == [ChannelClosed(1, "peer"), ChannelClosed(3, "peer"), MuxClosed("peer")]
    assert responses(mux) == [ControlMessage(ControlType.CLD, False)]
    assert mux.closed and mux.queued(3) == 0 and mux.output_pending == 0
    with pytest.raises(ValueError):
        mux.send(1, b"x")


def test_flood_of_test_commands_is_bounded() -> None:
    mux = started_responder()
    command = control(ControlMessage(ControlType.TEST, True, bytes(1000)), True)
    for _ in range(200):
        mux.receive(command, 0.0)
    assert MAX_CONTROL_BACKLOG - 1100 < mux.output_pending <= MAX_CONTROL_BACKLOG
    assert mux.counters[DropReason.QUEUE_FULL] > 0


# --- an initiator and a responder on a fake clock ------------------------------------------


FrameFilter = Callable[[Multiplexer, CmuxFrame], bool]


class Pair:
    """An initiator ``a`` and a responder ``b`` joined by a line that may split and lose frames."""

    def __init__(
        self,
        params: MuxParameters = DEFAULT_PARAMETERS,
        *,
        accept_dlcis: tuple[int, ...] = (1, 2, 3, 4),
        rng: random.Random | None = None,
        drop: FrameFilter | None = None,
    ) -> None:
        self.a = Multiplexer(INITIATOR, params)
        self.b = Multiplexer(RESPONDER, params, accept_dlcis=accept_dlcis)
        self.now = 0.0
        self.events: dict[int, list[MuxEvent]] = {id(self.a): [], id(self.b): []}
        self.rng = rng
        self.drop = drop
        self.sent: list[tuple[Multiplexer, CmuxFrame]] = []  # every frame put on the line
        self._watch = {id(self.a): CmuxDeframer(32767), id(self.b): CmuxDeframer(32767)}
        self.cut = False  # True: nothing reaches the other side

    def ev(self, mux: Multiplexer) -> list[MuxEvent]:
        return self.events[id(mux)]

    def take(self, mux: Multiplexer) -> list[MuxEvent]:
        events, self.events[id(mux)] = self.events[id(mux)], []
        return events

    def _move(self, src: Multiplexer, dst: Multiplexer) -> bool:
        limit = None if self.rng is None else self.rng.randint(1, 200)
        data = src.bytes_to_send(limit)
        if not data:
            return False
        frames = self._watch[id(src)].feed(data)
        self.sent += [(src, f) for f in frames]
        if self.cut:
            return True
        if self.drop is not None:
            data = b"".join(f.emit() for f in frames if not self.drop(src, f))
        while data:
            size = len(data) if self.rng is None else self.rng.randint(1, len(data))
            self.events[id(dst)] += dst.receive(data[:size], self.now)
            data = data[size:]
        return True

    def settle(self) -> None:
        for _ in range(100_000):
            if not (self._move(self.a, self.b) | self._move(self.b, self.a)):
                return
        raise AssertionError("the line did not settle")

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            self.settle()
            deadlines = [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d is not None and d <= end]
            if not deadlines:
                break
            self.now = max(self.now, min(deadlines))
            for mux in (self.a, self.b):
                deadline = mux.next_deadline()
                if deadline is not None and deadline <= self.now:
                    self.events[id(mux)] += mux.on_timer(self.now)
        self.now = end

    def count(self, src: Multiplexer, control_type: FrameType, dlci: int) -> int:
        return sum(1 for s, f in self.sent if s is src and f.control is control_type and f.dlci == dlci)

    def open(self, *dlcis: int) -> None:
        self.a.start(self.now)
        for dlci in dlcis:
            self.a.open_channel(dlci, self.now)  # waits for DLCI 0
        self.advance(0.05)


def test_pair_full_session() -> None:
    pair = Pair(MuxParameters(n1=50), rng=random.Random(7))
    a, b = pair.a, pair.b
    pair.open(1, 2, 3, 4)
    opened = [MuxStarted(), *(ChannelOpened(d) for d in (1, 2, 3, 4))]
    # MSC both ways: each side told the other its signals (RTC, RTR, DV) on every DLCI, and got answers
    statuses = [ModemStatusChanged(d, ModemStatus(d, rtc=True, rtr=True, dv=True)) for d in (1, 2, 3, 4)]
    for mux in (a, b):
        events = pair.take(mux)
        assert [e for e in events if not isinstance(e, ModemStatusChanged)] == opened
        assert [e for e in events if isinstance(e, ModemStatusChanged)] == statuses
    assert a.next_deadline() is None and b.next_deadline() is None  # every MSC was answered
    assert a.open_dlcis == b.open_dlcis == {1, 2, 3, 4}

    # data both ways on every DLCI, 0xF9 included, random splits on the line
    rng = random.Random(11)
    sent: dict[tuple[int, int], bytes] = {}
    for dlci in (1, 2, 3, 4):
        for src, key in ((a, 0), (b, 1)):
            payload = bytes(rng.choice(b"\xf9\x00\x7e\x7d\xffab") for _ in range(rng.randint(1, 700)))
            src.send(dlci, payload)
            sent[(key, dlci)] = payload
    pair.advance(0.01)
    got: dict[tuple[int, int], bytearray] = {}
    for key, mux in ((0, b), (1, a)):
        for e in pair.take(mux):
            assert isinstance(e, DataReceived)
            assert len(e.data) <= 50
            got.setdefault((key, e.dlci), bytearray()).extend(e.data)
    assert {k: bytes(v) for k, v in got.items()} == sent

    # flow control: b stops DLCI 2 while DLCIs 1 and 3 keep flowing
    b.set_flow(2, True, pair.now)
    pair.advance(0.01)
    assert pair.take(a) == [
        ModemStatusChanged(2, ModemStatus(2, fc=True, rtc=True, rtr=True, dv=True)),
        FlowControlChanged(2, True),
    ]
    assert not a.can_send(2) and a.can_send(1)
    a.send(2, b"held back")
    a.send(1, b"flows")
    a.send(3, b"flows too")
    pair.advance(0.01)
    assert pair.take(b) == [DataReceived(1, b"flows"), DataReceived(3, b"flows too")]
    assert a.queued(2) == 9
    b.set_flow(2, False, pair.now)
    pair.advance(0.01)
    assert pair.take(a)[1:] == [FlowControlChanged(2, False)]
    assert pair.take(b) == [DataReceived(2, b"held back")]

    # close one DLCI, then the close-down
    a.close_channel(3, pair.now)
    pair.advance(0.01)
    assert pair.take(a) == [ChannelClosed(3, "local")]
    assert pair.take(b) == [ChannelClosed(3, "peer")]
    assert b.open_dlcis == {1, 2, 4}
    a.close_down(pair.now)
    pair.advance(0.01)
    closed = [ChannelClosed(d, "local") for d in (1, 2, 4)]
    assert pair.take(a) == [*closed, MuxClosed("local")]
    assert pair.take(b) == [*(ChannelClosed(d, "peer") for d in (1, 2, 4)), MuxClosed("peer")]
    assert a.closed and b.closed and a.next_deadline() is None
    assert not a.counters and not b.counters


def test_pair_disc0_ends_the_multiplexer() -> None:
    pair = Pair()
    pair.open(1)
    pair.take(pair.a), pair.take(pair.b)
    pair.a.close_channel(0, pair.now)
    pair.advance(0.01)
    assert pair.take(pair.a) == [ChannelClosed(1, "local"), MuxClosed("local")]
    assert pair.take(pair.b) == [ChannelClosed(1, "peer"), MuxClosed("peer")]


def test_first_sabm_lost_is_retransmitted_after_t1() -> None:
    lost: list[CmuxFrame] = []

    def drop_first_sabm(src: Multiplexer, f: CmuxFrame) -> bool:
        if f.control is FrameType.SABM and not lost:
            lost.append(f)
            return True
        return False

    pair = Pair(MuxParameters(t1=0.1), drop=drop_first_sabm)
    pair.a.start(0.0)
    pair.advance(0.09)
    assert pair.ev(pair.a) == [] and pair.a.next_deadline() == pytest.approx(0.1)
    pair.advance(0.02)
    assert pair.take(pair.a) == [MuxStarted()]
    assert pair.count(pair.a, FrameType.SABM, 0) == 2


@pytest.mark.parametrize("n2", [0, 1, 3])
def test_dlci0_times_out_after_n2_retransmissions(n2: int) -> None:
    pair = Pair(MuxParameters(t1=0.1, n2=n2))
    pair.cut = True
    pair.a.start(0.0)
    pair.a.open_channel(1, 0.0)  # waits for DLCI 0, then fails with it
    pair.advance(0.1 * (n2 + 1) - 0.01)
    assert pair.ev(pair.a) == []
    pair.advance(0.02)
    assert pair.take(pair.a) == [ChannelClosed(1, "timeout"), MuxClosed("timeout")]
    assert pair.count(pair.a, FrameType.SABM, 0) == n2 + 1
    assert pair.a.closed and pair.a.next_deadline() is None


def test_channel_sabm_and_disc_time_out() -> None:
    pair = Pair(MuxParameters(t1=0.1, n2=2))
    pair.open(1)
    pair.take(pair.a)
    pair.cut = True
    pair.a.open_channel(2, pair.now)
    pair.a.close_channel(1, pair.now)
    pair.advance(0.35)
    assert pair.take(pair.a) == [ChannelClosed(1, "timeout"), ChannelClosed(2, "timeout")]
    assert pair.count(pair.a, FrameType.SABM, 2) == 3 and pair.count(pair.a, FrameType.DISC, 1) == 3
    assert pair.a.started  # DLCI 0 is fine


def test_cld_times_out_after_t2_retries() -> None:
    pair = Pair(MuxParameters(t2=0.3, n2=2))
    pair.open(1)
    pair.take(pair.a)
    pair.cut = True
    pair.a.close_down(pair.now)
    pair.advance(0.89)
    assert pair.ev(pair.a) == []
    pair.advance(0.02)
    assert pair.take(pair.a) == [ChannelClosed(1, "timeout"), MuxClosed("timeout")]
    cld = [f for s, f in pair.sent if s is pair.a and f.dlci == 0 and f.control is FrameType.UIH]
    assert [parse_control_messages(f.information) for f in cld].count([ControlMessage(ControlType.CLD, True)]) == 3


def test_unanswered_msc_gives_up_quietly_and_nsc_stops_it() -> None:
    pair = Pair(MuxParameters(t2=0.3, n2=1))
    pair.open(1)
    pair.take(pair.a)
    pair.cut = True
    pair.a.set_flow(1, True, pair.now)
    pair.advance(1.0)
    assert pair.ev(pair.a) == [] and pair.a.next_deadline() is None and pair.a.is_open(1)
    # a peer that does not do MSC answers NSC: no retransmission follows
    a = pair.a
    a.set_flow(1, False, pair.now)
    a.bytes_to_send()
    nsc = ControlMessage(ControlType.NSC, False, bytes([msc(1, 0, True).type_octet]))
    assert a.receive(control(nsc, False), pair.now) == []
    assert a.next_deadline() is None and not a.counters


def test_refused_dlci_gets_channel_closed_refused() -> None:
    pair = Pair(accept_dlcis=(1, 2))
    pair.open(1, 5)
    events = pair.take(pair.a)
    assert ChannelClosed(5, "refused") in events and ChannelOpened(1) in events
    assert pair.a.open_dlcis == {1}


def test_close_down_before_start_reports_through_the_timer() -> None:
    mux = Multiplexer(INITIATOR)
    mux.start(1.0)
    mux.open_channel(2, 1.0)
    mux.close_down(1.5)
    assert mux.next_deadline() == 1.5
    assert mux.on_timer(1.5) == [ChannelClosed(2, "local"), MuxClosed("local")]
    assert mux.next_deadline() is None and mux.closed


def test_bytes_to_send_control_first_and_any_prefix() -> None:
    mux = started_responder(1)
    mux.send(1, bytes(31) * 4)
    first = mux.bytes_to_send(10)  # one data frame is now on the line, partly handed out
    assert len(first) == 10 and mux.queued(1) == 31 * 3
    mux.receive(control(ControlMessage(ControlType.TEST, True, b"t"), True), 0.0)
    rest = mux.bytes_to_send()
    out = frames_of(first + rest)
    assert [f.dlci for f in out] == [1, 0, 1, 1, 1]  # the control frame overtook the queued data
    assert mux.output_pending == 0 and mux.queued(1) == 0


def test_open_channel_before_start_waits_for_dlci0() -> None:
    pair = Pair()
    pair.a.start(0.0)
    pair.a.open_channel(3, 0.0)
    assert [f.dlci for f in frames_of(pair.a.bytes_to_send())] == [0]
    pair.b.receive(frame(0, FrameType.SABM, True, True), 0.0)
    assert pair.a.receive(pair.b.bytes_to_send(), 0.0) == [MuxStarted()]
    assert frames_of(pair.a.bytes_to_send()) == [CmuxFrame(3, FrameType.SABM, True, True)]


def test_api_misuse_raises() -> None:
    with pytest.raises(ValueError):
        Multiplexer(RESPONDER).start(0.0)
    mux = Multiplexer(INITIATOR)
    with pytest.raises(ValueError):
        mux.open_channel(1, 0.0)  # start() first
    mux.start(0.0)
    for dlci in (0, 62, 64):
        with pytest.raises(ValueError):
            mux.open_channel(dlci, 0.0)
    with pytest.raises(ValueError):
        mux.send(1, b"x")
    with pytest.raises(ValueError):
        mux.set_flow(1, True, 0.0)
    for bad in ({"n1": 0}, {"n1": 32769}, {"t1": 0}, {"t2": -1}, {"n2": -1}, {"max_receive": 0}):
        with pytest.raises(ValueError):
            MuxParameters(**bad)
    assert MuxParameters(n1=32768).send_limit == 32767
    assert MuxParameters(n1=2000).receive_limit == 2000
