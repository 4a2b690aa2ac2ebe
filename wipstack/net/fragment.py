"""IPv4 fragmentation on output (RFC 791 §3.2, RFC 1812 §5.2.6) and address classes (RFC 1122 §3.2.1.3)."""

from __future__ import annotations

from dataclasses import replace

from wipstack.wire.ipv4 import MIN_HEADER_LEN, Ipv4Repr

Buffer = bytes | bytearray | memoryview

LIMITED_BROADCAST = b"\xff\xff\xff\xff"
UNSPECIFIED = b"\0\0\0\0"


def is_multicast(addr: bytes) -> bool:
    """224.0.0.0/4 (RFC 1112)."""
    return addr[0] & 0xF0 == 0xE0


def is_martian_source(addr: bytes) -> bool:
    """A source no single host can have: 0/8, 127/8, multicast, class E, broadcast (RFC 1812 §5.3.7)."""
    first = addr[0]
    return first == 0 or first == 127 or first >= 224


def is_martian_destination(addr: bytes) -> bool:
    """A destination never forwarded: 0/8, 127/8, class E and 255.255.255.255 (RFC 1812 §5.3.7)."""
    first = addr[0]
    return first == 0 or first == 127 or first >= 240


def copied_options(options: bytes) -> bytes:
    """The options that RFC 791 §3.1 marks "copied" (type bit 0x80), for fragments after the first."""
    out = bytearray()
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:  # End of Option List
            break
        if kind == 1:  # No Operation
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break  # malformed length: copy nothing more (the first fragment keeps them all)
        length = options[i + 1]
        if kind & 0x80:
            out += options[i : i + length]
        i += length
    return bytes(out)


def fragment(header: Ipv4Repr, payload: Buffer, mtu: int) -> list[bytes]:
    """Split one datagram into fragments of at most ``mtu`` octets.

    ``header`` may itself describe a fragment (when forwarding): offsets continue from it and
    the last piece keeps its More-Fragments flag.  The caller has checked Don't Fragment.
    """
    view = memoryview(payload)
    first_hlen = header.header_len
    rest_header = replace(header, options=copied_options(header.options)) if header.options else header
    rest_hlen = rest_header.header_len
    if mtu < first_hlen + 8 or mtu < rest_hlen + 8:
        raise ValueError(f"MTU {mtu} cannot carry 8 data octets behind a {first_hlen}-octet header")
    packets = []
    base = header.fragment_offset
    position = 0
    total = len(view)
    while True:
        current = header if position == 0 else rest_header
        room = (mtu - current.header_len) & ~7  # RFC 791: fragment data is a multiple of 8 octets
        end = min(total, position + room)
        last = end == total
        piece = replace(current, fragment_offset=base + position, more_fragments=header.more_fragments or not last)
        packets.append(piece.emit(view[position:end]))
        if last:
            return packets
        position = end


__all__ = [
    "MIN_HEADER_LEN",
    "fragment",
    "copied_options",
    "is_multicast",
    "is_martian_source",
    "is_martian_destination",
]
