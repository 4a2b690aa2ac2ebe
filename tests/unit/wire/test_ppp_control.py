"""PPP control-plane wire formats: PPP header, CP packets and options, LCP, IPCP and PAP bodies.

Golden bytes are real frames (pppd's LCP Configure-Request, an IPCP request with VJ and an
address, a PAP exchange); each declaration gets the quartet deconstruct / construct / parse /
emit plus the malformed-length cases that must raise ``MalformedPacket`` with the right reason.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from construct import Container

from tests.helpers.construct_common import common
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire.cp import (
    CP_OPTION,
    CP_PACKET,
    CpCode,
    CpPacket,
    RawOption,
    decode_value,
    emit_options,
    parse_options,
)
from wipstack.wire.ipcp import (
    IP_ADDRESSES_VALUE,
    IP_COMPRESSION_VALUE,
    IpcpOptionType,
    decode_ipcp_option,
    format_ipcp_option,
    ipcp_option,
)
from wipstack.wire.lcp import (
    AUTH_PROTOCOL_VALUE,
    LCP_OPTION_VALUES,
    MAGIC_BODY,
    PROTOCOL_REJECT_BODY,
    LcpOptionType,
    decode_lcp_option,
    format_lcp_option,
    lcp_option,
)
from wipstack.wire.pap import PAP_REQUEST_BODY, PAP_RESPONSE_BODY, PapCode, PapRequest, PapResponse
from wipstack.wire.ppp import (
    PPP_HEADER,
    PppProtocol,
    decode_frame,
    encode_frame,
    is_valid_protocol,
    protocol_name,
)

# pppd 2.4's first LCP Configure-Request: <asyncmap 0x0> <magic 0x20b67ba5> <pcomp> <accomp>
PPPD_LCP_FRAME = bytes.fromhex("ff03c021 01010014 020600000000 050620b67ba5 0702 0802")
PPPD_LCP_PACKET = PPPD_LCP_FRAME[4:]
PPPD_LCP_OPTIONS = [
    RawOption(LcpOptionType.ACCM, bytes(4)),
    RawOption(LcpOptionType.MAGIC_NUMBER, bytes.fromhex("20b67ba5")),
    RawOption(LcpOptionType.PFC),
    RawOption(LcpOptionType.ACFC),
]

# IPCP Configure-Request <compress VJ 0f 01> <addr 192.0.2.2>
IPCP_FRAME = bytes.fromhex("ff038021 01010010 0206002d0f01 0306c0000202")
IPCP_PACKET = IPCP_FRAME[4:]

# PAP Authenticate-Request user "alice" password "s3cret", and its Authenticate-Ack "Login ok"
PAP_REQUEST_FRAME = bytes.fromhex("ff03c023 01070011") + b"\x05alice\x06s3cret"
PAP_ACK_FRAME = bytes.fromhex("ff03c023 0207000d") + b"\x08Login ok"


def drop_reason(call: object, *args: object) -> DropReason:
    assert callable(call)
    with pytest.raises(MalformedPacket) as info:
        call(*args)
    return info.value.reason


# ------------------------------------------------------------------ PPP header (RFC 1661 §2)


class TestPppHeader:
    def test_deconstruct(self) -> None:
        header = PPP_HEADER.parse(PPPD_LCP_FRAME)
        assert (header.address, header.control, header.protocol) == (0xFF, 0x03, PppProtocol.LCP)

    def test_declaration_common(self) -> None:
        common(PPP_HEADER, PPPD_LCP_FRAME[:4], Container(address=0xFF, control=0x03, protocol=0xC021), 4)

    def test_encode_frame_uncompressed(self) -> None:
        assert encode_frame(PppProtocol.LCP, PPPD_LCP_PACKET) == PPPD_LCP_FRAME

    @pytest.mark.parametrize(
        ("pfc", "acfc", "head"),
        [(False, False, "ff030021"), (True, False, "ff0321"), (False, True, "0021"), (True, True, "21")],
        ids=["plain", "pfc", "acfc", "pfc+acfc"],
    )
    def test_encode_frame_compressed_variants(self, pfc: bool, acfc: bool, head: str) -> None:
        assert encode_frame(PppProtocol.IPV4, b"\x45", pfc=pfc, acfc=acfc) == bytes.fromhex(head) + b"\x45"

    def test_encode_frame_pfc_never_shortens_a_two_octet_protocol(self) -> None:
        assert encode_frame(PppProtocol.IPCP, b"", pfc=True, acfc=True) == bytes.fromhex("8021")

    @pytest.mark.parametrize(
        "frame",
        ["ff030021 45", "ff0321 45", "0021 45", "21 45"],
        ids=["plain", "pfc", "acfc", "pfc+acfc"],
    )
    def test_decode_frame_accepts_every_compression_variant(self, frame: str) -> None:
        protocol, information = decode_frame(bytes.fromhex(frame))
        assert protocol == PppProtocol.IPV4
        assert bytes(information) == b"\x45"

    def test_decode_frame_lcp(self) -> None:
        protocol, information = decode_frame(PPPD_LCP_FRAME)
        assert protocol == PppProtocol.LCP
        assert bytes(information) == PPPD_LCP_PACKET

    def test_decode_frame_empty_information(self) -> None:
        protocol, information = decode_frame(bytes.fromhex("ff03c021"))
        assert protocol == PppProtocol.LCP and bytes(information) == b""

    @pytest.mark.parametrize(
        ("frame", "reason"),
        [
            ("", DropReason.TRUNCATED),
            ("ff", DropReason.BAD_ADDRESS_CONTROL),
            ("ff01c021", DropReason.BAD_ADDRESS_CONTROL),
            ("ff03", DropReason.TRUNCATED),
            ("ff03c0", DropReason.TRUNCATED),
            ("c0", DropReason.TRUNCATED),
            ("ff030020", DropReason.BAD_VALUE),  # low octet even
            ("0220", DropReason.BAD_VALUE),
        ],
        ids=[
            "empty",
            "address-only",
            "bad-control",
            "no-protocol",
            "half-protocol",
            "acfc-half-protocol",
            "even-protocol",
            "acfc-even-protocol",
        ],
    )
    def test_decode_frame_malformed(self, frame: str, reason: DropReason) -> None:
        assert drop_reason(decode_frame, bytes.fromhex(frame)) == reason

    def test_decode_frame_odd_first_octet_is_a_compressed_protocol(self) -> None:
        # RFC 1661 §6.5: an odd first octet ends the Protocol field, whatever follows
        protocol, information = decode_frame(bytes.fromhex("ff03 0121"))
        assert protocol == 0x01 and bytes(information) == b"\x21"

    def test_decode_frame_accepts_memoryview_and_bytearray(self) -> None:
        for buffer in (bytearray(PPPD_LCP_FRAME), memoryview(PPPD_LCP_FRAME)):
            assert decode_frame(buffer)[0] == PppProtocol.LCP

    @pytest.mark.parametrize(
        ("protocol", "valid"),
        [(0x0021, True), (0xC021, True), (0x8021, True), (0x0020, False), (0x0121, False), (0xFFFF, False)],
    )
    def test_is_valid_protocol(self, protocol: int, valid: bool) -> None:
        assert is_valid_protocol(protocol) is valid

    def test_protocol_names(self) -> None:
        assert protocol_name(PppProtocol.LCP) == "LCP"
        assert protocol_name(PppProtocol.IPV4) == "IP"
        assert protocol_name(0x4021) == "0x4021"


# ------------------------------------------------------------- CP packet (RFC 1661 §5)


class TestCpPacket:
    def test_deconstruct(self) -> None:
        parsed = CP_PACKET.parse(PPPD_LCP_PACKET)
        assert (parsed.code, parsed.identifier, parsed.length) == (CpCode.CONFIGURE_REQUEST, 1, 20)
        assert parsed.data == PPPD_LCP_PACKET[4:]

    def test_declaration_common(self) -> None:
        common(CP_PACKET, PPPD_LCP_PACKET, Container(code=1, identifier=1, length=20, data=PPPD_LCP_PACKET[4:]))

    def test_construct_rebuilds_length(self) -> None:
        built = CP_PACKET.build({"code": 1, "identifier": 1, "data": PPPD_LCP_PACKET[4:]})
        assert built == PPPD_LCP_PACKET

    def test_parse(self) -> None:
        assert CpPacket.parse(PPPD_LCP_PACKET) == CpPacket(CpCode.CONFIGURE_REQUEST, 1, PPPD_LCP_PACKET[4:])

    def test_emit(self) -> None:
        assert CpPacket(CpCode.CONFIGURE_REQUEST, 1, emit_options(PPPD_LCP_OPTIONS)).emit() == PPPD_LCP_PACKET

    def test_round_trip_empty_data(self) -> None:
        packet = CpPacket(CpCode.TERMINATE_ACK, 0xFE)
        assert packet.emit() == bytes.fromhex("06fe0004")
        assert CpPacket.parse(packet.emit()) == packet

    def test_padding_beyond_length_is_ignored(self) -> None:
        # RFC 1661 §5: octets outside the range of the Length field are treated as padding
        assert CpPacket.parse(PPPD_LCP_PACKET + b"\x00\x7e\xff") == CpPacket.parse(PPPD_LCP_PACKET)

    def test_parse_accepts_memoryview(self) -> None:
        assert CpPacket.parse(memoryview(PPPD_LCP_PACKET)) == CpPacket.parse(PPPD_LCP_PACKET)

    @pytest.mark.parametrize(
        ("packet", "reason"),
        [
            ("", DropReason.TRUNCATED),
            ("010100", DropReason.TRUNCATED),
            ("01010000", DropReason.BAD_LENGTH),  # Length 0
            ("01010003", DropReason.BAD_LENGTH),  # Length below the header
            ("01010005", DropReason.BAD_LENGTH),  # Length beyond the octets present
            ("01010014020600000000", DropReason.BAD_LENGTH),
        ],
        ids=["empty", "short-header", "length-0", "length-3", "overrun-by-1", "overrun"],
    )
    def test_parse_malformed(self, packet: str, reason: DropReason) -> None:
        assert drop_reason(CpPacket.parse, bytes.fromhex(packet)) == reason

    def test_code_names_cover_every_code(self) -> None:
        assert {int(code) for code in CpCode} == set(range(1, 12))


# ----------------------------------------------------------- CP options (RFC 1661 §6)


class TestCpOptions:
    def test_deconstruct(self) -> None:
        parsed = CP_OPTION.parse(bytes.fromhex("050620b67ba5"))
        assert (parsed.type, parsed.length, parsed.data) == (5, 6, bytes.fromhex("20b67ba5"))

    def test_declaration_common(self) -> None:
        common(CP_OPTION, bytes.fromhex("0702"), Container(type=7, length=2, data=b""))
        common(CP_OPTION, bytes.fromhex("010405dc"), Container(type=1, length=4, data=b"\x05\xdc"))

    def test_parse_pppd_options(self) -> None:
        assert parse_options(PPPD_LCP_PACKET[4:]) == PPPD_LCP_OPTIONS

    def test_emit_pppd_options(self) -> None:
        assert emit_options(PPPD_LCP_OPTIONS) == PPPD_LCP_PACKET[4:]
        assert emit_options(tuple(PPPD_LCP_OPTIONS)) == PPPD_LCP_PACKET[4:]

    def test_parse_empty_list(self) -> None:
        assert parse_options(b"") == []

    def test_unknown_option_kept_verbatim(self) -> None:
        # Callback (13) with operation 6: what a Configure-Reject must echo unchanged
        [option] = parse_options(bytes.fromhex("0d0306"))
        assert option == RawOption(13, b"\x06")
        assert option.emit() == bytes.fromhex("0d0306")

    @pytest.mark.parametrize(
        "data",
        ["01", "0100", "0101", "010505dc", "0702 01", "0802 0103"],
        ids=["type-only", "length-0", "length-1", "overrun", "trailing-octet", "trailing-overrun"],
    )
    def test_parse_malformed(self, data: str) -> None:
        assert drop_reason(parse_options, bytes.fromhex(data)) == DropReason.BAD_OPTION

    @pytest.mark.parametrize(
        "option",
        [
            RawOption(LcpOptionType.MRU, b"\x05"),  # Length 3
            RawOption(LcpOptionType.MRU, b"\x05\xdc\x00"),  # Length 5
            RawOption(LcpOptionType.MAGIC_NUMBER, b"\x00\x00\x01"),
            RawOption(LcpOptionType.ACCM, b""),
            RawOption(LcpOptionType.PFC, b"\x00"),  # flag option with data
            RawOption(LcpOptionType.AUTH_PROTOCOL, b"\xc0"),
            RawOption(LcpOptionType.CALLBACK, b"\x06"),  # not a type LCP decodes
        ],
        ids=["mru-3", "mru-5", "magic-5", "accm-2", "pfc-3", "auth-3", "callback"],
    )
    def test_decode_lcp_option_wrong_length(self, option: RawOption) -> None:
        assert drop_reason(decode_lcp_option, option) == DropReason.BAD_OPTION

    def test_decode_value_unknown_type(self) -> None:
        assert drop_reason(decode_value, LCP_OPTION_VALUES, RawOption(99)) == DropReason.BAD_OPTION


# ----------------------------------------------------------- LCP (RFC 1661 §6, §5.7-5.8)


class TestLcpOptions:
    @pytest.mark.parametrize(
        ("option_type", "value", "octets"),
        [
            (LcpOptionType.MRU, 1500, "010405dc"),
            (LcpOptionType.ACCM, 0x000A0000, "0206000a0000"),
            (LcpOptionType.AUTH_PROTOCOL, {"protocol": 0xC023, "data": b""}, "0304c023"),
            (LcpOptionType.AUTH_PROTOCOL, {"protocol": 0xC223, "data": b"\x05"}, "0305c22305"),
            (LcpOptionType.QUALITY_PROTOCOL, {"protocol": 0xC025, "data": bytes(4)}, "0408c02500000000"),
            (LcpOptionType.MAGIC_NUMBER, 0x20B67BA5, "050620b67ba5"),
            (LcpOptionType.PFC, None, "0702"),
            (LcpOptionType.ACFC, None, "0802"),
        ],
        ids=["mru", "accm", "auth-pap", "auth-chap-md5", "quality-lqr", "magic", "pfc", "acfc"],
    )
    def test_option_round_trip(self, option_type: LcpOptionType, value: object, octets: str) -> None:
        option = lcp_option(option_type, value)
        assert option.emit() == bytes.fromhex(octets)
        [parsed] = parse_options(bytes.fromhex(octets))
        decoded = decode_lcp_option(parsed)
        if isinstance(value, dict):
            assert (decoded.protocol, decoded.data) == (value["protocol"], value["data"])
        else:
            assert decoded == value

    def test_pppd_request_values(self) -> None:
        values = [decode_lcp_option(o) for o in PPPD_LCP_OPTIONS]
        assert values == [0, 0x20B67BA5, None, None]

    def test_auth_protocol_declaration_common(self) -> None:
        common(AUTH_PROTOCOL_VALUE, bytes.fromhex("c023"), Container(protocol=0xC023, data=b""))

    def test_magic_body_declaration_common(self) -> None:
        common(MAGIC_BODY, bytes.fromhex("20b67ba5 0102"), Container(magic=0x20B67BA5, data=b"\x01\x02"))

    def test_protocol_reject_body_declaration_common(self) -> None:
        common(
            PROTOCOL_REJECT_BODY,
            bytes.fromhex("80fd 01010004"),
            Container(protocol=0x80FD, information=bytes.fromhex("01010004")),
        )

    @pytest.mark.parametrize(
        ("option", "text"),
        [
            (lcp_option(LcpOptionType.MRU, 1500), "<mru 1500>"),
            (lcp_option(LcpOptionType.ACCM, 0), "<asyncmap 0x0>"),
            (lcp_option(LcpOptionType.ACCM, 0x000A0000), "<asyncmap 0xa0000>"),
            (lcp_option(LcpOptionType.AUTH_PROTOCOL, {"protocol": 0xC023, "data": b""}), "<auth pap>"),
            (lcp_option(LcpOptionType.AUTH_PROTOCOL, {"protocol": 0xC223, "data": b"\x05"}), "<auth chap 05>"),
            (lcp_option(LcpOptionType.MAGIC_NUMBER, 0x20B67BA5), "<magic 0x20b67ba5>"),
            (lcp_option(LcpOptionType.PFC), "<pcomp>"),
            (lcp_option(LcpOptionType.ACFC), "<accomp>"),
            (lcp_option(LcpOptionType.QUALITY_PROTOCOL, {"protocol": 0xC025, "data": b""}), "<quality LQR>"),
        ],
    )
    def test_format(self, option: RawOption, text: str) -> None:
        assert format_lcp_option(option) == text

    def test_format_undecodable_option_shows_hex(self) -> None:
        assert format_lcp_option(RawOption(13, b"\x06")) == "<opt13 06>"
        assert format_lcp_option(RawOption(17)) == "<opt17>"


# --------------------------------------------------------- IPCP (RFC 1332 §3, RFC 1877)


class TestIpcpOptions:
    def test_parse_golden_request(self) -> None:
        protocol, information = decode_frame(IPCP_FRAME)
        packet = CpPacket.parse(information)
        assert protocol == PppProtocol.IPCP and packet.code == CpCode.CONFIGURE_REQUEST
        compress, address = parse_options(packet.data)
        vj = decode_ipcp_option(compress)
        assert compress.type == IpcpOptionType.IP_COMPRESSION_PROTOCOL
        assert (vj.protocol, vj.data) == (0x002D, b"\x0f\x01")
        assert address.type == IpcpOptionType.IP_ADDRESS
        assert decode_ipcp_option(address) == IPv4Address("192.0.2.2")

    def test_emit_golden_request(self) -> None:
        options = [
            ipcp_option(IpcpOptionType.IP_COMPRESSION_PROTOCOL, {"protocol": 0x002D, "data": b"\x0f\x01"}),
            ipcp_option(IpcpOptionType.IP_ADDRESS, IPv4Address("192.0.2.2")),
        ]
        packet = CpPacket(CpCode.CONFIGURE_REQUEST, 1, emit_options(options)).emit()
        assert encode_frame(PppProtocol.IPCP, packet) == IPCP_FRAME

    def test_format_golden_request(self) -> None:
        options = parse_options(IPCP_PACKET[4:])
        assert [format_ipcp_option(o) for o in options] == ["<compress VJ 0f 01>", "<addr 192.0.2.2>"]

    def test_address_accepts_text(self) -> None:
        assert ipcp_option(IpcpOptionType.IP_ADDRESS, "192.0.2.2").emit() == bytes.fromhex("0306c0000202")

    @pytest.mark.parametrize(
        ("option_type", "name"),
        [
            (IpcpOptionType.PRIMARY_DNS, "ms-dns1"),
            (IpcpOptionType.SECONDARY_DNS, "ms-dns2"),
            (IpcpOptionType.PRIMARY_NBNS, "ms-wins1"),
            (IpcpOptionType.SECONDARY_NBNS, "ms-wins2"),
        ],
    )
    def test_rfc1877_options_round_trip(self, option_type: IpcpOptionType, name: str) -> None:
        address = IPv4Address("198.51.100.53")
        option = ipcp_option(option_type, address)
        assert option.emit() == bytes([option_type, 6]) + address.packed
        assert decode_ipcp_option(option) == address
        assert format_ipcp_option(option) == f"<{name} 198.51.100.53>"

    def test_ip_addresses_declaration_common(self) -> None:
        common(
            IP_ADDRESSES_VALUE,
            bytes.fromhex("c0000201c0000202"),
            Container(source=IPv4Address("192.0.2.1"), destination=IPv4Address("192.0.2.2")),
            8,
        )

    def test_ip_compression_declaration_common(self) -> None:
        common(IP_COMPRESSION_VALUE, bytes.fromhex("002d0f01"), Container(protocol=0x2D, data=b"\x0f\x01"))

    def test_format_ip_addresses(self) -> None:
        [option] = parse_options(bytes.fromhex("010ac0000201c0000202"))
        assert format_ipcp_option(option) == "<addrs 192.0.2.1 192.0.2.2>"

    @pytest.mark.parametrize(
        "option",
        [
            RawOption(IpcpOptionType.IP_ADDRESS, b"\xc0\x00\x02"),
            RawOption(IpcpOptionType.IP_ADDRESS, b"\xc0\x00\x02\x02\x00"),
            RawOption(IpcpOptionType.PRIMARY_DNS, b""),
            RawOption(IpcpOptionType.IP_ADDRESSES, bytes(4)),
            RawOption(IpcpOptionType.IP_COMPRESSION_PROTOCOL, b"\x00"),
            RawOption(99, bytes(4)),
        ],
        ids=["addr-5", "addr-7", "dns-2", "addrs-6", "compress-3", "unknown"],
    )
    def test_decode_malformed(self, option: RawOption) -> None:
        assert drop_reason(decode_ipcp_option, option) == DropReason.BAD_OPTION

    def test_format_undecodable_option_shows_hex(self) -> None:
        assert format_ipcp_option(RawOption(IpcpOptionType.IP_ADDRESS, b"\x01")) == "<opt3 01>"


# --------------------------------------------------------------------- PAP (RFC 1334 §2.2)


class TestPap:
    def test_deconstruct_request(self) -> None:
        protocol, information = decode_frame(PAP_REQUEST_FRAME)
        packet = CpPacket.parse(information)
        assert protocol == PppProtocol.PAP
        assert (packet.code, packet.identifier) == (PapCode.AUTHENTICATE_REQUEST, 7)
        body = PAP_REQUEST_BODY.parse(packet.data)
        assert (body.peer_id, body.password) == (b"alice", b"s3cret")

    def test_request_declaration_common(self) -> None:
        common(PAP_REQUEST_BODY, b"\x05alice\x06s3cret", Container(peer_id=b"alice", password=b"s3cret"))

    def test_response_declaration_common(self) -> None:
        common(PAP_RESPONSE_BODY, b"\x08Login ok", Container(message=b"Login ok"))

    def test_parse_request(self) -> None:
        packet = CpPacket.parse(decode_frame(PAP_REQUEST_FRAME)[1])
        assert PapRequest.parse(packet.data) == PapRequest(b"alice", b"s3cret")

    def test_emit_request(self) -> None:
        body = PapRequest(b"alice", b"s3cret").emit()
        frame = encode_frame(PppProtocol.PAP, CpPacket(PapCode.AUTHENTICATE_REQUEST, 7, body).emit())
        assert frame == PAP_REQUEST_FRAME

    def test_parse_ack(self) -> None:
        packet = CpPacket.parse(decode_frame(PAP_ACK_FRAME)[1])
        assert packet.code == PapCode.AUTHENTICATE_ACK
        assert PapResponse.parse(packet.data) == PapResponse(b"Login ok")

    def test_emit_ack(self) -> None:
        packet = CpPacket(PapCode.AUTHENTICATE_ACK, 7, PapResponse(b"Login ok").emit())
        assert encode_frame(PppProtocol.PAP, packet.emit()) == PAP_ACK_FRAME

    def test_empty_strings_round_trip(self) -> None:
        assert PapRequest(b"", b"").emit() == b"\x00\x00"
        assert PapRequest.parse(b"\x00\x00") == PapRequest(b"", b"")

    def test_response_without_body_is_an_empty_message(self) -> None:
        assert PapResponse.parse(b"") == PapResponse(b"")

    def test_response_message_truncated_to_255(self) -> None:
        body = PapResponse(b"x" * 300).emit()
        assert body[0] == 255 and len(body) == 256

    def test_request_longer_than_255_refused(self) -> None:
        with pytest.raises(ValueError):
            PapRequest(b"u" * 256, b"").emit()

    @pytest.mark.parametrize(
        "body",
        [b"\x05alic", b"\x05alice", b"\x05alice\x06s3cr", b"\x01"],
        ids=["peer-id-cut", "no-password", "password-cut", "peer-id-length-only"],
    )
    def test_parse_request_malformed(self, body: bytes) -> None:
        assert drop_reason(PapRequest.parse, body) == DropReason.BAD_LENGTH

    def test_parse_response_malformed(self) -> None:
        assert drop_reason(PapResponse.parse, b"\x08Login") == DropReason.BAD_LENGTH
