"""The sans-I/O core imports no clocks, fds, sockets, threads or randomness of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = [
    *sorted((ROOT / "wipstack" / "wire").glob("*.py")),
    *sorted((ROOT / "wipstack" / "ppp").glob("*.py")),
    *sorted((ROOT / "wipstack" / "_py").glob("*.py")),
    *sorted((ROOT / "wipstack" / "net").glob("*.py")),
    *sorted((ROOT / "wipstack" / "tcp").glob("*.py")),
    *sorted((ROOT / "wipstack" / "cellular").glob("*.py")),
    ROOT / "wipstack" / "dns.py",
    ROOT / "wipstack" / "errors.py",
    ROOT / "wipstack" / "rand.py",
    *sorted((ROOT / "at_frontend").glob("*.py")),
]
FORBIDDEN = {
    "asyncio",
    "fcntl",
    "os",
    "random",
    "select",
    "selectors",
    "serial",
    "socket",
    "subprocess",
    "termios",
    "threading",
    "time",
    "tty",
    "pytun",
    "wipstack.drivers",
    "wipstack.cli",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_does_no_io(path: Path) -> None:
    bad = {name for name in imported_modules(path) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_wipstack_c_never_imports_wipstack() -> None:
    for path in sorted((ROOT / "wipstack_c").glob("*.pyx")) + sorted((ROOT / "wipstack_c").glob("*.py")):
        text = path.read_text()
        assert "import wipstack" not in text and "from wipstack" not in text, path.name
