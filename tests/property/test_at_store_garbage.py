"""The flash store decoder under garbage: only StoreCorrupt, never another exception; exact round trips.

Any bytes at all, bytes behind a valid header with a matching checksum (so the JSON parser
and the shape checks see them), single bit flips and truncations of valid stores.
"""

from __future__ import annotations

import hashlib
import json
import random

from hypothesis import example, given
from hypothesis import strategies as st

from at_frontend.store import JsonValue, StoreCorrupt, decode_store, encode_store

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
section_names = st.sampled_from(["wipcfg", "bearer.1", "bearer.5", "bearer.6"]) | st.text(max_size=12)
sections_strategy = st.dictionaries(
    section_names, st.dictionaries(st.text(max_size=12), json_values, max_size=4), max_size=4
)


def is_dict_of_dicts(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, dict) for k, v in value.items())


def decode_or_corrupt(blob: bytes) -> dict[str, dict[str, JsonValue]] | None:
    """decode_store's result, or None for StoreCorrupt; any other exception fails the test."""
    try:
        result = decode_store(blob)
    except StoreCorrupt as error:
        assert isinstance(error.reason, str) and error.reason
        return None
    assert is_dict_of_dicts(result)
    return result


def with_valid_header(body: bytes) -> bytes:
    return b"wipstack-flash 1 " + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


@given(st.binary(max_size=512))
@example(b"")
@example(b"\n")
@example(b"wipstack-flash 1 \n")
@example(b"wipstack-flash 99999999999999999999 x\n")
def test_random_bytes_raise_only_store_corrupt(blob: bytes) -> None:
    decode_or_corrupt(blob)


@given(st.binary(max_size=256))
def test_random_bytes_after_the_magic_raise_only_store_corrupt(tail: bytes) -> None:
    decode_or_corrupt(b"wipstack-flash " + tail)
    decode_or_corrupt(b"wipstack-flash 1 " + tail)


@given(
    st.binary(max_size=256)
    | st.text(alphabet='{}[]",:0123456789.eE+-truefalsnNIinfy\\u \n', max_size=80).map(str.encode)
)
@example(b"[" * 50_000)
@example(b'{"a":' * 50_000)
@example(b"1" * 10_000)
@example(b'{"a":{"b":1e999999}}')
def test_checksummed_garbage_raises_only_store_corrupt(body: bytes) -> None:
    """A correct checksum gets garbage all the way to the JSON parser and the shape checks."""
    result = decode_or_corrupt(with_valid_header(body))
    if result is not None:
        assert result == json.loads(body)


@given(sections_strategy)
def test_round_trip(sections: dict[str, dict[str, JsonValue]]) -> None:
    blob = encode_store(sections)
    decoded = decode_store(blob)
    assert decoded == sections
    assert encode_store(decoded) == blob  # also tells True from 1 and 1.0 from 1


@given(sections_strategy, st.randoms(use_true_random=False))
def test_encoding_ignores_insertion_order(sections: dict[str, dict[str, JsonValue]], rng: random.Random) -> None:
    def shuffled(mapping: dict[str, JsonValue]) -> dict[str, JsonValue]:
        items = list(mapping.items())
        rng.shuffle(items)
        return {key: shuffled(value) if isinstance(value, dict) else value for key, value in items}

    reordered = {name: shuffled(values) for name, values in shuffled(dict(sections)).items()}  # type: ignore[arg-type]

    assert encode_store(reordered) == encode_store(sections)


@given(sections_strategy, st.data())
def test_bit_flip_is_detected_or_harmless(sections: dict[str, dict[str, JsonValue]], data: st.DataObject) -> None:
    blob = bytearray(encode_store(sections))
    position = data.draw(st.integers(min_value=0, max_value=len(blob) - 1), label="position")
    bit = data.draw(st.integers(min_value=0, max_value=7), label="bit")
    blob[position] ^= 1 << bit
    result = decode_or_corrupt(bytes(blob))
    # With sha256 over the body and a strict header no single flip survives; if one ever did,
    # it would have to leave the content unchanged.
    assert result is None or result == sections


@given(sections_strategy, st.data())
def test_truncation_is_detected(sections: dict[str, dict[str, JsonValue]], data: st.DataObject) -> None:
    blob = encode_store(sections)
    length = data.draw(st.integers(min_value=0, max_value=len(blob) - 1), label="length")
    assert decode_or_corrupt(blob[:length]) is None


@given(sections_strategy, st.binary(min_size=1, max_size=16))
def test_trailing_garbage_is_detected(sections: dict[str, dict[str, JsonValue]], extra: bytes) -> None:
    assert decode_or_corrupt(encode_store(sections) + extra) is None
