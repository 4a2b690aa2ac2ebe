"""LCP configuration options (RFC 1661 §6) and LCP-only packet bodies.

Option values, as the RFC figures give them after Type and Length::

    1 Maximum-Receive-Unit      Maximum-Receive-Unit (16 bits)
    2 Async-Control-Character-Map (RFC 1662 §7.1)  ACCM (32 bits)
    3 Authentication-Protocol   Authentication-Protocol (16 bits), Data ...
    4 Quality-Protocol          Quality-Protocol (16 bits), Data ...
    5 Magic-Number              Magic-Number (32 bits)
    7 Protocol-Field-Compression            (no data)
    8 Address-and-Control-Field-Compression (no data)

Echo-Request, Echo-Reply and Discard-Request carry a Magic-Number then free data; a
Protocol-Reject carries the rejected protocol then the rejected information (§5.7-5.8).
"""

from __future__ import annotations

import enum
from typing import Any

from construct import Construct, GreedyBytes, Int16ub, Int32ub, Struct, Terminated

from wipstack.errors import MalformedPacket
from wipstack.wire.cp import RawOption, decode_value, encode_value
from wipstack.wire.ppp import protocol_name

Buffer = bytes | bytearray | memoryview


class LcpOptionType(enum.IntEnum):
    """LCP option types (RFC 1661 §6 and the IANA registry)."""

    MRU = 1
    ACCM = 2
    AUTH_PROTOCOL = 3
    QUALITY_PROTOCOL = 4
    MAGIC_NUMBER = 5
    PFC = 7
    ACFC = 8
    FCS_ALTERNATIVES = 9
    CALLBACK = 13
    MRRU = 17
    SHORT_SEQUENCE = 18
    ENDPOINT_DISCRIMINATOR = 19


AUTH_PROTOCOL_VALUE = Struct("protocol" / Int16ub, "data" / GreedyBytes)
QUALITY_PROTOCOL_VALUE = Struct("protocol" / Int16ub, "data" / GreedyBytes)
MAGIC_BODY = Struct("magic" / Int32ub, "data" / GreedyBytes)  # Echo-*, Discard-Request
PROTOCOL_REJECT_BODY = Struct("protocol" / Int16ub, "information" / GreedyBytes)

#: The value format of every option type that LCP understands.
LCP_OPTION_VALUES: dict[int, Construct] = {
    LcpOptionType.MRU: Int16ub,
    LcpOptionType.ACCM: Int32ub,
    LcpOptionType.AUTH_PROTOCOL: AUTH_PROTOCOL_VALUE,
    LcpOptionType.QUALITY_PROTOCOL: QUALITY_PROTOCOL_VALUE,
    LcpOptionType.MAGIC_NUMBER: Int32ub,
    LcpOptionType.PFC: Terminated,
    LcpOptionType.ACFC: Terminated,
}


def lcp_option(option_type: LcpOptionType, value: Any = None) -> RawOption:
    """Build an LCP option: ``lcp_option(LcpOptionType.MRU, 1500)``."""
    return encode_value(LCP_OPTION_VALUES, option_type, value)


def decode_lcp_option(option: RawOption) -> Any:
    """The typed value of an LCP option (int, Container or None for flags)."""
    return decode_value(LCP_OPTION_VALUES, option)


def format_lcp_option(option: RawOption) -> str:
    """pppd's rendering of an option, e.g. ``<asyncmap 0x0>`` or ``<auth pap>``."""
    try:
        value = decode_lcp_option(option)
    except MalformedPacket:
        return f"<opt{option.type} {option.data.hex(' ')}>".replace(" >", ">")
    kind = option.type
    if kind == LcpOptionType.MRU:
        return f"<mru {value}>"
    if kind == LcpOptionType.ACCM:
        return f"<asyncmap 0x{value:x}>"
    if kind == LcpOptionType.AUTH_PROTOCOL:
        name = {0xC023: "pap", 0xC223: "chap", 0xC227: "eap"}.get(value.protocol, f"0x{value.protocol:x}")
        extra = f" {value.data.hex(' ')}" if value.data else ""
        return f"<auth {name}{extra}>"
    if kind == LcpOptionType.QUALITY_PROTOCOL:
        return f"<quality {protocol_name(value.protocol)}>"
    if kind == LcpOptionType.MAGIC_NUMBER:
        return f"<magic 0x{value:x}>"
    if kind == LcpOptionType.PFC:
        return "<pcomp>"
    return "<accomp>"
