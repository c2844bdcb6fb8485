"""Declares the optional Cython extension; everything else is in pyproject.toml.

JWTMINT_NO_EXTENSIONS=1 builds the pure-Python package only. Without it, a
failed compile is an error: a silent fall back to the slow path is a bug.
The extension links OpenSSL's libcrypto for HMAC when its headers are found
(Debian: libssl-dev), and otherwise computes HMAC with hashlib, as the pure
twin does; JWTMINT_NO_OPENSSL=1 forces the latter.
"""

import os
import sys
import tempfile

from setuptools import Extension, setup

NO_EXTENSIONS = bool(os.environ.get("JWTMINT_NO_EXTENSIONS"))


def _have_openssl() -> bool:
    """Whether a program using OpenSSL's SHA functions compiles and links here."""
    if os.environ.get("JWTMINT_NO_OPENSSL"):
        return False
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as handle:
            handle.write(
                "#define OPENSSL_SUPPRESS_DEPRECATED\n#include <openssl/sha.h>\n"
                "int probe(void) { SHA256_CTX c; unsigned char d[32];"
                " SHA256_Init(&c); SHA256_Final(d, &c); return d[0]; }\n"
            )
        try:
            # compiled and linked as a shared object, as the extension will be
            objects = compiler.compile([source], output_dir=tmp, extra_preargs=["-fPIC"])
            compiler.link_shared_object(
                objects, os.path.join(tmp, "probe.so"), libraries=["crypto"]
            )
        except Exception:
            return False
    return True


if NO_EXTENSIONS:
    ext_modules = []
    print(
        "jwtmint: building the pure-Python package (JWTMINT_NO_EXTENSIONS is set)", file=sys.stderr
    )
else:
    from Cython.Build import cythonize

    openssl = _have_openssl()
    ext_modules = cythonize(
        [
            Extension(
                "jwtmint._speedups",
                ["src/jwtmint/_speedups.pyx"],
                include_dirs=["src/jwtmint"],
                define_macros=[("JWTMINT_HAVE_OPENSSL", "1")] if openssl else [],
                libraries=["crypto"] if openssl else [],
                extra_compile_args=["-O3"],
            )
        ],
        compiler_directives={"language_level": "3"},
    )
    print(
        "jwtmint: building the Cython extension jwtmint._speedups, HMAC via "
        + ("OpenSSL libcrypto" if openssl else "hashlib (no OpenSSL headers found)"),
        file=sys.stderr,
    )

setup(ext_modules=ext_modules)
