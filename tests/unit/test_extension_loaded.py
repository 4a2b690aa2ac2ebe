"""Fail loudly when the C extensions were expected but are not the active implementation.

CI sets ``WIPSTACK_REQUIRE_EXTENSIONS=1`` after building them (yarl's ``test_quoting_c_loaded``),
and runs the suite again with ``WIPSTACK_NO_EXTENSIONS=1`` to exercise the pure-Python twins.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from wipstack import accel
from wipstack._py import assembler, checksum, fcs, hdlc

REPO_ROOT = Path(__file__).resolve().parents[2]
PY_TWINS = {"checksum": checksum, "fcs": fcs, "hdlc": hdlc, "assembler": assembler}
SELECTED = {
    "checksum": accel.inet_sum,
    "fcs": accel.fcs16,
    "hdlc": accel.HdlcDeframer,
    "assembler": accel.Assembler,
}


def c_modules_or_skip() -> dict[str, ModuleType]:
    if accel.NO_EXTENSIONS:
        pytest.skip("C extensions disabled: WIPSTACK_NO_EXTENSIONS is set (or not CPython)")
    modules, reason = accel.load_c_modules()
    if modules is None:
        pytest.skip(f"C extensions unavailable: {reason}")
    return modules


def run_python(code: str) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WIPSTACK_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=environment, cwd=REPO_ROOT)


@pytest.mark.skipif(not os.environ.get("WIPSTACK_REQUIRE_EXTENSIONS"), reason="WIPSTACK_REQUIRE_EXTENSIONS unset")
def test_c_extensions_loaded_when_required() -> None:
    assert accel.IMPLEMENTATION == "c", accel.C_UNAVAILABLE_REASON
    assert accel.C_UNAVAILABLE_REASON is None
    for name, selected in SELECTED.items():
        assert selected.__module__ == f"wipstack_c.{name}"


@pytest.mark.skipif(not os.environ.get("WIPSTACK_NO_EXTENSIONS"), reason="WIPSTACK_NO_EXTENSIONS unset")
def test_pure_python_forced_by_environment() -> None:
    assert accel.NO_EXTENSIONS
    assert accel.IMPLEMENTATION == "py"
    for name, selected in SELECTED.items():
        assert selected.__module__ == f"wipstack._py.{name}"


def test_selection_is_all_or_nothing() -> None:
    prefix = "wipstack_c." if accel.IMPLEMENTATION == "c" else "wipstack._py."
    selected = [
        accel.inet_sum,
        accel.inet_checksum,
        accel.pseudo_header_sum,
        accel.fcs16,
        accel.fcs32,
        accel.hdlc_escape,
        accel.hdlc_unescape,
        accel.hdlc_encode,
        accel.HdlcDeframer,
        accel.Assembler,
    ]
    assert all(item.__module__.startswith(prefix) for item in selected)


def test_half_built_tree_falls_back_to_python_entirely() -> None:
    c_modules_or_skip()
    run_python(
        "import sys\n"
        "sys.modules['wipstack_c.hdlc'] = None  # as if hdlc.pyx failed to compile\n"
        "from wipstack import accel\n"
        "assert accel.IMPLEMENTATION == 'py', accel.IMPLEMENTATION\n"
        "assert 'wipstack_c.hdlc' in accel.C_UNAVAILABLE_REASON\n"
        "assert accel.inet_sum.__module__ == 'wipstack._py.checksum'\n"
        "assert accel.Assembler.__module__ == 'wipstack._py.assembler'\n"
    )


def test_stale_module_falls_back_to_python_entirely() -> None:
    c_modules_or_skip()
    run_python(
        "import sys, types\n"
        "sys.modules['wipstack_c.fcs'] = types.ModuleType('wipstack_c.fcs')  # lacks fcs32 & co\n"
        "from wipstack import accel\n"
        "assert accel.IMPLEMENTATION == 'py'\n"
        "assert 'stale' in accel.C_UNAVAILABLE_REASON\n"
        "assert accel.HdlcDeframer.__module__ == 'wipstack._py.hdlc'\n"
    )


def test_both_implementations_importable_explicitly() -> None:
    for module in PY_TWINS.values():
        assert module.__name__.startswith("wipstack._py.")
    assert sorted(c_modules_or_skip()) == sorted(PY_TWINS)


def test_c_modules_expose_every_reference_name() -> None:
    for name, module in c_modules_or_skip().items():
        assert sorted(module.__all__) == sorted(accel.public_names(PY_TWINS[name]))


def test_c_modules_never_import_wipstack() -> None:
    c_modules_or_skip()
    run_python(
        "import sys\n"
        "import wipstack_c.checksum, wipstack_c.fcs, wipstack_c.hdlc, wipstack_c.assembler\n"
        "leaked = [m for m in sys.modules if m == 'wipstack' or m.startswith('wipstack.')]\n"
        "assert not leaked, leaked\n"
    )
