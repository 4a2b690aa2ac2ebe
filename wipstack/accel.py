"""The one place that chooses between the Cython hot paths and their pure-Python twins.

``WIPSTACK_NO_EXTENSIONS=1`` (or a non-CPython interpreter) forces the pure-Python
implementations.  Otherwise the ``wipstack_c`` modules are used, but only if *all* of them
import and each provides every public name of its ``wipstack._py`` twin: a half-built or
stale tree falls back to pure Python as a whole, never to a mix.  ``IMPLEMENTATION`` tells
which one is active ("c" or "py"); ``C_UNAVAILABLE_REASON`` says why C is not used.

Both implementations stay importable explicitly (``wipstack._py.hdlc``,
``wipstack_c.hdlc``), e.g. for differential tests and benchmarks.  Under ``TYPE_CHECKING``
the pure-Python names are bound, so mypy checks code against the reference spec.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from wipstack._py import assembler as assembler_py
from wipstack._py import checksum as checksum_py
from wipstack._py import fcs as fcs_py
from wipstack._py import hdlc as hdlc_py

NO_EXTENSIONS = bool(os.environ.get("WIPSTACK_NO_EXTENSIONS")) or sys.implementation.name != "cpython"

# name of each accelerated module -> its pure-Python reference twin
PY_MODULES: dict[str, ModuleType] = {
    "checksum": checksum_py,
    "fcs": fcs_py,
    "hdlc": hdlc_py,
    "assembler": assembler_py,
}
_PY_ONLY_NAMES = frozenset({"Buffer"})  # type aliases have no runtime twin in C

inet_sum = checksum_py.inet_sum
inet_checksum = checksum_py.inet_checksum
pseudo_header_sum = checksum_py.pseudo_header_sum
fcs16 = fcs_py.fcs16
fcs32 = fcs_py.fcs32
FCS16_INIT = fcs_py.FCS16_INIT
FCS16_GOOD = fcs_py.FCS16_GOOD
FCS32_INIT = fcs_py.FCS32_INIT
FCS32_GOOD = fcs_py.FCS32_GOOD
FLAG = hdlc_py.FLAG
ESCAPE = hdlc_py.ESCAPE
DEFAULT_ACCM = hdlc_py.DEFAULT_ACCM
DEFAULT_MAX_FRAME = hdlc_py.DEFAULT_MAX_FRAME
hdlc_escape = hdlc_py.hdlc_escape
hdlc_unescape = hdlc_py.hdlc_unescape
hdlc_encode = hdlc_py.hdlc_encode
HdlcDeframer = hdlc_py.HdlcDeframer
Assembler = assembler_py.Assembler
ASSEMBLER_FULL = assembler_py.ASSEMBLER_FULL

IMPLEMENTATION: Literal["c", "py"] = "py"
C_UNAVAILABLE_REASON: str | None = "WIPSTACK_NO_EXTENSIONS is set or the interpreter is not CPython"


def public_names(module: ModuleType) -> list[str]:
    """The names a C module must provide to stand in for ``module`` (its runtime ``__all__``)."""
    return [name for name in module.__all__ if name not in _PY_ONLY_NAMES]


def load_c_modules() -> tuple[dict[str, ModuleType] | None, str | None]:
    """Import every ``wipstack_c`` twin; return (modules, None) or (None, reason) if any is unusable."""
    modules: dict[str, ModuleType] = {}
    for name, reference in PY_MODULES.items():
        try:
            module = importlib.import_module(f"wipstack_c.{name}")
        except ImportError as exc:
            return None, f"wipstack_c.{name} is not built ({exc}); run `python setup.py build_ext --inplace`"
        missing = [attribute for attribute in public_names(reference) if not hasattr(module, attribute)]
        if missing:
            return None, f"wipstack_c.{name} is stale (missing {', '.join(missing)}); rebuild the extensions"
        modules[name] = module
    return modules, None


if not TYPE_CHECKING and not NO_EXTENSIONS:
    _c_modules, C_UNAVAILABLE_REASON = load_c_modules()
    if _c_modules is not None:
        _checksum_c, _fcs_c = _c_modules["checksum"], _c_modules["fcs"]
        _hdlc_c, _assembler_c = _c_modules["hdlc"], _c_modules["assembler"]
        inet_sum = _checksum_c.inet_sum
        inet_checksum = _checksum_c.inet_checksum
        pseudo_header_sum = _checksum_c.pseudo_header_sum
        fcs16 = _fcs_c.fcs16
        fcs32 = _fcs_c.fcs32
        hdlc_escape = _hdlc_c.hdlc_escape
        hdlc_unescape = _hdlc_c.hdlc_unescape
        hdlc_encode = _hdlc_c.hdlc_encode
        HdlcDeframer = _hdlc_c.HdlcDeframer
        Assembler = _assembler_c.Assembler
        IMPLEMENTATION = "c"

__all__ = [
    "ASSEMBLER_FULL",
    "C_UNAVAILABLE_REASON",
    "DEFAULT_ACCM",
    "DEFAULT_MAX_FRAME",
    "ESCAPE",
    "FCS16_GOOD",
    "FCS16_INIT",
    "FCS32_GOOD",
    "FCS32_INIT",
    "FLAG",
    "IMPLEMENTATION",
    "NO_EXTENSIONS",
    "PY_MODULES",
    "Assembler",
    "HdlcDeframer",
    "fcs16",
    "fcs32",
    "hdlc_encode",
    "hdlc_escape",
    "hdlc_unescape",
    "inet_checksum",
    "inet_sum",
    "load_c_modules",
    "pseudo_header_sum",
    "public_names",
]
