"""``wipstack.net.fragment``: splitting on output (RFC 791 §3.2), option copying, address classes."""

from __future__ import annotations

import pytest

from tests.unit.net.helpers import ip, join, parse, payload_of
from wipstack.net.fragment import copied_options, fragment, is_martian_source, is_multicast
from wipstack.wire.ipv4 import Ipv4Repr

SRC, DST = ip("10.0.0.1"), ip("10.0.0.2")

ROUTER_ALERT = b"\x94\x04\x00\x00"  # copied (type bit 0x80)
RECORD_ROUTE = b"\x07\x07\x04\x00\x00\x00\x00"  # not copied
SECURITY = b"\x82\x03\x00"  # copied, odd length


def header(**fields: object) -> Ipv4Repr:
    return Ipv4Repr(SRC, DST, 17, identification=0x55AA, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("mtu", [68, 100, 576, 1500])
@pytest.mark.parametrize("size", [9, 100, 1000, 8000])
def test_every_fragment_fits_and_offsets_are_multiples_of_8(mtu: int, size: int) -> None:
    data = payload_of(size)
    pieces = fragment(header(), data, mtu)
    for piece in pieces:
        h, payload = parse(piece)
        assert len(piece) <= mtu
        assert h.fragment_offset % 8 == 0
        assert h.identification == 0x55AA and h.protocol == 17 and h.ttl == 64
        if h.more_fragments:
            assert len(payload) % 8 == 0 and payload
    whole, joined = join(pieces)
    assert joined == data
    assert whole.fragment_offset == 0


def test_options_all_in_the_first_fragment_only_copied_ones_after() -> None:
    options = RECORD_ROUTE + b"\x01" + ROUTER_ALERT  # 12 octets: no padding needed
    pieces = fragment(header(options=options), payload_of(300), 100)
    first, *rest = (parse(p)[0] for p in pieces)
    assert first.options == options
    assert rest and all(h.options == ROUTER_ALERT for h in rest)
    assert all(len(p) <= 100 for p in pieces)
    assert join(pieces)[1] == payload_of(300)


def test_no_options_copied_means_plain_headers_after_the_first() -> None:
    pieces = fragment(header(options=RECORD_ROUTE + b"\x00"), payload_of(200), 68)
    assert parse(pieces[0])[0].header_len == 28
    assert all(parse(p)[0].header_len == 20 for p in pieces[1:])
    # the first fragment has a longer header, so it carries less data
    assert len(parse(pieces[0])[1]) == 40 and len(parse(pieces[1])[1]) == 48


def test_fragmenting_a_fragment_continues_its_offsets_and_keeps_more_fragments() -> None:
    # a router splits the middle fragment (offset 1480, MF) of a bigger datagram
    middle = header(more_fragments=True, fragment_offset=1480, dont_fragment=False)
    pieces = fragment(middle, payload_of(1480), 576)
    headers = [parse(p)[0] for p in pieces]
    assert headers[0].fragment_offset == 1480
    assert all(h.more_fragments for h in headers)  # the original had more after it
    offsets = [h.fragment_offset for h in headers]
    sizes = [len(parse(p)[1]) for p in pieces]
    assert offsets == [1480 + sum(sizes[:i]) for i in range(len(sizes))]
    assert sum(sizes) == 1480


def test_fragmenting_the_last_fragment_clears_more_fragments_only_at_the_end() -> None:
    last = header(fragment_offset=2960)
    headers = [parse(p)[0] for p in fragment(last, payload_of(1000), 300)]
    assert [h.more_fragments for h in headers] == [True] * (len(headers) - 1) + [False]


def test_mtu_too_small_for_the_header_is_refused() -> None:
    with pytest.raises(ValueError):
        fragment(header(options=bytes(40)), payload_of(100), 67)


@pytest.mark.parametrize(
    ("options", "copied"),
    [
        (b"", b""),
        (ROUTER_ALERT, ROUTER_ALERT),
        (RECORD_ROUTE, b""),
        (b"\x01\x01" + SECURITY + b"\x00\x94\x04\x00\x00", SECURITY),  # stops at End of Option List
        (RECORD_ROUTE + SECURITY + ROUTER_ALERT, SECURITY + ROUTER_ALERT),
        (b"\x94", b""),  # a type with no length octet
        (b"\x94\x00\x94\x04", b""),  # a length below 2 ends the walk
        (b"\x94\x09\x00", b"\x94\x09\x00"),  # a length past the end copies what is there, no crash
    ],
)
def test_copied_options(options: bytes, copied: bytes) -> None:
    assert copied_options(options) == copied


@pytest.mark.parametrize(
    ("addr", "martian", "multicast"),
    [
        ("0.0.0.0", True, False),
        ("0.1.2.3", True, False),
        ("127.0.0.1", True, False),
        ("224.0.0.1", True, True),
        ("239.255.255.255", True, True),
        ("240.0.0.1", True, False),
        ("255.255.255.255", True, False),
        ("10.0.0.1", False, False),
        ("192.0.2.1", False, False),
        ("223.255.255.255", False, False),
    ],
)
def test_address_classes(addr: str, martian: bool, multicast: bool) -> None:
    assert is_martian_source(ip(addr)) is martian
    assert is_multicast(ip(addr)) is multicast
