"""Helpers shared by the data-plane wire codecs (fast paths only)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")


def raw_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for a frozen slotted dataclass that bypasses its ``__init__``.

    CPython 3.11's frozen ``__init__`` sets each field through ``object.__setattr__``; storing
    straight into the slots halves the cost of a 10-field Repr (2.7 -> 1.0 µs measured).  For
    the parse path only: every field must be passed, in declaration order, already validated.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def construct_unchecked({', '.join(names)}):", "    obj = _new(_cls)"]
    for i, name in enumerate(names):
        namespace[f"_set{i}"] = getattr(cls, name).__set__  # the slot's member descriptor
        lines.append(f"    _set{i}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # same technique as dataclasses' generated __init__
    constructor: Callable[..., _T] = namespace["construct_unchecked"]
    return constructor
