"""The virtual module's "flash": the stored configuration, encoded and checked without any I/O.

``AT+WIPCFG=4,1`` stores the IP stack configuration and ``AT+WIPBR=6,<bid>,1`` stores one
bearer's configuration; both must survive a restart.  The store holds named *sections*
(``"wipcfg"``, ``"bearer.6"``, ...), each a JSON object of settings.

This module is part of the sans-I/O core: it only turns sections into bytes and back
(:func:`encode_store`, :func:`decode_store`) and defines the :class:`ConfigStore` protocol
that the module talks to.  The file-backed store, which writes atomically, lives in
:mod:`wipstack.drivers.flash`; :class:`MemoryStore` here is for tests and for running the
module without persistence.

On-flash format (``STORE_FORMAT`` 1)::

    wipstack-flash 1 <sha256 of the body, 64 lowercase hex digits>\\n
    <body: canonical JSON (sorted keys, no whitespace, ASCII only), a JSON object of JSON objects>

:func:`decode_store` validates every part and raises :class:`StoreCorrupt` -- and nothing
else -- for any input bytes; the module answers ``+CME ERROR: 821`` and falls back to defaults.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Protocol, TypeAlias, runtime_checkable

JsonValue: TypeAlias = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
"""A value JSON can carry: scalars, lists and string-keyed objects, nested arbitrarily."""

Sections: TypeAlias = dict[str, dict[str, JsonValue]]
"""The decoded store: section name -> that section's settings."""

STORE_FORMAT = 1
"""Version number written in (and required from) the header line."""

STORE_MAGIC = b"wipstack-flash"
"""First word of the header line."""

MAX_STORE_SIZE = 1 << 20
"""Largest store, header included, that :func:`decode_store` accepts (and :func:`encode_store` produces)."""

_SHA256_HEX_DIGITS = 64
_MAX_VERSION_DIGITS = 9
_HEX_DIGITS = frozenset(b"0123456789abcdef")


class StoreError(Exception):
    """Base class of the store errors; ``reason`` is a short human-readable explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreCorrupt(StoreError):
    """The stored bytes are not a valid store (bad header, version, checksum, JSON or shape).

    The module answers ``+CME ERROR: 821`` and uses its defaults.
    """


class StoreUnavailable(StoreError):
    """The store cannot be read or written at all (an ``OSError`` underneath, a simulated failure).

    A failed save makes the module answer ``+CME ERROR: 820``.
    """


@runtime_checkable
class ConfigStore(Protocol):
    """Where the module keeps its stored configuration.

    A store that was never saved is not an error: :meth:`load` returns ``{}``.
    """

    def load(self) -> dict[str, dict[str, JsonValue]]:
        """Return every stored section; raise :class:`StoreCorrupt` or :class:`StoreUnavailable`."""
        ...

    def save(self, sections: Mapping[str, Mapping[str, JsonValue]]) -> None:
        """Replace the whole store with ``sections``; raise :class:`StoreUnavailable` on failure.

        After a failure (or a crash during the save) the store holds either the complete old
        content or the complete new content, never a mixture.
        """
        ...


# --------------------------------------------------------------------------- encoding


def _check_json_value(value: object, where: str) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``value`` encodes to JSON and decodes back equal."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not representable in JSON")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a str")
            _check_json_value(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not a JSON value")


def _canonical_body(sections: Mapping[str, Mapping[str, JsonValue]]) -> bytes:
    """Canonical JSON of ``sections``: the same content always gives the same bytes."""
    if not isinstance(sections, Mapping):
        raise TypeError(f"sections must be a mapping, not {type(sections).__name__}")
    plain: dict[str, dict[str, JsonValue]] = {}
    for name, values in sections.items():
        if not isinstance(name, str):
            raise TypeError(f"section name {name!r} is not a str")
        if not isinstance(values, Mapping):
            raise TypeError(f"section {name!r} must be a mapping, not {type(values).__name__}")
        _check_json_value(values, f"section {name!r}")
        plain[name] = dict(values)
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def _header(body: bytes) -> bytes:
    return b"%s %d %s\n" % (STORE_MAGIC, STORE_FORMAT, hashlib.sha256(body).hexdigest().encode("ascii"))


def encode_store(sections: Mapping[str, Mapping[str, JsonValue]]) -> bytes:
    """Serialise ``sections`` to the on-flash format (header line, then canonical JSON).

    Raises ``TypeError`` for names, keys or values JSON cannot carry faithfully and
    ``ValueError`` for NaN/infinities or when the result would exceed :data:`MAX_STORE_SIZE`
    (which :func:`decode_store` would refuse to read back).  Both are programming errors.
    """
    body = _canonical_body(sections)
    blob = _header(body) + body
    if len(blob) > MAX_STORE_SIZE:
        raise ValueError(f"store too large: {len(blob)} bytes, limit {MAX_STORE_SIZE}")
    return blob


# --------------------------------------------------------------------------- decoding


def _reject_constant(name: str) -> JsonValue:
    """``parse_constant`` hook: NaN and +-Infinity are not JSON."""
    raise ValueError(f"non-standard constant {name}")


def _object_without_duplicates(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    """``object_pairs_hook``: refuse objects that repeat a key (the encoder never writes one)."""
    result: dict[str, JsonValue] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse_header(header: bytes) -> bytes:
    """Validate the header line (without its newline); return the expected sha256 hex digest."""
    words = header.split(b" ")
    if words[0] != STORE_MAGIC:
        raise StoreCorrupt("not a wipstack flash store (bad magic)")
    if len(words) < 2:
        raise StoreCorrupt("bad header: no format version")
    version_text = words[1]
    if not version_text.isdigit() or len(version_text) > _MAX_VERSION_DIGITS:
        raise StoreCorrupt("bad header: malformed format version")
    version = int(version_text)
    if str(version).encode("ascii") != version_text:
        raise StoreCorrupt("bad header: malformed format version")
    if version != STORE_FORMAT:
        raise StoreCorrupt(f"unsupported format version {version} (expected {STORE_FORMAT})")
    if len(words) != 3:
        raise StoreCorrupt("bad header: expected 'wipstack-flash <format> <sha256>'")
    digest = words[2]
    if len(digest) != _SHA256_HEX_DIGITS or not set(digest) <= _HEX_DIGITS:
        raise StoreCorrupt("bad header: checksum is not 64 lowercase hex digits")
    return digest


def _parse_body(body: bytes) -> Sections:
    """Parse the checksummed body into a dict of dicts, or raise :class:`StoreCorrupt`."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise StoreCorrupt("body is not ASCII") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_object_without_duplicates)
    except RecursionError:
        raise StoreCorrupt("body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, the hooks above, the int-digits limit
        raise StoreCorrupt(f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise StoreCorrupt("body is not a JSON object of sections")
    sections: Sections = {}
    for name, values in document.items():
        if not isinstance(values, dict):
            raise StoreCorrupt(f"section {name!r} is not a JSON object")
        sections[name] = values
    return sections


def decode_store(blob: bytes) -> dict[str, dict[str, JsonValue]]:
    """Parse and validate a stored blob; raise :class:`StoreCorrupt` (only) if anything is wrong.

    Checks, in order: size (at most :data:`MAX_STORE_SIZE`), the header line (magic, format
    version, checksum syntax), the sha256 of the body, then that the body is ASCII JSON
    holding an object whose every value is an object.
    """
    if len(blob) > MAX_STORE_SIZE:
        raise StoreCorrupt(f"too large: more than {MAX_STORE_SIZE} bytes")
    if not blob:
        raise StoreCorrupt("empty")
    blob = bytes(blob)
    newline = blob.find(b"\n")
    if newline < 0:
        raise StoreCorrupt("truncated: no complete header line")
    expected_digest = _parse_header(blob[:newline])
    body = blob[newline + 1 :]
    if hashlib.sha256(body).hexdigest().encode("ascii") != expected_digest:
        raise StoreCorrupt("checksum mismatch (truncated or altered)")
    return _parse_body(body)


# --------------------------------------------------------------------------- in-memory store


class MemoryStore:
    """A :class:`ConfigStore` kept in memory, for tests and for running without persistence.

    ``blob`` holds the encoded bytes exactly as a file would (``None``: never saved), so
    tests can corrupt it.  Setting ``fail_next_save`` (or ``fail_next_load``) makes the next
    :meth:`save` (or :meth:`load`) raise :class:`StoreUnavailable` once, leaving ``blob`` as it was.
    """

    def __init__(self, sections: Mapping[str, Mapping[str, JsonValue]] | None = None) -> None:
        self.blob: bytes | None = None if sections is None else encode_store(sections)
        self.fail_next_save = False
        self.fail_next_load = False
        self.saves = 0
        """Number of successful saves."""

    def load(self) -> dict[str, dict[str, JsonValue]]:
        """Decode ``blob``; ``{}`` if never saved."""
        if self.fail_next_load:
            self.fail_next_load = False
            raise StoreUnavailable("simulated read failure")
        if self.blob is None:
            return {}
        return decode_store(self.blob)

    def save(self, sections: Mapping[str, Mapping[str, JsonValue]]) -> None:
        """Encode ``sections`` into ``blob`` (all or nothing)."""
        if self.fail_next_save:
            self.fail_next_save = False
            raise StoreUnavailable("simulated write failure")
        self.blob = encode_store(sections)
        self.saves += 1


# --------------------------------------------------------------------------- helpers for the module


def read_section(store: ConfigStore, name: str) -> dict[str, JsonValue] | None:
    """The stored settings of section ``name``, or ``None`` if it was never stored.

    Raises :class:`StoreCorrupt` / :class:`StoreUnavailable` from :meth:`ConfigStore.load`.
    """
    return store.load().get(name)


def update_section(store: ConfigStore, name: str, values: Mapping[str, JsonValue]) -> None:
    """Replace section ``name`` with ``values``, keeping every other section, and save.

    Errors propagate: :class:`StoreCorrupt` from the load (the caller decides whether to
    start again from an empty store with ``store.save({name: values})``), and
    :class:`StoreUnavailable` from the load or the save.
    """
    sections: dict[str, Mapping[str, JsonValue]] = dict(store.load())
    sections[name] = dict(values)
    store.save(sections)


def delete_section(store: ConfigStore, name: str) -> bool:
    """Remove section ``name`` and save; return whether it was stored (no save if it was not).

    Errors propagate as in :func:`update_section`.
    """
    sections = store.load()
    if name not in sections:
        return False
    del sections[name]
    store.save(sections)
    return True
