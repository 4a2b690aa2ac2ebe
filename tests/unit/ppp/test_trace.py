"""pppd-style rendering of control packets (``wipstack.ppp.trace``).

The log lines are the product here, so the expected strings are golden: they are what
pppd's ``debug`` log prints for the same packets.
"""

from __future__ import annotations

import random

import pytest

from wipstack.accel import hdlc_encode
from wipstack.ppp.config import PapConfig, PppConfig
from wipstack.ppp.session import PppSession
from wipstack.ppp.trace import format_packet
from wipstack.wire.cp import CpCode, CpPacket, RawOption, emit_options
from wipstack.wire.pap import PapCode, PapRequest, PapResponse
from wipstack.wire.ppp import PppProtocol

PPPD_LCP_PACKET = bytes.fromhex("01010014 020600000000 050620b67ba5 0702 0802")
IPCP_PACKET = bytes.fromhex("01010010 0206002d0f01 0306c0000202")


def cp(code: int, identifier: int, data: bytes = b"") -> bytes:
    return CpPacket(code, identifier, data).emit()


@pytest.mark.parametrize(
    ("protocol", "information", "line"),
    [
        (
            PppProtocol.LCP,
            PPPD_LCP_PACKET,
            "[LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x20b67ba5> <pcomp> <accomp>]",
        ),
        (
            PppProtocol.LCP,
            cp(CpCode.CONFIGURE_NAK, 0x2, bytes.fromhex("010405dc 0304c023")),
            "[LCP ConfNak id=0x2 <mru 1500> <auth pap>]",
        ),
        (PppProtocol.LCP, cp(CpCode.CONFIGURE_ACK, 0xFF), "[LCP ConfAck id=0xff]"),
        (
            PppProtocol.IPCP,
            IPCP_PACKET,
            "[IPCP ConfReq id=0x1 <compress VJ 0f 01> <addr 192.0.2.2>]",
        ),
        (
            PppProtocol.IPCP,
            cp(CpCode.CONFIGURE_NAK, 0x3, bytes.fromhex("0306c0000202 8106c6336435 8306c6336436")),
            "[IPCP ConfNak id=0x3 <addr 192.0.2.2> <ms-dns1 198.51.100.53> <ms-dns2 198.51.100.54>]",
        ),
        (
            PppProtocol.LCP,
            cp(CpCode.TERMINATE_REQUEST, 0x2, b"User request"),
            '[LCP TermReq id=0x2 "User request"]',
        ),
        (PppProtocol.LCP, cp(CpCode.TERMINATE_ACK, 0x2), "[LCP TermAck id=0x2]"),
        (
            PppProtocol.LCP,
            cp(CpCode.ECHO_REQUEST, 0x0, bytes.fromhex("20b67ba5")),
            "[LCP EchoReq id=0x0 magic=0x20b67ba5]",
        ),
        (
            PppProtocol.LCP,
            cp(CpCode.ECHO_REPLY, 0x7, bytes.fromhex("0badcafe 0102")),
            "[LCP EchoRep id=0x7 magic=0xbadcafe 01 02]",
        ),
        (
            PppProtocol.LCP,
            cp(CpCode.PROTOCOL_REJECT, 0x4, bytes.fromhex("80fd 01010004")),
            "[LCP ProtRej id=0x4 80 fd 01 01 00 04]",
        ),
        (PppProtocol.LCP, cp(0x0C, 0x1, b"\x01\x02\x03"), "[LCP code=0xc id=0x1 01 02 03]"),
        (
            PppProtocol.PAP,
            cp(PapCode.AUTHENTICATE_REQUEST, 0x1, PapRequest(b"alice", b"s3cret").emit()),
            '[PAP AuthReq id=0x1 user="alice" password=<hidden>]',
        ),
        (
            PppProtocol.PAP,
            cp(PapCode.AUTHENTICATE_ACK, 0x1, PapResponse(b"Login ok").emit()),
            '[PAP AuthAck id=0x1 "Login ok"]',
        ),
        (
            PppProtocol.PAP,
            cp(PapCode.AUTHENTICATE_NAK, 0x1, PapResponse(b"Login incorrect").emit()),
            '[PAP AuthNak id=0x1 "Login incorrect"]',
        ),
        (PppProtocol.IPV4, bytes(20), "[IP 20 octets]"),
    ],
    ids=[
        "lcp-confreq-pppd",
        "lcp-confnak",
        "lcp-confack-empty",
        "ipcp-confreq-vj",
        "ipcp-confnak-dns",
        "termreq",
        "termack",
        "echoreq",
        "echorep-data",
        "protrej",
        "unknown-code",
        "pap-authreq",
        "pap-authack",
        "pap-authnak",
        "ip",
    ],
)
def test_format_packet_golden(protocol: int, information: bytes, line: str) -> None:
    assert format_packet(protocol, information) == line


def test_password_never_appears() -> None:
    line = format_packet(PppProtocol.PAP, cp(1, 1, PapRequest(b"alice", b"hunter2").emit()))
    assert "hunter2" not in line


def test_unknown_options_rendered_with_type_and_data() -> None:
    line = format_packet(PppProtocol.LCP, cp(CpCode.CONFIGURE_REJECT, 5, emit_options([RawOption(13, b"\x06")])))
    assert line == "[LCP ConfRej id=0x5 <opt13 06>]"


def test_unknown_control_protocol_options_rendered_generically() -> None:
    line = format_packet(PppProtocol.CCP, cp(CpCode.CONFIGURE_REQUEST, 1, bytes.fromhex("1806 0102 0304 1102")))
    assert line == "[CCP ConfReq id=0x1 <opt24 01 02 03 04> <opt17>]"


def test_padding_beyond_length_not_rendered() -> None:
    assert format_packet(PppProtocol.LCP, cp(CpCode.TERMINATE_ACK, 2) + b"\x00\x00") == "[LCP TermAck id=0x2]"


@pytest.mark.parametrize(
    ("protocol", "information"),
    [
        (PppProtocol.LCP, b"\x01\x01\x00"),
        (PppProtocol.LCP, b"\x01\x01\x00\x40"),
        (PppProtocol.IPCP, b""),
        (PppProtocol.PAP, b"\x01"),
    ],
    ids=["short", "length-overrun", "empty", "pap-short"],
)
def test_malformed_packets_rendered_not_raised(protocol: int, information: bytes) -> None:
    assert "malformed" in format_packet(protocol, information)


def test_malformed_options_rendered_as_hex() -> None:
    line = format_packet(PppProtocol.LCP, cp(CpCode.CONFIGURE_REQUEST, 1, b"\x01\x09\x05"))
    assert line == "[LCP ConfReq id=0x1 01 09 05]"


def test_malformed_pap_body_rendered_as_hex() -> None:
    assert format_packet(PppProtocol.PAP, cp(1, 3, b"\x05ab")) == "[PAP AuthReq id=0x3 05 61 62]"


def test_long_data_is_cut_at_32_octets() -> None:
    line = format_packet(PppProtocol.LCP, cp(0x0C, 1, bytes(100)))
    assert line == "[LCP code=0xc id=0x1 " + " ".join(["00"] * 32) + "]"


def test_session_tracer_logs_sent_and_received_control_packets() -> None:
    lines: list[str] = []
    session = PppSession(PppConfig(pap=PapConfig(username="alice")), random.Random(3), tracer=lines.append)
    session.open(0.0)
    assert len(lines) == 1 and lines[0].startswith("sent [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x")
    session.receive_bytes(hdlc_encode(b"\xff\x03\xc0\x21" + cp(CpCode.TERMINATE_REQUEST, 9, b"bye")), 1.0)
    assert lines[1:] == ['rcvd [LCP TermReq id=0x9 "bye"]', "sent [LCP TermAck id=0x9]"]


def test_session_tracer_does_not_log_ip_datagrams() -> None:
    lines: list[str] = []
    session = PppSession(PppConfig(), random.Random(3), tracer=lines.append)
    session.open(0.0)
    session.receive_bytes(hdlc_encode(b"\xff\x03\x00\x21" + bytes(20)), 1.0)
    assert not any(line.startswith("rcvd [IP") for line in lines)
