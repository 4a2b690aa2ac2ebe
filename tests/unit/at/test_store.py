"""The flash store's pure part: encoding, validation of every kind of corruption, MemoryStore."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from at_frontend import store as store_module
from at_frontend.store import (
    MAX_STORE_SIZE,
    STORE_FORMAT,
    ConfigStore,
    JsonValue,
    MemoryStore,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    decode_store,
    delete_section,
    encode_store,
    read_section,
    update_section,
)
from tests.unit.test_layering import FORBIDDEN, imported_modules

SAMPLE: dict[str, dict[str, JsonValue]] = {
    "wipcfg": {"ttl": 64, "tos": 0, "frag_timeout": 60, "autostart": True, "label": "héllo\n"},
    "bearer.6": {"apn": "internet", "user": None, "dns": ["8.8.8.8", "1.1.1.1"], "ratio": 0.5, "opts": {"a": [1, {}]}},
}


def make_blob(body: bytes, version: bytes = b"1", digest: bytes | None = None) -> bytes:
    """A store with an arbitrary body and a (by default correct) header."""
    if digest is None:
        digest = hashlib.sha256(body).hexdigest().encode()
    return b"wipstack-flash " + version + b" " + digest + b"\n" + body


def corrupt_reason(blob: bytes) -> str:
    with pytest.raises(StoreCorrupt) as caught:
        decode_store(blob)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


# ------------------------------------------------------------------ encode / decode


def test_round_trip() -> None:
    assert decode_store(encode_store(SAMPLE)) == SAMPLE
    assert decode_store(encode_store({})) == {}


def test_encoding_is_the_documented_format() -> None:
    blob = encode_store({"wipcfg": {"b": 2, "a": "é"}})
    header, body = blob.split(b"\n", 1)
    assert body == b'{"wipcfg":{"a":"\\u00e9","b":2}}'
    assert header == b"wipstack-flash %d %s" % (STORE_FORMAT, hashlib.sha256(body).hexdigest().encode())
    assert STORE_FORMAT == 1


def test_encoding_is_canonical_whatever_the_insertion_order() -> None:
    forward = {"a": {"x": 1, "y": 2}, "b": {}}
    backward = {"b": {}, "a": {"y": 2, "x": 1}}
    assert encode_store(forward) == encode_store(backward)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    blob = encode_store(SAMPLE)
    assert decode_store(bytearray(blob)) == SAMPLE  # type: ignore[arg-type]
    assert decode_store(memoryview(blob)) == SAMPLE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sections", "error"),
    [
        ({1: {}}, TypeError),
        ({"s": []}, TypeError),
        ({"s": {1: 2}}, TypeError),
        ({"s": {"v": {1: 2}}}, TypeError),
        ({"s": {"v": b"bytes"}}, TypeError),
        ({"s": {"v": {1, 2}}}, TypeError),
        ({"s": {"v": float("nan")}}, ValueError),
        ({"s": {"v": [float("inf")]}}, ValueError),
        ({"s": {"v": "x" * MAX_STORE_SIZE}}, ValueError),
        ([], TypeError),
    ],
)
def test_encode_refuses_what_json_cannot_carry(sections: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_store(sections)  # type: ignore[arg-type]


def test_tuples_are_stored_as_lists() -> None:
    assert decode_store(encode_store({"s": {"v": (1, 2)}})) == {"s": {"v": [1, 2]}}  # type: ignore[dict-item]


# ------------------------------------------------------------------ corruption


def test_empty() -> None:
    assert corrupt_reason(b"") == "empty"


def test_too_large() -> None:
    reason = corrupt_reason(b"x" * (MAX_STORE_SIZE + 1))
    assert reason.startswith("too large")


def test_largest_accepted_size() -> None:
    overhead = len(encode_store({"s": {"p": ""}}))
    blob = encode_store({"s": {"p": "x" * (MAX_STORE_SIZE - overhead)}})
    assert len(blob) == MAX_STORE_SIZE
    assert len(decode_store(blob)["s"]["p"]) == MAX_STORE_SIZE - overhead  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (b"wipstack-flash 1 " + b"0" * 64, "truncated: no complete header line"),
        (b"wipstack-fl", "truncated: no complete header line"),
        (b"WIPSTACK-FLASH 1 x\n{}", "not a wipstack flash store (bad magic)"),
        (b'{"wipcfg":{}}\n', "not a wipstack flash store (bad magic)"),
        (b"\xff\xfe\n", "not a wipstack flash store (bad magic)"),
        (b"wipstack-flash\n{}", "bad header: no format version"),
        (b"wipstack-flash x " + b"0" * 64 + b"\n{}", "bad header: malformed format version"),
        (b"wipstack-flash -1 " + b"0" * 64 + b"\n{}", "bad header: malformed format version"),
        (b"wipstack-flash 01 " + b"0" * 64 + b"\n{}", "bad header: malformed format version"),
        (b"wipstack-flash 1" + b"0" * 20 + b"\n{}", "bad header: malformed format version"),
        (b"wipstack-flash 1\n{}", "bad header: expected 'wipstack-flash <format> <sha256>'"),
        (b"wipstack-flash  1 abc\n{}", "bad header: malformed format version"),
        (b"wipstack-flash 1 a b\n{}", "bad header: expected 'wipstack-flash <format> <sha256>'"),
        (b"wipstack-flash 1 abc\n{}", "bad header: checksum is not 64 lowercase hex digits"),
        (b"wipstack-flash 1 " + b"g" * 64 + b"\n{}", "bad header: checksum is not 64 lowercase hex digits"),
    ],
)
def test_bad_header(blob: bytes, expected: str) -> None:
    assert corrupt_reason(blob) == expected


def test_uppercase_checksum_is_refused() -> None:
    body = b"{}"
    assert corrupt_reason(make_blob(body, digest=hashlib.sha256(body).hexdigest().upper().encode())) == (
        "bad header: checksum is not 64 lowercase hex digits"
    )


@pytest.mark.parametrize("version", [0, 2, 999999999])
def test_wrong_version(version: int) -> None:
    # A future format may change the rest of the header: the version is checked before its layout.
    blob = encode_store(SAMPLE).replace(b"wipstack-flash 1 ", b"wipstack-flash %d " % version, 1)
    assert corrupt_reason(blob) == f"unsupported format version {version} (expected 1)"
    assert corrupt_reason(b"wipstack-flash %d\nanything" % version) == (
        f"unsupported format version {version} (expected 1)"
    )


def test_checksum_mismatch() -> None:
    blob = bytearray(encode_store(SAMPLE))
    blob[-3] ^= 0x01
    assert corrupt_reason(bytes(blob)) == "checksum mismatch (truncated or altered)"


@pytest.mark.parametrize("cut", [1, 2, 10, 40])
def test_truncated_body(cut: int) -> None:
    blob = encode_store(SAMPLE)
    assert corrupt_reason(blob[:-cut]) == "checksum mismatch (truncated or altered)"


def test_every_truncation_is_refused() -> None:
    blob = encode_store(SAMPLE)
    for length in range(len(blob)):
        with pytest.raises(StoreCorrupt):
            decode_store(blob[:length])


def test_appended_bytes_are_refused() -> None:
    assert corrupt_reason(encode_store(SAMPLE) + b"\n") == "checksum mismatch (truncated or altered)"


@pytest.mark.parametrize(
    ("body", "expected_start"),
    [
        (b"", "body is not valid JSON"),
        (b"{", "body is not valid JSON"),
        (b"{}}", "body is not valid JSON"),
        (b"not json", "body is not valid JSON"),
        (b'{"s":{"v":NaN}}', "body is not valid JSON: non-standard constant NaN"),
        (b'{"s":{"v":-Infinity}}', "body is not valid JSON: non-standard constant -Infinity"),
        (b'{"s":{"v":1,"v":2}}', "body is not valid JSON: duplicate key 'v'"),
        (b'{"s":{},"s":{}}', "body is not valid JSON: duplicate key 's'"),
        (b'{"s":{"v":' + b"9" * 5000 + b"}}", "body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not valid JSON: nested too deeply"),
        (b'{"s":{"v":"\xc3\xa9"}}', "body is not ASCII"),
        (b"\xff", "body is not ASCII"),
    ],
)
def test_not_json(body: bytes, expected_start: str) -> None:
    assert corrupt_reason(make_blob(body)).startswith(expected_start)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[]", "body is not a JSON object of sections"),
        (b"null", "body is not a JSON object of sections"),
        (b'"wipcfg"', "body is not a JSON object of sections"),
        (b"3", "body is not a JSON object of sections"),
        (b'{"wipcfg":[]}', "section 'wipcfg' is not a JSON object"),
        (b'{"a":{},"bearer.6":1}', "section 'bearer.6' is not a JSON object"),
        (b'{"wipcfg":null}', "section 'wipcfg' is not a JSON object"),
    ],
)
def test_not_a_dict_of_dicts(body: bytes, expected: str) -> None:
    assert corrupt_reason(make_blob(body)) == expected


def test_hand_written_store_with_whitespace_is_accepted() -> None:
    body = json.dumps({"wipcfg": {"ttl": 32}}, indent=2).encode()
    assert decode_store(make_blob(body)) == {"wipcfg": {"ttl": 32}}


def test_error_hierarchy() -> None:
    assert issubclass(StoreCorrupt, StoreError) and issubclass(StoreUnavailable, StoreError)
    assert not issubclass(StoreCorrupt, StoreUnavailable)
    error = StoreUnavailable("disk gone")
    assert error.reason == "disk gone" and str(error) == "disk gone"


# ------------------------------------------------------------------ MemoryStore


def test_memory_store_starts_empty() -> None:
    memory = MemoryStore()
    assert memory.blob is None
    assert memory.load() == {}
    assert isinstance(memory, ConfigStore)


def test_memory_store_keeps_the_encoded_bytes() -> None:
    memory = MemoryStore()
    memory.save(SAMPLE)
    assert memory.blob == encode_store(SAMPLE)
    assert memory.load() == SAMPLE
    assert memory.saves == 1
    assert MemoryStore(SAMPLE).blob == encode_store(SAMPLE)


def test_memory_store_returns_copies() -> None:
    memory = MemoryStore(SAMPLE)
    loaded = memory.load()
    loaded["wipcfg"]["ttl"] = 1
    assert memory.load() == SAMPLE


def test_memory_store_corrupted_blob() -> None:
    memory = MemoryStore(SAMPLE)
    assert memory.blob is not None
    memory.blob = memory.blob[:-1]
    with pytest.raises(StoreCorrupt, match="checksum mismatch"):
        memory.load()
    memory.blob = b"garbage"
    with pytest.raises(StoreCorrupt):
        memory.load()


def test_memory_store_fail_next_save_once_and_keeps_old_content() -> None:
    memory = MemoryStore(SAMPLE)
    old_blob = memory.blob
    memory.fail_next_save = True
    with pytest.raises(StoreUnavailable):
        memory.save({"wipcfg": {}})
    assert memory.blob == old_blob and memory.fail_next_save is False and memory.saves == 0
    memory.save({"wipcfg": {}})
    assert memory.load() == {"wipcfg": {}}


def test_memory_store_fail_next_load_once() -> None:
    memory = MemoryStore(SAMPLE)
    memory.fail_next_load = True
    with pytest.raises(StoreUnavailable):
        memory.load()
    assert memory.load() == SAMPLE


def test_memory_store_invalid_sections_leave_blob_untouched() -> None:
    memory = MemoryStore(SAMPLE)
    old_blob = memory.blob
    with pytest.raises(TypeError):
        memory.save({"s": {"v": object()}})  # type: ignore[dict-item]
    assert memory.blob == old_blob


# ------------------------------------------------------------------ section helpers


def test_read_section() -> None:
    memory = MemoryStore(SAMPLE)
    assert read_section(memory, "wipcfg") == SAMPLE["wipcfg"]
    assert read_section(memory, "bearer.5") is None
    assert read_section(MemoryStore(), "wipcfg") is None


def test_update_section_replaces_one_section_and_keeps_the_others() -> None:
    memory = MemoryStore(SAMPLE)
    update_section(memory, "wipcfg", {"ttl": 32})
    assert memory.load() == {"wipcfg": {"ttl": 32}, "bearer.6": SAMPLE["bearer.6"]}
    update_section(memory, "bearer.5", {"apn": "x"})
    assert set(memory.load()) == {"wipcfg", "bearer.5", "bearer.6"}


def test_update_section_on_empty_store() -> None:
    memory = MemoryStore()
    update_section(memory, "wipcfg", {"ttl": 32})
    assert memory.load() == {"wipcfg": {"ttl": 32}}


def test_update_section_propagates_corruption_and_does_not_save() -> None:
    memory = MemoryStore()
    memory.blob = b"wipstack-flash 1 nonsense\n"
    with pytest.raises(StoreCorrupt):
        update_section(memory, "wipcfg", {"ttl": 32})
    assert memory.blob == b"wipstack-flash 1 nonsense\n" and memory.saves == 0
    with pytest.raises(StoreCorrupt):
        read_section(memory, "wipcfg")


def test_update_section_propagates_save_failure() -> None:
    memory = MemoryStore(SAMPLE)
    memory.fail_next_save = True
    with pytest.raises(StoreUnavailable):
        update_section(memory, "wipcfg", {"ttl": 32})
    assert memory.load() == SAMPLE


def test_update_section_does_not_alias_the_callers_mapping() -> None:
    memory = MemoryStore()
    values: dict[str, JsonValue] = {"ttl": 32}
    update_section(memory, "wipcfg", values)
    values["ttl"] = 1
    assert read_section(memory, "wipcfg") == {"ttl": 32}


def test_delete_section() -> None:
    memory = MemoryStore(SAMPLE)
    assert delete_section(memory, "bearer.6") is True
    assert memory.load() == {"wipcfg": SAMPLE["wipcfg"]}
    saves = memory.saves
    assert delete_section(memory, "bearer.6") is False
    assert memory.saves == saves


# ------------------------------------------------------------------ layering


def test_store_module_does_no_io() -> None:
    path = Path(store_module.__file__)
    bad = {name for name in imported_modules(path) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"
    assert "open(" not in path.read_text()
