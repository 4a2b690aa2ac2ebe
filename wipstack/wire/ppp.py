"""PPP encapsulation (RFC 1661 §2, RFC 1662 §3): address, control and protocol fields.

A PPP frame inside the HDLC-like framing::

    +----------+----------+----------+-----------------+
    | Address  | Control  | Protocol | Information     |
    | 0xFF     | 0x03     | 8/16 bits| *               |
    +----------+----------+----------+-----------------+

Address-and-Control-Field-Compression (ACFC, RFC 1661 §6.6) omits the first two octets;
Protocol-Field-Compression (PFC, §6.5) sends protocols below 0x0100 as one octet.  A receiver
accepts both forms at all times (RFC 1661 §6.5/§6.6: "MUST still accept").
"""

from __future__ import annotations

import enum

from construct import Const, Int8ub, Int16ub, Struct

from wipstack.errors import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

ALL_STATIONS = 0xFF
UNNUMBERED_INFORMATION = 0x03

#: The uncompressed PPP header (RFC 1662 §3.1).
PPP_HEADER = Struct(
    "address" / Const(ALL_STATIONS, Int8ub),
    "control" / Const(UNNUMBERED_INFORMATION, Int8ub),
    "protocol" / Int16ub,
)


class PppProtocol(enum.IntEnum):
    """PPP protocol numbers (IANA "PPP DLL Protocol Numbers")."""

    IPV4 = 0x0021
    VJ_COMPRESSED_TCP = 0x002D
    VJ_UNCOMPRESSED_TCP = 0x002F
    IPV6 = 0x0057
    COMPRESSED_DATAGRAM = 0x00FD
    IPCP = 0x8021
    IPV6CP = 0x8057
    CCP = 0x80FD
    LCP = 0xC021
    PAP = 0xC023
    LQR = 0xC025
    CHAP = 0xC223
    EAP = 0xC227


PROTOCOL_NAMES: dict[int, str] = {
    PppProtocol.IPV4: "IP",
    PppProtocol.VJ_COMPRESSED_TCP: "VJC",
    PppProtocol.VJ_UNCOMPRESSED_TCP: "VJUC",
    PppProtocol.IPV6: "IPv6",
    PppProtocol.COMPRESSED_DATAGRAM: "CompressedData",
    PppProtocol.IPCP: "IPCP",
    PppProtocol.IPV6CP: "IPV6CP",
    PppProtocol.CCP: "CCP",
    PppProtocol.LCP: "LCP",
    PppProtocol.PAP: "PAP",
    PppProtocol.LQR: "LQR",
    PppProtocol.CHAP: "CHAP",
    PppProtocol.EAP: "EAP",
}


def protocol_name(protocol: int) -> str:
    """The pppd-style short name of a protocol number, or its hex value."""
    return PROTOCOL_NAMES.get(protocol, f"0x{protocol:04x}")


def is_valid_protocol(protocol: int) -> bool:
    """RFC 1661 §2: the low octet is odd and the high octet is even."""
    return bool(protocol & 0x0001) and not protocol & 0x0100


def encode_frame(protocol: int, information: Buffer, *, pfc: bool = False, acfc: bool = False) -> bytes:
    """The PPP frame (before HDLC stuffing) for ``information`` of ``protocol``."""
    # RFC 1661 §6.5: only protocols below 0x100 compress; 0x00FF would read as the address
    compress = pfc and protocol < 0x100 and protocol != ALL_STATIONS
    head = bytes((protocol,)) if compress else protocol.to_bytes(2, "big")
    if not acfc:
        head = b"\xff\x03" + head
    return head + bytes(information)


def decode_frame(frame: Buffer) -> tuple[int, memoryview]:
    """Split a deframed PPP frame into (protocol, information); raises MalformedPacket."""
    view = memoryview(frame).cast("B")
    pos = 0
    if len(view) >= 1 and view[0] == ALL_STATIONS:
        # RFC 1662 §3.1: with the address present the control field must be UI (0x03)
        if len(view) < 2 or view[1] != UNNUMBERED_INFORMATION:
            raise MalformedPacket(DropReason.BAD_ADDRESS_CONTROL, "address 0xFF without control 0x03")
        pos = 2
    if len(view) <= pos:
        raise MalformedPacket(DropReason.TRUNCATED, "no protocol field")
    first = view[pos]
    if first & 1:  # RFC 1661 §6.5: an odd first octet is a compressed one-octet protocol
        return first, view[pos + 1 :]
    if len(view) < pos + 2:
        raise MalformedPacket(DropReason.TRUNCATED, "protocol field cut short")
    protocol = (first << 8) | view[pos + 1]
    if not is_valid_protocol(protocol):
        raise MalformedPacket(DropReason.BAD_VALUE, f"invalid protocol 0x{protocol:04x}")
    return protocol, view[pos + 2 :]
