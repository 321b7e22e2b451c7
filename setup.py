"""Build the optional C accelerator; all metadata lives in pyproject.toml.

The extension is optional: without a C compiler (or on a free-threaded CPython,
or with ``CALLMETRICS_PURE_PYTHON=1`` set at build time) the package installs
without it and uses its pure-Python hot path, saying so in one line.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _say_not_built(reason: str) -> None:
    sys.stderr.write(f"callmetrics: C accelerator not built ({reason}); "
                     "the pure-Python hot path will be used\n")


class OptionalBuildExt(build_ext):
    """Build the extension if possible; otherwise say so once and go on."""

    def run(self) -> None:
        """Build, or skip with one line when the build cannot work here."""
        if os.environ.get("CALLMETRICS_PURE_PYTHON") == "1":
            _say_not_built("CALLMETRICS_PURE_PYTHON=1")
            return
        if sysconfig.get_config_var("Py_GIL_DISABLED"):
            _say_not_built("free-threaded CPython: the accelerator relies on the GIL")
            return
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001  # any build failure: fall back to Python
            _say_not_built(f"{type(exc).__name__}: {exc}".strip())

    def build_extension(self, ext: Extension) -> None:
        """Compile one extension; a compiler error is not fatal."""
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001  # any build failure: fall back to Python
            _say_not_built(f"{type(exc).__name__}: {exc}".strip().splitlines()[0])


setup(
    ext_modules=[
        Extension(
            "callmetrics._engine._speedups",
            # One translation unit: speedups.c includes the other parts (see there).
            sources=["src/speedups/speedups.c"],
            depends=[str(part) for part in sorted(Path("src/speedups").glob("*.[ch]"))],
            optional=True,
        ),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
