"""Build script: the wipstack_c Cython extensions are optional.

With Cython and a C compiler present the hot paths in ``wipstack_c/*.pyx`` are compiled;
otherwise (or with ``WIPSTACK_NO_EXTENSIONS=1``) a pure-Python install results.  A failing
compiler never fails the installation: every extension is ``optional=True`` and
``wipstack.accel`` falls back to the pure-Python twins in ``wipstack/_py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NO_EXTENSIONS = bool(os.environ.get("WIPSTACK_NO_EXTENSIONS")) or sys.implementation.name != "cpython"


class OptionalBuildExt(build_ext):
    """build_ext that reports, but survives, a missing or failing C compiler."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any toolchain failure means "pure install"
            print(f"wipstack: C extensions not built ({exc}); pure-Python install", file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"wipstack: extension {ext.name} not built ({exc})", file=sys.stderr)


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        print("wipstack: WIPSTACK_NO_EXTENSIONS set; pure-Python build", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("wipstack: Cython not available; pure-Python build", file=sys.stderr)
        return []
    sources = sorted((HERE / "wipstack_c").glob("*.pyx"))
    exts = [
        Extension(
            f"wipstack_c.{src.stem}",
            [str(src.relative_to(HERE))],
            optional=True,
            extra_compile_args=["-O3"],
        )
        for src in sources
    ]
    print(f"wipstack: accelerated build of {len(exts)} Cython extension(s)", file=sys.stderr)
    return list(
        cythonize(
            exts,
            compiler_directives={
                "language_level": 3,
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "initializedcheck": False,
            },
            quiet=True,
        )
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
