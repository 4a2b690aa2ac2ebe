"""pppd-style one-line rendering of control packets, so our log reads like pppd's.

``sent [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x5f0e1a2b> <pcomp> <accomp>]``
"""

from __future__ import annotations

from collections.abc import Callable

from wipstack.errors import MalformedPacket
from wipstack.wire.cp import CODE_NAMES, CONFIGURE_CODES, CpCode, CpPacket, RawOption, parse_options
from wipstack.wire.ipcp import format_ipcp_option
from wipstack.wire.lcp import MAGIC_BODY, format_lcp_option
from wipstack.wire.pap import PAP_CODE_NAMES, PapRequest, PapResponse
from wipstack.wire.ppp import PppProtocol, protocol_name

Buffer = bytes | bytearray | memoryview


def _generic_option(option: RawOption) -> str:
    return f"<opt{option.type} {option.data.hex(' ')}>" if option.data else f"<opt{option.type}>"


_OPTION_FORMATTERS: dict[int, Callable[[RawOption], str]] = {
    PppProtocol.LCP: format_lcp_option,
    PppProtocol.IPCP: format_ipcp_option,
}


def _quoted(data: bytes) -> str:
    return '"' + data.decode("ascii", "backslashreplace") + '"'


def format_packet(protocol: int, information: Buffer) -> str:
    """Render one control packet the way pppd's debug log does."""
    name = protocol_name(protocol)
    info = bytes(information)
    if protocol == PppProtocol.PAP:
        return _format_pap(info)
    if not (protocol & 0x8000 or protocol == PppProtocol.LCP):
        return f"[{name} {len(info)} octets]"
    try:
        packet = CpPacket.parse(info)
    except MalformedPacket:
        return f"[{name} malformed {info[:16].hex(' ')}]"
    head = f"{name} {CODE_NAMES.get(packet.code, f'code=0x{packet.code:x}')} id=0x{packet.identifier:x}"
    data = packet.data
    if packet.code in CONFIGURE_CODES:
        try:
            options = parse_options(data)
        except MalformedPacket:
            return f"[{head} {data.hex(' ')}]"
        fmt = _OPTION_FORMATTERS.get(protocol, _generic_option)
        rendered = " ".join(fmt(o) for o in options)
        return f"[{head}{' ' + rendered if rendered else ''}]"
    if packet.code in (CpCode.TERMINATE_REQUEST, CpCode.TERMINATE_ACK):
        return f"[{head}{' ' + _quoted(data) if data else ''}]"
    if (
        protocol == PppProtocol.LCP
        and packet.code
        in (
            CpCode.ECHO_REQUEST,
            CpCode.ECHO_REPLY,
            CpCode.DISCARD_REQUEST,
        )
        and len(data) >= 4
    ):
        rest = data[4:]
        return f"[{head} magic=0x{MAGIC_BODY.parse(data).magic:x}{' ' + rest.hex(' ') if rest else ''}]"
    return f"[{head}{' ' + data[:32].hex(' ') if data else ''}]"


def _format_pap(info: bytes) -> str:
    try:
        packet = CpPacket.parse(info)
    except MalformedPacket:
        return f"[PAP malformed {info[:16].hex(' ')}]"
    head = f"PAP {PAP_CODE_NAMES.get(packet.code, f'code=0x{packet.code:x}')} id=0x{packet.identifier:x}"
    try:
        if packet.code == 1:
            request = PapRequest.parse(packet.data)
            return f"[{head} user={_quoted(request.peer_id)} password=<hidden>]"
        if packet.code in (2, 3):
            return f"[{head} {_quoted(PapResponse.parse(packet.data).message)}]"
    except MalformedPacket:
        pass
    return f"[{head} {packet.data[:32].hex(' ')}]"
