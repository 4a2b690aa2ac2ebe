"""read_pcapng on garbage: random bytes, truncated and corrupted captures raise ValueError and nothing else."""

from __future__ import annotations

import io
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack.drivers.pcap import CapturedPacket, Direction, LinkType, PcapngWriter, read_pcapng

SHB_TYPE = 0x0A0D0D0A
DIRECTIONS = st.sampled_from([None, Direction.INBOUND, Direction.OUTBOUND])
PACKETS = st.lists(
    st.tuples(
        st.integers(0, 2),  # interface
        st.floats(0, 4e9, allow_nan=False, allow_infinity=False),
        st.binary(max_size=80),
        DIRECTIONS,
    ),
    max_size=6,
)
SNAPLENS = st.sampled_from([0, 1, 16, 262144])


def read_or_value_error(data: bytes) -> list[CapturedPacket] | None:
    """The packets, or None when read_pcapng raised ValueError (any other exception fails the test)."""
    try:
        return read_pcapng(io.BytesIO(data))
    except ValueError:
        return None


def write_capture(snaplens: list[int], packets: list[tuple[int, float, bytes, Direction | None]]) -> bytes:
    stream = io.BytesIO()
    with PcapngWriter(stream, application="hypothesis") as writer:
        for index, snaplen in enumerate(snaplens):
            writer.add_interface(f"if{index}", (LinkType.PPP, LinkType.RAW_IPV4)[index % 2], snaplen=snaplen)
        for interface, timestamp, data, direction in packets:
            writer.write_packet(interface % len(snaplens), timestamp, data, direction)
    return stream.getvalue()


def block(block_type: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", block_type, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


@st.composite
def well_framed_garbage(draw: st.DrawFn) -> bytes:
    """An SHB, then blocks with correct framing but random bodies, so option and body parsing get exercised."""
    order = draw(st.sampled_from(["<", ">"]))
    shb_body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + draw(st.binary(max_size=24))
    blocks = [block(SHB_TYPE, shb_body, order)]
    for _ in range(draw(st.integers(0, 6))):
        block_type = draw(st.sampled_from([1, 6, 3, SHB_TYPE, 0x80000001]))
        body = draw(st.binary(max_size=64))
        if block_type == 6 and draw(st.booleans()):  # a plausible EPB header with random options after it
            body = struct.pack(order + "5I", draw(st.integers(0, 2)), 0, 0, 0, 0) + body
        blocks.append(block(block_type, body, order))
    return b"".join(blocks)


@settings(max_examples=500)
@given(data=st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    read_or_value_error(data)


@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_random_bytes_after_a_valid_section_header(data: bytes) -> None:
    read_or_value_error(write_capture([], []) + data)


@settings(max_examples=500)
@given(data=well_framed_garbage())
def test_well_framed_random_blocks(data: bytes) -> None:
    read_or_value_error(data)


@settings(max_examples=200)
@given(snaplens=st.lists(SNAPLENS, min_size=1, max_size=3), packets=PACKETS, cut=st.integers(0, 10_000))
def test_truncated_captures(
    snaplens: list[int], packets: list[tuple[int, float, bytes, Direction | None]], cut: int
) -> None:
    """A cut at a block boundary reads as the packets before it; anywhere else raises ValueError."""
    data = write_capture(snaplens, packets)
    full = read_pcapng(io.BytesIO(data))
    prefix = data[: cut % (len(data) + 1)]
    result = read_or_value_error(prefix)
    if result is not None:
        assert result == full[: len(result)]


def test_every_prefix_of_a_capture() -> None:
    data = write_capture([262144, 8], [(0, 1.5, b"\xff\x03\xc0\x21" * 5, Direction.INBOUND), (1, 2.0, b"abc", None)])
    boundaries = {0}
    offset = 0
    while offset < len(data):
        offset += struct.unpack_from("<I", data, offset + 4)[0]
        boundaries.add(offset)
    full = read_pcapng(io.BytesIO(data))
    for cut in range(len(data) + 1):
        result = read_or_value_error(data[:cut])
        if cut in boundaries and cut > 0:
            assert result is not None and result == full[: len(result)]
        else:
            assert result is None, cut


@settings(max_examples=300)
@given(
    snaplens=st.lists(SNAPLENS, min_size=1, max_size=3),
    packets=PACKETS,
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_corrupted_captures(
    snaplens: list[int], packets: list[tuple[int, float, bytes, Direction | None]], flips: list[tuple[int, int]]
) -> None:
    data = bytearray(write_capture(snaplens, packets))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    read_or_value_error(bytes(data))


@settings(max_examples=200)
@given(snaplens=st.lists(SNAPLENS, min_size=1, max_size=3), packets=PACKETS)
def test_round_trip(snaplens: list[int], packets: list[tuple[int, float, bytes, Direction | None]]) -> None:
    read = read_pcapng(io.BytesIO(write_capture(snaplens, packets)))
    assert len(read) == len(packets)
    for got, (interface, timestamp, data, direction) in zip(read, packets, strict=True):
        interface %= len(snaplens)
        snaplen = snaplens[interface]
        assert got.interface_id == interface and got.interface_name == f"if{interface}"
        assert got.data == (data[:snaplen] if snaplen else data) and got.original_length == len(data)
        assert got.direction == direction
        assert abs(got.timestamp - timestamp) <= 1e-6
