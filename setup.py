"""Build the Cython core; fall back to pure Python, loudly, when it cannot be built.

``TRADEBOOK_REQUIRE_EXTENSIONS=1`` (set by CI and cibuildwheel) turns a build
failure into an error. ``TRADEBOOK_NO_EXTENSIONS=1`` skips the build altogether.
``TRADEBOOK_CYTHON_TRACE=1`` builds with line tracing for coverage of the .pyx.
"""

import os
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

MODULES = ["_avl", "_intmap", "_units", "_book", "_engine"]
REQUIRE = bool(os.environ.get("TRADEBOOK_REQUIRE_EXTENSIONS") or os.environ.get("CIBUILDWHEEL"))
SKIP = bool(os.environ.get("TRADEBOOK_NO_EXTENSIONS")) or sys.implementation.name != "cpython"
TRACE = bool(os.environ.get("TRADEBOOK_CYTHON_TRACE"))

BANNER = "*" * 76


def warn(message):
    """Print ``message`` in a banner on stderr and, when pip captures stderr, on the terminal too.

    pip shows a build's output only when it fails or with ``-v``, so a banner on stderr alone
    goes unseen. The controlling terminal is not captured: writing the banner there shows it
    in an interactive ``pip install`` (not in CI or other runs without a terminal, where
    ``-v`` shows it, as does the RuntimeWarning ``import tradebook`` gives on the fallback).
    """
    text = f"\n{BANNER}\n{message}\n{BANNER}\n"
    print(text, file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        return  # run by hand: the user saw it already
    try:
        with open("CON" if os.name == "nt" else "/dev/tty", "w", encoding="utf-8") as tty:
            tty.write(text)
    except OSError:
        pass  # no terminal


class OptionalBuildExt(build_ext):
    """build_ext that degrades to pure Python unless the extension is required."""

    gave_up = False

    def run(self):
        try:
            super().run()
        except Exception as exc:
            self._failed(exc)

    def build_extension(self, ext):
        if self.gave_up:
            return  # the core is all or nothing: once one module fails, the rest are not tried
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc):
        if REQUIRE:
            raise
        if self.gave_up:
            return
        self.gave_up = True
        reason = f"{type(exc).__name__}: {exc}"
        warn(
            "WARNING: tradebook's compiled core could not be built:\n"
            f"  {reason[:300]}\n"
            "tradebook is installing its pure-Python fallback, which is several times slower.\n"
            "Install a C compiler and the Python headers, then reinstall to get the fast core\n"
            "(pip install --force-reinstall --no-cache-dir ..., so pip does not reuse this build);\n"
            "set TRADEBOOK_REQUIRE_EXTENSIONS=1 to make this failure fatal."
        )


def extensions():
    if SKIP:
        warn("TRADEBOOK_NO_EXTENSIONS is set (or this is not CPython): installing pure Python only.")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if REQUIRE:
            raise
        warn(f"WARNING: Cython is not available ({exc}); installing tradebook's pure-Python fallback.")
        return []
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
    extra = [] if sysconfig.get_platform().startswith("win") else ["-O3"]
    exts = [
        Extension(f"tradebook.{name}", [f"src/tradebook/{name}.pyx"], define_macros=macros, extra_compile_args=extra)
        for name in MODULES
    ]
    directives = {
        "language_level": "3",
        "boundscheck": False,
        "wraparound": False,
        "initializedcheck": False,
        "cdivision": True,
        "embedsignature": True,
        "linetrace": TRACE,
    }
    return cythonize(exts, compiler_directives=directives, include_path=["src"])


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
