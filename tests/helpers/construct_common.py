"""Round-trip check for construct declarations (the idea of construct's ``common`` test helper).

``common(format, data, obj, size)`` asserts that the declaration parses ``data`` to ``obj``,
builds ``obj`` back to ``data`` and has the static ``size``, then asserts the same of
``format.compile()`` whenever construct manages to compile the declaration.
"""

from __future__ import annotations

from typing import Any

import pytest
from construct import Construct, SizeofError


def _round_trip(format: Any, data: bytes, obj: Any, context: dict[str, Any]) -> None:
    parsed = format.parse(data, **context)
    assert parsed == obj, f"parse: {parsed!r} != {obj!r}"
    built = format.build(obj, **context)
    assert built == data, f"build: {built.hex()} != {data.hex()}"


def common(format: Construct, data: bytes, obj: Any, size: int | None = None, **context: Any) -> None:
    """Assert parse(data) == obj, build(obj) == data and sizeof() == size, compiled too.

    ``size=None`` means the declaration has no static size: ``sizeof()`` must raise
    ``SizeofError``.  ``context`` is passed to parse and build as keyword arguments.
    """
    _round_trip(format, data, obj, context)
    if size is None:
        with pytest.raises(SizeofError):
            format.sizeof(**context)
    else:
        assert format.sizeof(**context) == size
    try:
        compiled = format.compile()
    except Exception:  # construct cannot compile every declaration; the interpreted one was checked
        return
    _round_trip(compiled, data, obj, context)


def compiles(format: Construct) -> bool:
    """Whether construct can compile ``format`` (so ``common`` also checks the compiled form)."""
    try:
        format.compile()
    except Exception:
        return False
    return True
