"""The shape of the package: small modules with one stated purpose, no import cycle, and an
error tree that the public facades export whole."""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import jwtmint
import jwtmint.errors
import jwtmint.testing
import jwtmint.tokens

PACKAGE = Path(jwtmint.__file__).parent
README = PACKAGE.parents[1] / "README.md"
MAX_LINES = 450
FACADES: tuple[ModuleType, ...] = (jwtmint, jwtmint.tokens, jwtmint.testing)


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())
#: modules an import can name: the Python ones and the compiled kernel (_speedups.pyx)
IMPORTABLE = set(MODULES) | {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    for path in PACKAGE.rglob("*.pyx")
}


def test_the_walk_sees_the_whole_package() -> None:
    assert {"jwtmint", "jwtmint.tokens", "jwtmint.testing", "jwtmint.errors"} <= set(MODULES)
    assert "jwtmint.tokens._manager" in MODULES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_is_small_and_states_its_purpose_first(name: str) -> None:
    source = MODULES[name].read_text(encoding="utf-8")
    lines = source.count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by concern"
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring, f"{name} has no module docstring"
    first = docstring.splitlines()[0].strip()
    assert len(first) >= 20, f"{name}: the docstring's first line should say what it is for"


def _imports(name: str, path: Path) -> set[str]:
    """Every jwtmint module that ``name`` imports anywhere: at the top, in functions, and
    under ``if TYPE_CHECKING:``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names}
            found.update(submodules)
            if not submodules <= IMPORTABLE:
                # a name defined by ``target`` itself; `from . import _kernels` imports only
                # the module _kernels (the package is its parent, already being imported)
                found.add(target)
    return {module for module in found if module in MODULES and module != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycle_even_under_type_checking() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_adapters_see_a_token_source_not_the_manager() -> None:
    for adapter in ("jwtmint.tokens._middleware", "jwtmint.tokens._httpx"):
        assert "jwtmint.tokens._manager" not in _imports(adapter, MODULES[adapter])


def _readme_exceptions() -> set[str]:
    names = set(re.findall(r"\b([A-Z][A-Za-z]+(?:Error|Timeout))\b", README.read_text()))
    return {name for name in names if not hasattr(builtins, name)}


def test_every_exception_the_readme_names_is_exported_and_under_the_root() -> None:
    named = _readme_exceptions()
    assert {"JwtMintError", "ConfigurationError", "ClosedError", "TokenEndpointTimeout"} <= named
    for name in named:
        assert name in jwtmint.__all__, f"the README names {name}; export it from jwtmint"
        error = getattr(jwtmint, name)
        assert issubclass(error, jwtmint.JwtMintError), name
        assert getattr(jwtmint.errors, name) is error


def test_the_facades_export_the_whole_error_tree_and_nothing_else_raises_outside_it() -> None:
    tree = set(jwtmint.errors.__all__)
    assert tree <= set(jwtmint.__all__)
    token_errors = {
        name
        for name in tree
        if issubclass(getattr(jwtmint.errors, name), jwtmint.TokenRequestError)
        or name in ("ConfigurationError", "UnknownClientError", "ClosedError")
        or name == "ManagerNotRunningError"
    }
    assert token_errors <= set(jwtmint.tokens.__all__)
    for facade in FACADES:
        for name in facade.__all__:
            value = getattr(facade, name)
            if isinstance(value, type) and issubclass(value, BaseException):
                assert issubclass(value, jwtmint.JwtMintError), f"{facade.__name__}.{name}"
                assert value is getattr(jwtmint.errors, name), f"{facade.__name__}.{name}"


def test_closed_and_configuration_errors_are_also_the_builtins_callers_expect() -> None:
    assert issubclass(jwtmint.ConfigurationError, ValueError)
    assert issubclass(jwtmint.ClosedError, RuntimeError)
    assert issubclass(jwtmint.ManagerNotRunningError, jwtmint.ClosedError)


def test_algorithms_are_read_only() -> None:
    with pytest.raises(TypeError):
        jwtmint.ALGORITHMS["none"] = jwtmint.ALGORITHMS["HS256"]  # type: ignore[index,unused-ignore]
    assert "none" not in jwtmint.ALGORITHMS
