"""3GPP TS 27.010 multiplexer, *basic option* frame layer (sans-I/O).

A basic option frame (TS 27.010 §5.2.1, §5.2.6)::

    +------+---------+---------+-------------+-------------+-----+------+
    | Flag | Address | Control | Length      | Information | FCS | Flag |
    | 0xF9 | 1 octet | 1 octet | 1-2 octets  | 0..N1       | 1   | 0xF9 |
    +------+---------+---------+-------------+-------------+-----+------+

    Address (§5.2.1.2):  bit 1 EA (=1) | bit 2 C/R | bits 3-8 DLCI (0..63)
    Control (§5.2.1.3):  frame type; bit 5 (0x10) is the P/F bit
    Length  (§5.2.1.5):  EA=1: one octet, bits 2-8 = L1..L7 (0..127)
                         EA=0: a second octet follows carrying L8..L15
    FCS     (§5.2.1.6):  CRC-8, reflected polynomial x^8+x^2+x+1, preset 0xFF,
                         one's complement; over address, control and length only
                         for UIH, and also over the information for every other type

The basic option has no transparency: the information field may contain 0xF9 and the
receiver finds the end of a frame from the length field, then expects a flag there.
Frames may share one flag (the closing flag of one is the opening flag of the next) and
repeated flags are idle fill (§5.2.6), so an address octet of 0xF9 (DLCI 62 with C/R=0)
cannot be received unambiguously and :meth:`CmuxFrame.emit` refuses to produce it.

Control channel messages (DLCI 0, carried in UIH information, §5.4.6.1)::

    +---------------+----------------+-------------+
    | Type (EA,C/R) | Length (EA...) | Value       |
    +---------------+----------------+-------------+

The control message length is *not* laid out like the frame length: it is an EA-chained
field (§5.4.6.1: every octet carries EA in bit 1 and seven length bits, EA=1 marks the last
octet, L1 is the least significant bit), so a length over 127 takes ``EA=0 L1..L7`` then
``EA=1 L8..L14``.  The frame length's second octet, by contrast, has no EA bit and carries
L8..L15 (§5.2.1.5).  Linux n_gsm (6.1) only ever sends one length octet (its messages are
at most 8 value octets) and reads a longer chain most-significant octet first
(``gsm_read_ea_val``), so lengths over 127 never occur between it and us in practice.

Not implemented: the advanced option (§5.2.7: HDLC-like transparency with 0x7E/0x7D),
error-recovery mode (§6) and convergence layers 2 to 4 (§5.5.2-§5.5.4).  The multiplexer
state machine and its timers live in :mod:`wipstack.cellular.cmux`.  This module is pure: it
holds no clocks, file descriptors or threads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wipstack.errors import DropCounters, DropReason, MalformedPacket

FLAG = 0xF9
#: Default maximum information length N1 for the basic option (§5.7.2).
DEFAULT_MAX_INFORMATION = 31
#: Largest value a two-octet length field can carry (§5.2.1.5: L1..L15).
MAX_LENGTH_FIELD = 0x7FFF
#: The FCS check value: the CRC over the covered octets plus a correct FCS (§5.2.1.6).
FCS_GOOD = 0xCF
POLL_FINAL = 0x10
EA = 0x01
CR = 0x02

_FCS_REFLECTED_POLY = 0xE0  # x^8 + x^2 + x + 1 (0x07), bit-reversed


def _build_fcs_table() -> tuple[int, ...]:
    """Derive the 256-entry table for the reflected CRC-8 of §5.2.1.6 (octet at a time)."""
    table = []
    for octet in range(256):
        crc = octet
        for _ in range(8):
            crc = (crc >> 1) ^ _FCS_REFLECTED_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


FCS_TABLE: tuple[int, ...] = _build_fcs_table()


def _crc(data: bytes | bytearray | memoryview, crc: int = 0xFF) -> int:
    """The running (uncomplemented) CRC of §5.2.1.6 over ``data`` from ``crc``."""
    for octet in data:
        crc = FCS_TABLE[crc ^ octet]
    return crc


def fcs(data: bytes | bytearray | memoryview) -> int:
    """The FCS octet to transmit for the covered octets ``data`` (TS 27.010 §5.2.1.6)."""
    return 0xFF - _crc(data)


def frame_fcs_ok(covered: bytes | bytearray | memoryview, received_fcs: int) -> bool:
    """Receiver check of §5.2.1.6: the CRC over ``covered`` plus the received FCS is 0xCF."""
    return FCS_TABLE[_crc(covered) ^ (received_fcs & 0xFF)] == FCS_GOOD


class FrameType(enum.IntEnum):
    """Control field values with the P/F bit clear (TS 27.010 §5.2.1.3, Table 2)."""

    SABM = 0x2F
    UA = 0x63
    DM = 0x0F
    DISC = 0x43
    UIH = 0xEF
    UI = 0x03


_FRAME_TYPES = frozenset(int(t) for t in FrameType)


def encode_length(length: int) -> bytes:
    """The 1- or 2-octet length field of §5.2.1.5 (EA=1 on a single octet)."""
    if not 0 <= length <= MAX_LENGTH_FIELD:
        raise ValueError(f"length {length} outside 0..{MAX_LENGTH_FIELD}")
    if length <= 0x7F:
        return bytes(((length << 1) | EA,))
    return bytes(((length & 0x7F) << 1, length >> 7))


#: A control message length never needs more than three 7-bit octets (the frame carries < 2**15).
MAX_CONTROL_LENGTH_OCTETS = 3


def encode_control_length(length: int) -> bytes:
    """The EA-chained length field of a control message (§5.4.6.1), least significant 7 bits first."""
    if not 0 <= length <= MAX_LENGTH_FIELD:
        raise ValueError(f"control message length {length} outside 0..{MAX_LENGTH_FIELD}")
    octets = bytearray()
    while True:
        octets.append((length & 0x7F) << 1)
        length >>= 7
        if not length:
            break
    octets[-1] |= EA
    return bytes(octets)


def _decode_control_length(data: bytes, offset: int) -> tuple[int, int]:
    """(value, octets used) of the EA-chained length at ``offset`` (§5.4.6.1).

    Raises MalformedPacket: TRUNCATED when the chain runs off the end, BAD_LENGTH when it is
    longer than :data:`MAX_CONTROL_LENGTH_OCTETS` (no frame could carry such a value).
    """
    length = 0
    for index in range(MAX_CONTROL_LENGTH_OCTETS):
        if offset + index >= len(data):
            raise MalformedPacket(DropReason.TRUNCATED, "control message length field cut short")
        octet = data[offset + index]
        length |= (octet >> 1) << (7 * index)
        if octet & EA:
            return length, index + 1
    raise MalformedPacket(
        DropReason.BAD_LENGTH, f"control message length longer than {MAX_CONTROL_LENGTH_OCTETS} octets"
    )


def _decode_length(data: bytes | bytearray | memoryview, offset: int) -> tuple[int, int] | None:
    """(value, octets used) of a §5.2.1.5 length field at ``offset``, or None if incomplete."""
    if offset >= len(data):
        return None
    first = data[offset]
    if first & EA:
        return first >> 1, 1
    if offset + 1 >= len(data):
        return None
    return (first >> 1) | (data[offset + 1] << 7), 2


def _header_extent(body: bytes | bytearray | memoryview, offset: int, max_information: int) -> tuple[int, int] | None:
    """Validate address/control/length of a body at ``offset``.

    Returns (header length, information length), or None if more octets are needed.
    Raises MalformedPacket for a bad address, control or over-long length.
    """
    available = len(body) - offset
    if available >= 1 and not body[offset] & EA:
        raise MalformedPacket(DropReason.BAD_VALUE, "address EA bit is 0 (§5.2.1.2)")
    if available >= 2 and body[offset + 1] & ~POLL_FINAL not in _FRAME_TYPES:
        raise MalformedPacket(DropReason.BAD_VALUE, f"unknown control octet 0x{body[offset + 1]:02x}")
    decoded = _decode_length(body, offset + 2)
    if decoded is None:
        return None
    length, used = decoded
    if length > max_information:
        raise MalformedPacket(DropReason.FRAME_TOO_LONG, f"information {length} > N1 {max_information}")
    return 2 + used, length


@dataclass(frozen=True, slots=True)
class CmuxFrame:
    """One basic option frame (TS 27.010 §5.2.1).

    ``command_response`` is the raw C/R bit of the address octet (§5.2.1.2, Table 1: its
    meaning depends on which station sent the frame); ``poll_final`` is the P/F bit.
    """

    dlci: int
    control: FrameType
    poll_final: bool
    command_response: bool
    information: bytes = b""

    @property
    def address(self) -> int:
        """The address octet (§5.2.1.2)."""
        return (self.dlci << 2) | (int(self.command_response) << 1) | EA

    @property
    def control_octet(self) -> int:
        """The control octet including the P/F bit (§5.2.1.3)."""
        return int(self.control) | (POLL_FINAL if self.poll_final else 0)

    def emit(self) -> bytes:
        """The complete frame including both flags (§5.2.1); raises ValueError on bad fields."""
        if not 0 <= self.dlci <= 63:
            raise ValueError(f"DLCI {self.dlci} outside 0..63")
        if int(self.control) not in _FRAME_TYPES:
            raise ValueError(f"unknown frame type {self.control!r}")
        if self.address == FLAG:
            raise ValueError("address octet 0xF9 (DLCI 62, C/R=0) is indistinguishable from a flag")
        header = bytes((self.address, self.control_octet)) + encode_length(len(self.information))
        covered = header if self.control == FrameType.UIH else header + self.information
        return bytes((FLAG,)) + header + self.information + bytes((fcs(covered), FLAG))

    @classmethod
    def parse_body(
        cls, body: bytes | bytearray | memoryview, max_information: int = DEFAULT_MAX_INFORMATION
    ) -> CmuxFrame:
        """Parse the octets between two flags (§5.2.1).

        Raises MalformedPacket: BAD_VALUE (address EA=0, unknown control), TRUNCATED (shorter
        than the header, length field or FCS), FRAME_TOO_LONG (information > ``max_information``,
        N1 of §5.7.2), BAD_LENGTH (octets beyond the FCS), BAD_CHECKSUM (FCS check fails).
        """
        body = bytes(body)
        extent = _header_extent(body, 0, max_information)
        if extent is None:
            raise MalformedPacket(DropReason.TRUNCATED, f"{len(body)} octets: no complete header")
        header_len, info_len = extent
        total = header_len + info_len + 1
        if len(body) < total:
            raise MalformedPacket(DropReason.TRUNCATED, f"{len(body)} octets, length field needs {total}")
        if len(body) > total:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"{len(body)} octets, length field gives {total}")
        control = body[1] & ~POLL_FINAL
        information = body[header_len : header_len + info_len]
        covered = body[:header_len] if control == FrameType.UIH else body[: header_len + info_len]
        if not frame_fcs_ok(covered, body[-1]):
            raise MalformedPacket(DropReason.BAD_CHECKSUM, "FCS check failed (§5.2.1.6)")
        return cls(
            dlci=body[0] >> 2,
            control=FrameType(control),
            poll_final=bool(body[1] & POLL_FINAL),
            command_response=bool(body[0] & CR),
            information=information,
        )


class CmuxDeframer:
    """Incremental basic option receiver (§5.2.6): octets in, frames out.

    Octets before a flag are skipped; repeated flags are idle fill.  After an opening flag
    the frame's extent comes from its length field and a flag must follow the FCS; that
    closing flag may also open the next frame.  Any bad frame is counted in :attr:`drops`
    and the receiver resynchronises by hunting for the next flag after the bad frame's
    opening flag.  The buffer never holds more than one maximum-size frame plus its flags.
    :meth:`feed` never raises.
    """

    def __init__(self, max_information: int = DEFAULT_MAX_INFORMATION) -> None:
        if not 0 <= max_information <= MAX_LENGTH_FIELD:
            raise ValueError(f"max_information {max_information} outside 0..{MAX_LENGTH_FIELD}")
        self.max_information = max_information
        self.drops = DropCounters()
        self.frames = 0
        self._buf = bytearray()

    @property
    def max_frame_size(self) -> int:
        """Largest frame in octets including both flags (2-octet length form)."""
        return 1 + 4 + self.max_information + 1 + 1

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[CmuxFrame]:
        """Consume ``data``; return the frames it completed, in order."""
        buf = self._buf
        buf += data
        out: list[CmuxFrame] = []
        pos = 0
        while True:
            start = buf.find(FLAG, pos)
            if start < 0:
                pos = len(buf)  # hunting: nothing here can start a frame
                break
            while start + 1 < len(buf) and buf[start + 1] == FLAG:
                start += 1  # idle fill: the last flag of a run opens the frame
            pos = start
            try:
                extent = _header_extent(buf, start + 1, self.max_information)
            except MalformedPacket as exc:
                self.drops.count(exc.reason)
                pos = start + 1
                continue
            if extent is None:
                break
            header_len, info_len = extent
            end = start + 1 + header_len + info_len + 1  # index of the closing flag
            if end >= len(buf):
                break
            if buf[end] != FLAG:
                self.drops.count(DropReason.BAD_LENGTH)
                pos = start + 1
                continue
            try:
                frame = CmuxFrame.parse_body(buf[start + 1 : end], self.max_information)
            except MalformedPacket as exc:
                self.drops.count(exc.reason)
                pos = start + 1
                continue
            out.append(frame)
            self.frames += 1
            pos = end  # the closing flag may open the next frame
        del buf[:pos]
        return out


class ControlType(enum.IntEnum):
    """Multiplexer control channel message types, 6-bit values (§5.4.6.3)."""

    PN = 0x20
    PSC = 0x10
    CLD = 0x30
    TEST = 0x08
    FCON = 0x28
    FCOFF = 0x18
    MSC = 0x38
    NSC = 0x04
    RPN = 0x24
    RLS = 0x14
    SNC = 0x34


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """One control channel message carried in a DLCI 0 UIH frame (§5.4.6.1).

    ``type`` is the 6-bit message type (:class:`ControlType` or any other value),
    ``command`` the C/R bit of the type octet (1 = command, 0 = response).
    """

    type: int
    command: bool
    value: bytes = b""

    @property
    def type_octet(self) -> int:
        """The type octet: ``(type << 2) | (C/R << 1) | EA``."""
        return (self.type << 2) | (CR if self.command else 0) | EA

    def emit(self) -> bytes:
        """Type octet, length octet(s) and value; raises ValueError on bad fields."""
        if not 0 <= self.type <= 63:
            raise ValueError(f"control message type {self.type} outside 0..63")
        return bytes((self.type_octet,)) + encode_control_length(len(self.value)) + self.value


def parse_control_messages(information: bytes | bytearray | memoryview) -> list[ControlMessage]:
    """Split a DLCI 0 UIH information field into control messages (§5.4.6.1).

    The length field is EA-chained, least significant 7 bits first (see the module docstring).
    Raises MalformedPacket: TRUNCATED when a type, length or value is cut short, BAD_LENGTH
    for a length chain over three octets, BAD_VALUE for a multi-octet (EA=0) type field,
    which no defined type uses.
    """
    data = bytes(information)
    messages: list[ControlMessage] = []
    offset = 0
    while offset < len(data):
        type_octet = data[offset]
        if not type_octet & EA:
            raise MalformedPacket(DropReason.BAD_VALUE, "extended (EA=0) control message type")
        length, used = _decode_control_length(data, offset + 1)
        start = offset + 1 + used
        if start + length > len(data):
            raise MalformedPacket(DropReason.TRUNCATED, f"control message value needs {length} octets")
        messages.append(ControlMessage(type_octet >> 2, bool(type_octet & CR), data[start : start + length]))
        offset = start + length
    return messages


# V.24 signal bits of the MSC signals octet (§5.4.6.3.7, Figure 11).
FC = 0x02
RTC = 0x04
RTR = 0x08
IC = 0x40
DV = 0x80


@dataclass(frozen=True, slots=True)
class ModemStatus:
    """The value of a Modem Status Command (MSC, §5.4.6.3.7).

    ``break_signal`` is the raw optional break octet (EA, B1 = break present, bits 5-8 =
    break length in 200 ms units), or None if absent.
    """

    dlci: int
    fc: bool = False
    rtc: bool = False
    rtr: bool = False
    ic: bool = False
    dv: bool = False
    break_signal: int | None = None

    @property
    def signals(self) -> int:
        """The V.24 signals octet without the EA bit."""
        return (
            (FC if self.fc else 0)
            | (RTC if self.rtc else 0)
            | (RTR if self.rtr else 0)
            | (IC if self.ic else 0)
            | (DV if self.dv else 0)
        )

    @classmethod
    def parse(cls, value: bytes | bytearray | memoryview) -> ModemStatus:
        """Parse an MSC value: DLCI octet, signals octet, optional break octet.

        Raises MalformedPacket: TRUNCATED if shorter than 2 octets, BAD_LENGTH if longer
        than 3, BAD_VALUE if the DLCI octet's EA bit is 0.
        """
        if len(value) < 2:
            raise MalformedPacket(DropReason.TRUNCATED, f"MSC value of {len(value)} octets")
        if len(value) > 3:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"MSC value of {len(value)} octets")
        if not value[0] & EA:
            raise MalformedPacket(DropReason.BAD_VALUE, "MSC DLCI octet EA bit is 0")
        sig = value[1]
        return cls(
            dlci=value[0] >> 2,
            fc=bool(sig & FC),
            rtc=bool(sig & RTC),
            rtr=bool(sig & RTR),
            ic=bool(sig & IC),
            dv=bool(sig & DV),
            break_signal=value[2] if len(value) == 3 else None,
        )

    def emit(self) -> bytes:
        """The MSC value; the signals octet has EA=1 unless a break octet follows."""
        if not 0 <= self.dlci <= 63:
            raise ValueError(f"DLCI {self.dlci} outside 0..63")
        dlci_octet = (self.dlci << 2) | 0x03
        if self.break_signal is None:
            return bytes((dlci_octet, self.signals | EA))
        if not 0 <= self.break_signal <= 0xFF:
            raise ValueError(f"break octet {self.break_signal} outside 0..255")
        return bytes((dlci_octet, self.signals, self.break_signal | EA))


def msc(dlci: int, signals: int, command: bool) -> ControlMessage:
    """An MSC control message for ``dlci`` with the V.24 ``signals`` octet (EA is set)."""
    if not 0 <= dlci <= 63:
        raise ValueError(f"DLCI {dlci} outside 0..63")
    if not 0 <= signals <= 0xFF:
        raise ValueError(f"signals {signals} outside 0..255")
    return ControlMessage(ControlType.MSC, command, bytes(((dlci << 2) | 0x03, signals | EA)))
