"""Declares the optional Cython extension; everything else is in pyproject.toml.

JWTMINT_NO_EXTENSIONS=1 builds the pure-Python package only. Without it, a
failed compile is an error: a silent fall back to the slow path is a bug.
"""

import os
import sys

from setuptools import Extension, setup

NO_EXTENSIONS = bool(os.environ.get("JWTMINT_NO_EXTENSIONS"))

if NO_EXTENSIONS:
    ext_modules = []
    print("jwtmint: building the pure-Python package (JWTMINT_NO_EXTENSIONS is set)", file=sys.stderr)
else:
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [Extension("jwtmint._speedups", ["src/jwtmint/_speedups.pyx"], extra_compile_args=["-O3"])],
        compiler_directives={"language_level": "3"},
    )
    print("jwtmint: building the Cython extension jwtmint._speedups", file=sys.stderr)

setup(ext_modules=ext_modules)
