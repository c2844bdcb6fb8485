"""Which kernel is active, and the guard that the compiled one really loaded.

A silent fall back to the pure-Python twin is a bug: ``make test`` sets
``JWTMINT_REQUIRE_EXTENSIONS=1`` so that a missing or broken extension fails
the run instead of making it slow.
"""

from __future__ import annotations

import inspect
import os
import platform
import re
import subprocess
import sys
from types import ModuleType

import pytest

import jwtmint
from jwtmint import _kernels, _pure

REQUIRE = bool(os.environ.get("JWTMINT_REQUIRE_EXTENSIONS"))
DISABLED = bool(os.environ.get("JWTMINT_NO_EXTENSIONS"))
CPYTHON = platform.python_implementation() == "CPython"


def _speedups() -> ModuleType | None:
    return _kernels.load_speedups()


def test_exported_flags_agree_with_the_active_kernel() -> None:
    kernel = _kernels.kernel
    assert kernel in (_pure, _speedups())
    assert jwtmint.NO_EXTENSIONS is _kernels.NO_EXTENSIONS
    assert (kernel is _pure) == jwtmint.NO_EXTENSIONS
    assert jwtmint.IMPLEMENTATION == kernel.IMPLEMENTATION
    assert ("py" if jwtmint.NO_EXTENSIONS else "c") == jwtmint.IMPLEMENTATION
    assert "NO_EXTENSIONS" in jwtmint.__all__
    assert "IMPLEMENTATION" in jwtmint.__all__


def test_extension_is_required_when_asked() -> None:
    """Fails (never skips) under JWTMINT_REQUIRE_EXTENSIONS unless the C kernel is active."""
    if not REQUIRE:
        pytest.skip("JWTMINT_REQUIRE_EXTENSIONS is not set (make test sets it)")
    speedups = _speedups()
    assert speedups is not None, (
        "JWTMINT_REQUIRE_EXTENSIONS is set but jwtmint._speedups does not import: "
        "build it with `pip install -e .` (Cython and a C compiler needed)"
    )
    assert not DISABLED, "JWTMINT_REQUIRE_EXTENSIONS and JWTMINT_NO_EXTENSIONS are both set"
    assert _kernels.kernel is speedups
    assert jwtmint.IMPLEMENTATION == "c"
    assert jwtmint.NO_EXTENSIONS is False


def test_no_silent_fallback_when_the_extension_is_built() -> None:
    speedups = _speedups()
    if speedups is None:
        if REQUIRE:
            pytest.fail("JWTMINT_REQUIRE_EXTENSIONS is set but the C extension is not built")
        pytest.skip("C extension not built")
    if DISABLED or not CPYTHON:
        assert _kernels.kernel is _pure
        assert jwtmint.NO_EXTENSIONS
    else:
        assert _kernels.kernel is speedups, "the extension imports but the pure twin is in use"
        assert jwtmint.IMPLEMENTATION == "c"
        assert not jwtmint.NO_EXTENSIONS


def test_load_speedups_returns_none_when_the_import_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes the import raise ImportError, as a missing .so
    # does; the package attribute must go too, or `from . import` finds it.
    monkeypatch.setitem(sys.modules, "jwtmint._speedups", None)
    monkeypatch.delattr(jwtmint, "_speedups", raising=False)
    assert _kernels.load_speedups() is None


def _run(code: str, **env: str | None) -> str:
    environ = dict(os.environ)
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


PRINT_FLAGS = "import jwtmint; print(jwtmint.NO_EXTENSIONS, jwtmint.IMPLEMENTATION)"


def test_environment_variable_selects_the_pure_twin() -> None:
    assert _run(PRINT_FLAGS, JWTMINT_NO_EXTENSIONS="1") == "True py"


def test_without_the_variable_the_extension_is_used_when_built() -> None:
    expected = "False c" if _speedups() is not None and CPYTHON else "True py"
    assert _run(PRINT_FLAGS, JWTMINT_NO_EXTENSIONS=None) == expected
    # an empty value counts as unset
    assert _run(PRINT_FLAGS, JWTMINT_NO_EXTENSIONS="") == expected


def test_pure_twin_in_a_subprocess_still_signs() -> None:
    code = (
        "import jwtmint, jwt;"
        "k = jwtmint.generate_key('HS256');"
        "t = jwtmint.AssertionSigner(k, 'c', 'https://a').mint();"
        "print(jwt.decode(t, k.key, algorithms=['HS256'], audience='https://a')['iss'],"
        " repr(jwtmint.AssertionSigner(k, 'c', 'https://a')).split('implementation=')[1])"
    )
    assert _run(code, JWTMINT_NO_EXTENSIONS="1") == "c 'py')"


# --------------------------------------------------------------------------- same API


def _public_callables(module: ModuleType) -> set[str]:
    return {
        name
        for name in dir(module)
        if not name.startswith("_")
        and callable(getattr(module, name))
        and not isinstance(getattr(module, name), type)
    }


def _doc_parameters(doc: str | None, name: str) -> list[str]:
    """Parameter names from an embedsignature first line: ``f(bytes a, int b, c)``."""
    assert doc, f"{name} has no docstring"
    match = re.match(rf"{name}\((.*?)\)", doc.splitlines()[0])
    assert match, f"{name}'s docstring does not start with its signature: {doc!r}"
    names = []
    for part in match.group(1).split(","):
        declaration = part.split("=")[0].strip()
        if declaration:
            names.append(declaration.split()[-1].lstrip("*"))
    return names


def test_pure_twin_all_lists_its_public_names() -> None:
    assert set(_pure.__all__) == _public_callables(_pure) | {"IMPLEMENTATION"}
    assert _pure.IMPLEMENTATION == "py"


def test_both_kernels_export_the_same_names_and_parameters() -> None:
    speedups = _speedups()
    if speedups is None:
        if REQUIRE:
            pytest.fail("JWTMINT_REQUIRE_EXTENSIONS is set but the C extension is not built")
        pytest.skip("C extension not built")
    assert speedups.IMPLEMENTATION == "c"
    functions = sorted(set(_pure.__all__) - {"IMPLEMENTATION"})
    assert _public_callables(speedups) == set(functions)
    for name in functions:
        pure_params = list(inspect.signature(getattr(_pure, name)).parameters)
        compiled = getattr(speedups, name)
        assert _doc_parameters(compiled.__doc__, name) == pure_params, name
        assert list(inspect.signature(compiled).parameters) == pure_params, name
        # the docstrings (past the embedded signature) are the same text
        pure_doc = inspect.getdoc(getattr(_pure, name)) or ""
        assert pure_doc.splitlines()[0] in compiled.__doc__, name
        compiled_doc = inspect.cleandoc(compiled.__doc__.split("\n", 1)[1])
        assert compiled_doc == pure_doc, name  # each describes the function, not the other module


def test_the_openssl_hmac_is_built_when_ci_asks_for_it() -> None:
    # .ci/run installs OpenSSL's headers and sets this: the C HMAC must not silently
    # fall back to hashlib there
    if not os.environ.get("JWTMINT_REQUIRE_OPENSSL_HMAC"):
        pytest.skip("JWTMINT_REQUIRE_OPENSSL_HMAC is not set (.ci/run sets it)")
    speedups = _speedups()
    assert speedups is not None, "the C extension is not built"
    assert speedups.HMAC_BACKEND == "openssl"
