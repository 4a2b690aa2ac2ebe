"""Shared fixtures: run hot-path tests against both implementations (multidict/yarl style).

``accel_impl`` is parametrized over "py" (``wipstack._py``, always available) and "c"
(``wipstack_c``), the latter skipped with the reason when the extensions are not built or
``WIPSTACK_NO_EXTENSIONS`` is set.  The fixture value is a namespace holding every public
name of the four hot-path modules (``inet_sum``, ``fcs16``, ``HdlcDeframer``,
``Assembler``, ...) plus ``IMPLEMENTATION``.  Fixtures are session scoped and immutable,
so Hypothesis tests may use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType, SimpleNamespace

import pytest

from wipstack import accel


def _namespace(implementation: str, modules: Iterable[tuple[ModuleType, ModuleType]]) -> SimpleNamespace:
    names: dict[str, object] = {"IMPLEMENTATION": implementation}
    for reference, module in modules:
        for name in accel.public_names(reference):
            names[name] = getattr(module, name)
    return SimpleNamespace(**names)


def _python_namespace() -> SimpleNamespace:
    return _namespace("py", ((module, module) for module in accel.PY_MODULES.values()))


def _c_namespace_or_skip() -> SimpleNamespace:
    if accel.NO_EXTENSIONS:
        pytest.skip("C extensions disabled: WIPSTACK_NO_EXTENSIONS is set (or not CPython)")
    modules, reason = accel.load_c_modules()
    if modules is None:
        pytest.skip(f"C extensions unavailable: {reason}")
    return _namespace("c", ((accel.PY_MODULES[name], modules[name]) for name in accel.PY_MODULES))


@pytest.fixture(scope="session", params=["py", "c"])
def accel_impl(request: pytest.FixtureRequest) -> SimpleNamespace:
    """Namespace with the hot-path functions and classes of one implementation."""
    if request.param == "py":
        return _python_namespace()
    return _c_namespace_or_skip()


@pytest.fixture(scope="session")
def py_impl() -> SimpleNamespace:
    """The pure-Python reference implementation."""
    return _python_namespace()


@pytest.fixture(scope="session")
def c_impl() -> SimpleNamespace:
    """The Cython implementation (skipped with a reason when not built or disabled)."""
    return _c_namespace_or_skip()
