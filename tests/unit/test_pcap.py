"""pcapng capture (draft-tuexen-opsawg-pcapng): golden bytes, round trips, snaplen, threads, tshark."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from wipstack.drivers.pcap import (
    CapturedPacket,
    Direction,
    LinkType,
    PcapngWriter,
    PcapTap,
    read_pcapng,
)

LCP_CONF_REQ = bytes.fromhex("ff03c0210101000a050612345678")  # code 1, id 1, length 10, magic-number option
IPCP_CONF_REQ = bytes.fromhex("ff0380210101000a0306c0000201")  # code 1, id 1, length 10, IP-address 192.0.2.1
T0 = 1700000000.123456  # 1700000000123456 us = 0x00060A24_18202240

GOLDEN = bytes.fromhex(
    # Section Header Block (§4.1)
    "0a0d0d0a 2c000000"  # block type, total length 44
    "4d3c2b1a 0100 0000"  # byte-order magic, major 1, minor 0
    "ffffffffffffffff"  # section length -1 (not given)
    "0400 0800 776970737461636b"  # shb_userappl, 8 bytes, "wipstack"
    "0000 0000"  # opt_endofopt
    "2c000000"  # total length again
    # Interface Description Block (§4.2)
    "01000000 28000000"  # block type 1, total length 40
    "0900 0000 00000400"  # LINKTYPE_PPP, reserved, snaplen 262144
    "0200 0400 70707030"  # if_name, 4 bytes, "ppp0"
    "0900 0100 06000000"  # if_tsresol, 1 byte, 6 (microseconds), padding
    "0000 0000"  # opt_endofopt
    "28000000"
    # Enhanced Packet Block (§4.3)
    "06000000 3c000000"  # block type 6, total length 60
    "00000000"  # interface id 0
    "240a0600 40222018"  # timestamp high, low
    "0e000000 0e000000"  # captured length 14, original length 14
    "ff03c0210101000a050612345678 0000"  # packet data padded to 32 bits
    "0200 0400 02000000"  # epb_flags, 4 bytes, direction outbound (§4.3.1)
    "0000 0000"  # opt_endofopt
    "3c000000"
)


def ones_complement_checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum, written out again so the tests do not trust wipstack's."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_packet(protocol: int, source: str, destination: str, payload: bytes, ident: int = 0x1234) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        0x4000,  # DF
        64,
        protocol,
        0,
        bytes(int(part) for part in source.split(".")),
        bytes(int(part) for part in destination.split(".")),
    )
    checksum = ones_complement_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def icmp_echo_request(source: str, destination: str) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 7) + b"wipstack ping"
    checksum = ones_complement_checksum(body)
    return ipv4_packet(1, source, destination, body[:2] + struct.pack("!H", checksum) + body[4:])


def udp_datagram(source: str, destination: str, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    pseudo = bytes(int(p) for p in source.split(".")) + bytes(int(p) for p in destination.split("."))
    pseudo += struct.pack("!BBH", 0, 17, length)
    checksum = ones_complement_checksum(pseudo + header + payload) or 0xFFFF  # RFC 768: 0 is sent as all ones
    return ipv4_packet(17, source, destination, header[:6] + struct.pack("!H", checksum) + payload, ident=0x1235)


ICMP_ECHO = icmp_echo_request("192.0.2.1", "192.0.2.2")
UDP_DATAGRAM = udp_datagram("192.0.2.2", "192.0.2.1", 49152, 49153, b"hello pcapng")


def capture(build: Callable[[PcapngWriter], object]) -> bytes:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    build(writer)
    writer.close()
    return stream.getvalue()


def test_golden_bytes_field_by_field() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    assert writer.add_interface("ppp0", LinkType.PPP) == 0
    writer.write_packet(0, T0, LCP_CONF_REQ, Direction.OUTBOUND)
    data = stream.getvalue()

    shb_type, shb_len, magic, major, minor, section_length = struct.unpack_from("<IIIHHq", data, 0)
    assert (shb_type, shb_len, magic, major, minor, section_length) == (0x0A0D0D0A, 44, 0x1A2B3C4D, 1, 0, -1)
    assert struct.unpack_from("<I", data, shb_len - 4)[0] == shb_len
    idb = data[shb_len:]
    idb_type, idb_len, link_type, reserved, snaplen = struct.unpack_from("<IIHHI", idb)
    assert (idb_type, idb_len, link_type, reserved, snaplen) == (1, 40, 9, 0, 262144)
    epb = idb[idb_len:]
    epb_type, epb_len, interface_id, high, low, captured, original = struct.unpack_from("<7I", epb)
    assert (epb_type, epb_len, interface_id, captured, original) == (6, 60, 0, 14, 14)
    assert (high << 32 | low) == 1700000000123456
    assert epb[28:42] == LCP_CONF_REQ
    assert len(data) == shb_len + idb_len + epb_len
    assert all(length % 4 == 0 for length in (shb_len, idb_len, epb_len))
    assert data == GOLDEN
    assert writer.packets_written == 1


def test_round_trip() -> None:
    def build(writer: PcapngWriter) -> None:
        ppp = writer.add_interface("ppp0", LinkType.PPP, description="PPP over /dev/ttyS0")
        writer.write_packet(ppp, T0, LCP_CONF_REQ, Direction.OUTBOUND)
        writer.write_packet(ppp, T0 + 0.5, bytearray(IPCP_CONF_REQ), Direction.INBOUND)
        writer.write_packet(ppp, T0 + 1, memoryview(b"xx" + LCP_CONF_REQ)[2:])

    packets = read_pcapng(io.BytesIO(capture(build)))
    assert packets == [
        CapturedPacket(0, "ppp0", 9, T0, LCP_CONF_REQ, 14, Direction.OUTBOUND),
        CapturedPacket(0, "ppp0", 9, T0 + 0.5, IPCP_CONF_REQ, 14, Direction.INBOUND),
        CapturedPacket(0, "ppp0", 9, T0 + 1, LCP_CONF_REQ, 14, None),
    ]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 63, 64, 65])
def test_round_trip_every_padding(size: int) -> None:
    payload = bytes(range(size))

    def build(writer: PcapngWriter) -> None:
        writer.write_packet(writer.add_interface("x", LinkType.RAW_IPV4), 1.0, payload)

    packets = read_pcapng(io.BytesIO(capture(build)))
    assert [(p.data, p.original_length, p.timestamp) for p in packets] == [(payload, size, 1.0)]


def test_truncation_at_snaplen_keeps_original_length() -> None:
    def build(writer: PcapngWriter) -> None:
        writer.add_interface("short", LinkType.RAW_IPV4, snaplen=20)
        writer.add_interface("unlimited", LinkType.RAW_IPV4, snaplen=0)
        writer.write_packet(0, 2.0, UDP_DATAGRAM)
        writer.write_packet(0, 2.0, UDP_DATAGRAM[:20])
        writer.write_packet(1, 2.0, UDP_DATAGRAM * 100)

    first, exact, unlimited = read_pcapng(io.BytesIO(capture(build)))
    assert (first.data, first.original_length) == (UDP_DATAGRAM[:20], len(UDP_DATAGRAM))
    assert (exact.data, exact.original_length) == (UDP_DATAGRAM[:20], 20)
    assert (unlimited.data, unlimited.original_length) == (UDP_DATAGRAM * 100, len(UDP_DATAGRAM) * 100)


def test_two_interfaces() -> None:
    def build(writer: PcapngWriter) -> None:
        assert writer.add_interface("ppp0", LinkType.PPP) == 0
        writer.write_packet(0, 10.0, LCP_CONF_REQ, Direction.OUTBOUND)
        assert writer.add_interface("ip0", LinkType.RAW_IPV4) == 1
        writer.write_packet(1, 11.0, ICMP_ECHO, Direction.INBOUND)
        writer.write_packet(0, 12.0, IPCP_CONF_REQ, Direction.INBOUND)

    packets = read_pcapng(io.BytesIO(capture(build)))
    assert [(p.interface_id, p.interface_name, p.link_type, p.data) for p in packets] == [
        (0, "ppp0", LinkType.PPP, LCP_CONF_REQ),
        (1, "ip0", LinkType.RAW_IPV4, ICMP_ECHO),
        (0, "ppp0", LinkType.PPP, IPCP_CONF_REQ),
    ]


def test_tap_uses_its_clock_and_interface() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream, application="test")
    writer.add_interface("ppp0", LinkType.PPP)
    ip = writer.add_interface("ip0", LinkType.RAW_IPV4)
    ticks = iter([100.25, 101.5])
    tap = PcapTap(writer, ip, clock=lambda: next(ticks))
    tap(Direction.INBOUND, ICMP_ECHO)
    tap(Direction.OUTBOUND, UDP_DATAGRAM)
    packets = read_pcapng(io.BytesIO(stream.getvalue()))
    assert [(p.interface_id, p.timestamp, p.direction) for p in packets] == [
        (1, 100.25, Direction.INBOUND),
        (1, 101.5, Direction.OUTBOUND),
    ]
    assert writer.packets_written == 2


def test_open_owns_the_file(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcapng"
    with PcapngWriter.open(path) as writer:
        PcapTap(writer, writer.add_interface("ppp0", LinkType.PPP))(Direction.OUTBOUND, LCP_CONF_REQ)
    assert writer._stream.closed
    with pytest.raises(ValueError, match="closed"):
        writer.write_packet(0, 1.0, b"")
    with path.open("rb") as stream:
        assert [p.data for p in read_pcapng(stream)] == [LCP_CONF_REQ]


def test_close_leaves_a_borrowed_stream_open() -> None:
    stream = io.BytesIO()
    with PcapngWriter(stream):
        pass
    assert not stream.closed
    assert read_pcapng(io.BytesIO(stream.getvalue())) == []


@pytest.mark.parametrize("timestamp", [-1.0, float("nan"), float("inf"), 2.0**64])
def test_bad_timestamps_are_refused(timestamp: float) -> None:
    writer = PcapngWriter(io.BytesIO())
    writer.add_interface("x", LinkType.PPP)
    with pytest.raises(ValueError, match="timestamp"):
        writer.write_packet(0, timestamp, b"")
    assert writer.packets_written == 0


def test_unknown_interface_and_bad_snaplen_are_refused() -> None:
    writer = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match="no interface 0"):
        writer.write_packet(0, 1.0, b"")
    with pytest.raises(ValueError, match="snaplen"):
        writer.add_interface("x", LinkType.PPP, snaplen=-1)


def test_threads_share_a_writer() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    count = 300

    def driver(name: str, link_type: LinkType, frame: bytes) -> None:
        tap = PcapTap(writer, writer.add_interface(name, link_type), clock=lambda: T0)
        for _ in range(count):
            tap(Direction.OUTBOUND, frame)

    threads = [
        threading.Thread(target=driver, args=("ppp0", LinkType.PPP, LCP_CONF_REQ)),
        threading.Thread(target=driver, args=("ip0", LinkType.RAW_IPV4, UDP_DATAGRAM)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    packets = read_pcapng(io.BytesIO(stream.getvalue()))
    assert writer.packets_written == len(packets) == 2 * count
    for packet in packets:
        assert packet.data == (LCP_CONF_REQ if packet.interface_name == "ppp0" else UDP_DATAGRAM)


def test_reader_accepts_big_endian_and_other_resolutions() -> None:
    """A big-endian section with if_tsresol 2^-10 and if_tsoffset, as another tool might write."""

    def block(block_type: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack(">II", block_type, len(body) + 12) + body + struct.pack(">I", len(body) + 12)

    shb = block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = struct.pack(">HH", 9, 1) + b"\x8a\0\0\0" + struct.pack(">HHq", 14, 8, 1000) + bytes(4)
    idb = block(1, struct.pack(">HHI", 228, 0, 0) + options)
    flags = struct.pack(">HHI", 2, 4, 1) + bytes(4)
    epb = block(6, struct.pack(">5I", 0, 0, 1 << 9, 4, 4) + b"abcd" + flags)
    (packet,) = read_pcapng(io.BytesIO(shb + idb + epb))
    assert (packet.timestamp, packet.data, packet.direction, packet.link_type) == (1000.5, b"abcd", 1, 228)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (GOLDEN[:10], "truncated block header"),
        (GOLDEN[:100], "truncated"),
        (GOLDEN[44:], "does not start with a section header"),
        (GOLDEN[:8] + b"\0\0\0\0" + GOLDEN[12:], "byte-order magic"),
        (GOLDEN[:44] + b"\x01\0\0\0\x0d\0\0\0" + GOLDEN[52:], "multiple of 4"),
        (GOLDEN[:80] + b"\x29" + GOLDEN[81:], "trailing length"),
        (GOLDEN[:92] + b"\x05" + GOLDEN[93:], "interface 5"),
        (GOLDEN[:132] + b"\x03" + GOLDEN[133:], "direction"),
    ],
)
def test_malformed_files_raise_value_error(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        read_pcapng(io.BytesIO(data))


# --------------------------------------------------------------------------
# interoperability: Wireshark's tshark must decode what we write
# --------------------------------------------------------------------------

TSHARK_FIELDS = (
    "frame.interface_id",
    "frame.interface_name",
    "frame.packet_flags_direction",
    "_ws.col.Protocol",
    "frame.len",
    "frame.cap_len",
)


def tshark_or_skip() -> str:
    tshark = shutil.which("tshark")
    if tshark is not None:
        return tshark
    reason = "tshark is not on PATH (Debian package: tshark)"
    if os.environ.get("WIPSTACK_REQUIRE_INTEROP") == "1":
        pytest.fail(f"{reason} (WIPSTACK_REQUIRE_INTEROP=1)", pytrace=False)
    pytest.skip(reason)


def run_tshark(tshark: str, path: Path, tmp_path: Path, *args: str) -> list[list[str]]:
    """Rows of tab-separated fields; a private config dir keeps user preferences out of it."""
    config = tmp_path / "wireshark-config"
    config.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(tmp_path), "WIRESHARK_CONFIG_DIR": str(config), "XDG_CONFIG_HOME": str(config)}
    result = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "separator=/t", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def fields(*names: str) -> list[str]:
    return [arg for name in names for arg in ("-e", name)]


@pytest.fixture(scope="module")
def interop_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pcap") / "interop.pcapng"
    with PcapngWriter.open(path) as writer:
        ppp = writer.add_interface("ppp0", LinkType.PPP, description="wipstack PPP link")
        ip = writer.add_interface("wip0", LinkType.RAW_IPV4)
        hdlc = writer.add_interface("hdlc0", LinkType.PPP_HDLC, snaplen=8)
        writer.write_packet(ppp, T0, LCP_CONF_REQ, Direction.OUTBOUND)
        writer.write_packet(ppp, T0 + 0.25, IPCP_CONF_REQ, Direction.INBOUND)
        writer.write_packet(ip, T0 + 0.5, ICMP_ECHO, Direction.OUTBOUND)
        writer.write_packet(ip, T0 + 0.75, UDP_DATAGRAM, Direction.INBOUND)
        writer.write_packet(hdlc, T0 + 1, LCP_CONF_REQ)
    return path


def test_tshark_decodes_every_frame_on_its_interface(interop_capture: Path, tmp_path: Path) -> None:
    rows = run_tshark(tshark_or_skip(), interop_capture, tmp_path, *fields(*TSHARK_FIELDS))
    assert rows == [
        ["0", "ppp0", "0x00000002", "PPP LCP", "14", "14"],
        ["0", "ppp0", "0x00000001", "PPP IPCP", "14", "14"],
        ["1", "wip0", "0x00000002", "ICMP", str(len(ICMP_ECHO)), str(len(ICMP_ECHO))],
        ["1", "wip0", "0x00000001", "UDP", str(len(UDP_DATAGRAM)), str(len(UDP_DATAGRAM))],
        ["2", "hdlc0", "", "PPP LCP", "14", "8"],
    ]


PPP_FIELDS = (
    "frame.number",
    "frame.interface_name",
    "ppp.protocol",
    "ppp.code",
    "ppp.identifier",
    "lcp.opt.magic_number",
    "ipcp.opt.ip_address",
)


@pytest.mark.parametrize(
    ("display_filter", "expected"),
    [
        # frame 5 is cut at its interface's snaplen of 8 bytes: protocol, code and id survive
        ("lcp", [["1", "ppp0", "0xc021", "1", "1", "0x12345678", ""], ["5", "hdlc0", "0xc021", "1", "1", "", ""]]),
        ("ipcp", [["2", "ppp0", "0x8021", "1", "1", "", "192.0.2.1"]]),
    ],
)
def test_tshark_filters_ppp(
    interop_capture: Path, tmp_path: Path, display_filter: str, expected: list[list[str]]
) -> None:
    rows = run_tshark(tshark_or_skip(), interop_capture, tmp_path, "-Y", display_filter, *fields(*PPP_FIELDS))
    assert rows == expected


def test_tshark_checks_our_hand_built_ip(interop_capture: Path, tmp_path: Path) -> None:
    tshark = tshark_or_skip()
    prefs = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]
    icmp = run_tshark(
        tshark,
        interop_capture,
        tmp_path,
        *prefs,
        "-Y",
        "icmp",
        *fields("frame.interface_name", "ip.src", "ip.dst", "ip.checksum.status", "icmp.type", "icmp.checksum.status"),
    )
    assert icmp == [["wip0", "192.0.2.1", "192.0.2.2", "1", "8", "1"]]  # status 1 = good
    udp = run_tshark(
        tshark,
        interop_capture,
        tmp_path,
        *prefs,
        "-Y",
        "udp",
        *fields("frame.interface_name", "ip.checksum.status", "udp.srcport", "udp.dstport", "udp.checksum.status"),
    )
    assert udp == [["wip0", "1", "49152", "49153", "1"]]
