"""Differential tests: the Cython hot paths must behave exactly like their Python twins.

Same results, same counters, same exception types, for random data, odd lengths,
``memoryview`` slices at random offsets, random initial values, random feed splits and
random setting changes.  Every test needs both implementations and is skipped (with the
reason) when the C extensions are not built or ``WIPSTACK_NO_EXTENSIONS`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack._py.hdlc import hdlc_encode

ACCMS = st.one_of(st.sampled_from([0, 0xFFFFFFFF, 0x000A0000, 1 << 0x11 | 1 << 0x13]), st.integers(0, 0xFFFFFFFF))
BAD_INTS = st.sampled_from([-1, 1 << 32, 1 << 64, 1.5, None, "16"])


def outcome(function: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """Result or exception type, so both implementations can be compared on errors too."""
    try:
        return ("ok", function(*args))
    except Exception as exc:  # noqa: BLE001 - the type is what we compare
        return ("raised", type(exc))


def construction(cls: Callable[..., Any], *args: Any) -> str | type:
    """ "ok" or the exception type raised by a constructor."""
    kind, value = outcome(cls, *args)
    return "ok" if kind == "ok" else value


@st.composite
def buffers(draw: st.DrawFn, max_size: int = 300) -> bytes | bytearray | memoryview:
    """Random bytes as bytes, bytearray, or a memoryview slice at a random offset."""
    data = draw(st.one_of(st.binary(max_size=max_size), st.sampled_from([b"\xff" * 64, b"\x7d\x7e" * 9])))
    kind = draw(st.sampled_from(["bytes", "bytearray", "view"]))
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    prefix = draw(st.binary(max_size=9))
    suffix = draw(st.binary(max_size=9))
    return memoryview(prefix + data + suffix)[len(prefix) : len(prefix) + len(data)]


@settings(max_examples=400)
@given(data=buffers(), initial=st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 0xFFFF, 0xFFFE])))
def test_checksum_equivalent(py_impl: SimpleNamespace, c_impl: SimpleNamespace, data: Any, initial: int) -> None:
    for name in ("inet_sum", "inet_checksum"):
        assert getattr(c_impl, name)(data, initial) == getattr(py_impl, name)(data, initial)
        assert getattr(c_impl, name)(data) == getattr(py_impl, name)(data)


@given(data=buffers(max_size=8), initial=BAD_INTS)
def test_checksum_errors_equivalent(py_impl: SimpleNamespace, c_impl: SimpleNamespace, data: Any, initial: Any) -> None:
    assert outcome(c_impl.inet_sum, data, initial) == outcome(py_impl.inet_sum, data, initial)
    assert outcome(c_impl.inet_sum, "text", 0) == outcome(py_impl.inet_sum, "text", 0)
    strided = memoryview(bytes(data))[::2]
    assert outcome(c_impl.inet_checksum, strided) == outcome(py_impl.inet_checksum, strided)


@given(
    src=st.binary(min_size=3, max_size=5),
    dst=st.binary(min_size=3, max_size=5),
    protocol=st.integers(-2, 300),
    length=st.integers(-2, 0x10002),
)
def test_pseudo_header_equivalent(
    py_impl: SimpleNamespace, c_impl: SimpleNamespace, src: bytes, dst: bytes, protocol: int, length: int
) -> None:
    args = (src, dst, protocol, length)
    assert outcome(c_impl.pseudo_header_sum, *args) == outcome(py_impl.pseudo_header_sum, *args)


@settings(max_examples=400)
@given(data=buffers(), initial16=st.integers(0, 0xFFFF), initial32=st.integers(0, 0xFFFFFFFF))
def test_fcs_equivalent(
    py_impl: SimpleNamespace, c_impl: SimpleNamespace, data: Any, initial16: int, initial32: int
) -> None:
    assert c_impl.fcs16(data) == py_impl.fcs16(data)
    assert c_impl.fcs16(data, initial16) == py_impl.fcs16(data, initial16)
    assert c_impl.fcs32(data) == py_impl.fcs32(data)
    assert c_impl.fcs32(data, initial32) == py_impl.fcs32(data, initial32)


@given(data=buffers(max_size=8), initial=BAD_INTS)
def test_fcs_errors_equivalent(py_impl: SimpleNamespace, c_impl: SimpleNamespace, data: Any, initial: Any) -> None:
    for name in ("fcs16", "fcs32"):
        assert outcome(getattr(c_impl, name), data, initial) == outcome(getattr(py_impl, name), data, initial)
        strided = memoryview(bytes(data))[::2]
        assert outcome(getattr(c_impl, name), strided) == outcome(getattr(py_impl, name), strided)


@settings(max_examples=400)
@given(data=buffers(), accm=ACCMS, fcs_bits=st.sampled_from([16, 32]))
def test_hdlc_codec_equivalent(
    py_impl: SimpleNamespace, c_impl: SimpleNamespace, data: Any, accm: int, fcs_bits: int
) -> None:
    assert c_impl.hdlc_escape(data, accm) == py_impl.hdlc_escape(data, accm)
    assert c_impl.hdlc_unescape(data) == py_impl.hdlc_unescape(data)
    assert c_impl.hdlc_encode(data, accm, fcs_bits) == py_impl.hdlc_encode(data, accm, fcs_bits)


@given(data=st.lists(st.sampled_from([0x7D, 0x7E, 0x5D, 0x5E, 0x20, 0x00, 0x41]), max_size=40).map(bytes))
def test_hdlc_unescape_escape_heavy_equivalent(py_impl: SimpleNamespace, c_impl: SimpleNamespace, data: bytes) -> None:
    assert c_impl.hdlc_unescape(data) == py_impl.hdlc_unescape(data)


@given(accm=BAD_INTS | ACCMS, fcs_bits=st.sampled_from([16, 32, 0, 8, -16, None]))
def test_hdlc_errors_equivalent(py_impl: SimpleNamespace, c_impl: SimpleNamespace, accm: Any, fcs_bits: Any) -> None:
    frame = b"\xff\x03\xc0\x21"
    assert outcome(c_impl.hdlc_escape, frame, accm) == outcome(py_impl.hdlc_escape, frame, accm)
    assert outcome(c_impl.hdlc_encode, frame, accm, fcs_bits) == outcome(py_impl.hdlc_encode, frame, accm, fcs_bits)
    assert construction(c_impl.HdlcDeframer, 1508, accm, fcs_bits) == construction(
        py_impl.HdlcDeframer, 1508, accm, fcs_bits
    )


@st.composite
def framed_streams(draw: st.DrawFn) -> bytes:
    """Valid, corrupted, aborted, oversized and garbage frames, concatenated."""
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["valid", "corrupt", "abort", "garbage", "flags", "long", "noise"]))
        payload = draw(st.binary(max_size=120))
        accm = draw(ACCMS)
        fcs_bits = draw(st.sampled_from([16, 32]))
        encoded = bytearray(hdlc_encode(payload, accm, fcs_bits))
        if kind == "corrupt" and len(encoded) > 2:
            position = draw(st.integers(1, len(encoded) - 2))
            encoded[position] ^= draw(st.integers(1, 255))
        elif kind == "abort":
            encoded[-1:] = b"\x7d\x7e"
        elif kind == "garbage":
            encoded = bytearray(draw(st.binary(max_size=60)))
        elif kind == "flags":
            encoded = bytearray(b"\x7e" * draw(st.integers(1, 4)))
        elif kind == "long":
            encoded = bytearray(hdlc_encode(payload * 20, accm, fcs_bits))
        elif kind == "noise":
            position = draw(st.integers(0, len(encoded)))
            encoded[position:position] = draw(st.sampled_from([b"\x11", b"\x13", b"\x00\x11\x13", b"\x7d"]))
        pieces.append(bytes(encoded))
    return b"".join(pieces)


SETTINGS_CHANGES = st.one_of(
    st.none(),
    st.tuples(st.just("rx_accm"), ACCMS),
    st.tuples(st.just("fcs_bits"), st.sampled_from([16, 32])),
    st.tuples(st.just("max_frame"), st.integers(1, 3000)),
)


@settings(max_examples=300)
@given(
    stream=framed_streams(),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    changes=st.lists(SETTINGS_CHANGES, max_size=12),
    initial=st.tuples(st.integers(1, 3000), ACCMS, st.sampled_from([16, 32])),
)
def test_deframer_equivalent(
    py_impl: SimpleNamespace,
    c_impl: SimpleNamespace,
    stream: bytes,
    cuts: list[int],
    changes: list[Any],
    initial: tuple[int, int, int],
) -> None:
    python_deframer = py_impl.HdlcDeframer(*initial)
    c_deframer = c_impl.HdlcDeframer(*initial)
    boundaries = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    for number, (start, end) in enumerate(zip(boundaries, boundaries[1:], strict=False)):
        change = changes[number] if number < len(changes) else None
        if change is not None:
            setattr(python_deframer, change[0], change[1])
            setattr(c_deframer, change[0], change[1])
        chunk = memoryview(stream)[start:end]
        assert c_deframer.feed(chunk) == python_deframer.feed(chunk)
        assert c_deframer.counters() == python_deframer.counters()
        assert (c_deframer.max_frame, c_deframer.rx_accm, c_deframer.fcs_bits) == (
            python_deframer.max_frame,
            python_deframer.rx_accm,
            python_deframer.fcs_bits,
        )


ASSEMBLER_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-20, 140), st.binary(max_size=40)),
        st.tuples(st.just("read"), st.integers(-2, 60)),
        st.tuples(st.just("overlaps"), st.integers(-20, 140), st.integers(-5, 60)),
        st.tuples(st.just("clear")),
    ),
    max_size=40,
)


@settings(max_examples=300)
@given(capacity=st.integers(0, 128), max_ranges=st.integers(1, 6), operations=ASSEMBLER_OPS)
def test_assembler_equivalent(
    py_impl: SimpleNamespace, c_impl: SimpleNamespace, capacity: int, max_ranges: int, operations: list[Any]
) -> None:
    python_assembler = py_impl.Assembler(capacity, max_ranges)
    c_assembler = c_impl.Assembler(capacity, max_ranges)
    for name, *args in operations:
        assert getattr(c_assembler, name)(*args) == getattr(python_assembler, name)(*args)
        for query in ("ranges", "holes", "readable", "stored", "is_empty"):
            assert getattr(c_assembler, query)() == getattr(python_assembler, query)()


@given(value=st.one_of(st.integers(), st.floats(allow_nan=False), st.none()))
def test_assembler_errors_equivalent(py_impl: SimpleNamespace, c_impl: SimpleNamespace, value: Any) -> None:
    assert construction(c_impl.Assembler, value) == construction(py_impl.Assembler, value)
    assert construction(c_impl.Assembler, 10, value) == construction(py_impl.Assembler, 10, value)
    python_assembler, c_assembler = py_impl.Assembler(100), c_impl.Assembler(100)
    assert outcome(c_assembler.add, value, b"ab") == outcome(python_assembler.add, value, b"ab")
    assert outcome(c_assembler.read, value) == outcome(python_assembler.read, value)
    assert outcome(c_assembler.overlaps, 0, value) == outcome(python_assembler.overlaps, 0, value)
