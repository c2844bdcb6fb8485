"""The clients file: named clients and the manager's settings, read from TOML or a mapping.

::

    [manager]                              # optional: TokenManager's settings
    request_timeout = 5

    [invoice]                              # a client, by the name get_token uses
    issuer = "https://idp.example.com"
    private_key = "keys/invoice.pem"       # a path, relative to this file
    scope = "invoice.read"

    [billing]
    client_id = "billing-service"          # default: the table's name
    token_endpoint = "https://idp.example.com/connect/token"
    auth_method = "client_secret_jwt"
    client_secret_env = "BILLING_SECRET"   # secrets by reference only

A client's fields are :class:`ClientCredentialsClient`'s parameters (see ``_config_fields``).
Every mistake raises :class:`ConfigurationError` naming the file (and line, when it can be
found), the client's table and the field; never a secret.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeVar

from ..errors import ConfigurationError
from ._client import ClientCredentialsClient
from ._config_fields import Origin, build_client, kind, suggest
from ._retry import RetryPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the same parser, from PyPI
    import tomli as tomllib

__all__ = [
    "MANAGER_FIELDS",
    "ClientsConfig",
    "ConfigSource",
    "PathName",
    "load_clients",
    "manager_from_config",
    "read_config",
]

_M = TypeVar("_M")

#: a file system path
PathName: TypeAlias = "str | os.PathLike[str]"
#: a clients file's path, or the same settings already parsed (a mapping of tables)
ConfigSource: TypeAlias = "str | os.PathLike[str] | Mapping[str, Any]"

MANAGER_TABLE: Final = "manager"
#: the [manager] table's fields: TokenManager's settings that are plain values
MANAGER_FIELDS: Final = (
    "renewal_buffer",
    "renewal_jitter",
    "request_timeout",
    "retries",
    "default_lifetime",
    "connection_limit",
)
_RETRY_FIELDS: Final = ("attempts", "backoff", "max_backoff", "deadline")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True)
class ClientsConfig:
    """A clients file, read and checked: its clients and the [manager] settings."""

    clients: dict[str, ClientCredentialsClient]
    manager: dict[str, Any]
    origin: Origin


def read_config(
    source: ConfigSource,
    *,
    base_dir: PathName | None = None,
    only: str | None = None,
) -> ClientsConfig:
    """Read and check a clients file (or mapping); see the module docstring.

    Relative paths in it resolve against ``base_dir``: by default the file's directory,
    or the current directory for a mapping. ``only`` builds that one client and leaves the
    others' secrets and keys unread (the command line fetches a token for one client).
    """
    try:
        return _read_config(source, base_dir, only)
    except ConfigurationError as exc:
        error = exc
    # raised bare: the frames of the reading held the file's text, secrets read from
    # variables and files and key passwords, and the errors it caught held more; tools
    # that capture locals (Sentry's default) would send them along with the error
    error.__cause__ = error.__context__ = None
    error.__suppress_context__ = True
    raise error.with_traceback(None)


def client_names(source: ConfigSource, *, base_dir: PathName | None = None) -> list[str]:
    """The clients' table names in a clients file, nothing read or checked but the TOML."""
    try:
        tables = _tables(source, base_dir)[1]
    except ConfigurationError as exc:
        error = exc
    else:
        return sorted(
            str(n) for n, t in tables.items() if isinstance(t, Mapping) and n != MANAGER_TABLE
        )
    error.__cause__ = error.__context__ = None
    error.__suppress_context__ = True
    raise error.with_traceback(None)


def _read_config(
    source: ConfigSource, base_dir: PathName | None, only: str | None
) -> ClientsConfig:
    origin, tables = _tables(source, base_dir)
    if only is not None and (only == MANAGER_TABLE or not isinstance(tables.get(only), Mapping)):
        names = sorted(
            str(n) for n, t in tables.items() if isinstance(t, Mapping) and n != MANAGER_TABLE
        )
        raise ConfigurationError(
            f"{origin.name}: no client {only!r} (it has {', '.join(names) or 'none'})"
            + suggest(str(only), names)
        )
    clients: dict[str, ClientCredentialsClient] = {}
    manager: dict[str, Any] = {}
    for name, table in tables.items():
        if not isinstance(name, str) or not name:
            raise origin.error(
                None, None, f"a table name must be a non-empty string, got {kind(name)}"
            )
        if not isinstance(table, Mapping):
            raise origin.error(
                None,
                name,
                f"is {kind(table)} outside any table: a client's fields go under its [name] "
                f"header, the manager's under [{MANAGER_TABLE}]",
            )
        if name == MANAGER_TABLE:
            manager = _manager_settings(origin, table)
        elif only is None or name == only:
            clients[name] = build_client(origin, name, table, client_id=name)
    if not clients:
        raise ConfigurationError(
            f"{origin.name}: no clients: add a table for each client, such as [invoice] with its "
            "issuer (or token_endpoint) and credentials"
        )
    return ClientsConfig(clients, manager, origin)


def load_clients(
    source: ConfigSource, *, base_dir: PathName | None = None
) -> dict[str, ClientCredentialsClient]:
    """The named clients of a clients file (or mapping), for ``TokenManager(clients)``.

    The whole file is checked, its [manager] table too; every mistake raises
    :class:`~jwtmint.errors.ConfigurationError` naming the file, client and field.
    """
    return read_config(source, base_dir=base_dir).clients


def manager_from_config(
    factory: Callable[..., _M],
    source: ConfigSource,
    *,
    base_dir: PathName | None,
    overrides: Mapping[str, Any],
    only: str | None = None,
) -> _M:
    """``factory(clients, **settings)``: the file's [manager] settings, ``overrides`` winning
    (``only``: as :func:`read_config`)."""
    if "clients" in overrides:
        raise ConfigurationError("from_config reads the clients from the file; drop clients=")
    config = read_config(source, base_dir=base_dir, only=only)
    return factory(config.clients, **{**config.manager, **overrides})


def _tables(source: ConfigSource, base_dir: PathName | None) -> tuple[Origin, Mapping[Any, Any]]:
    if isinstance(source, Mapping):
        where = Path(base_dir) if base_dir is not None else Path.cwd()
        return Origin("the clients mapping", where), source
    if not isinstance(source, str | os.PathLike):
        raise ConfigurationError(
            f"a clients file is a path or a mapping of tables, got {type(source).__name__}"
        )
    path = Path(source)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"clients file {path}: cannot read it: {problem}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: not UTF-8 text (a TOML file is UTF-8)") from None
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages name what is wrong, never the text itself (a secret stays out)
        message = str(exc.args[0]) if exc.args else str(exc)
        position = _TOML_POSITION.search(message)
        if position is None:
            raise ConfigurationError(f"{path}: not valid TOML: {message}") from None
        line, column = position.groups()
        raise ConfigurationError(
            f"{path}:{line}: not valid TOML: {message[: position.start()]} (column {column})"
        ) from None
    where = Path(base_dir) if base_dir is not None else path.parent
    return Origin(str(path), where, text.splitlines()), tables


def _manager_settings(origin: Origin, table: Mapping[str, Any]) -> dict[str, Any]:
    """The [manager] table as TokenManager's keyword arguments, each checked."""

    def fail(field: str, problem: str) -> ConfigurationError:
        return origin.error(MANAGER_TABLE, field, problem)

    settings: dict[str, Any] = {}
    for field, value in table.items():
        if field not in MANAGER_FIELDS:
            raise fail(field, "unknown setting" + suggest(str(field), MANAGER_FIELDS))
        if field == "retries":
            settings[field] = _retries(fail, value)
        elif field == "connection_limit":
            if type(value) is not int or value < 0:
                raise fail(field, f"must be an integer >= 0 (0: no limit), got {_shown(value)}")
            settings[field] = value
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(field, f"must be a number of seconds, got {kind(value)}")
            low_ok = field in ("renewal_buffer", "renewal_jitter")
            if value < 0 or (value == 0 and not low_ok) or value != value or value == float("inf"):
                raise fail(field, f"must be a positive number, got {value}")
            if field == "renewal_jitter" and value > 1:
                raise fail(field, f"is a fraction of renewal_buffer, 0 to 1, got {value}")
            settings[field] = value
    return settings


def _retries(fail: Callable[[str, str], ConfigurationError], value: object) -> int | RetryPolicy:
    """``retries = 2`` (retries after the first attempt) or a table of RetryPolicy fields."""
    if type(value) is int:
        if value < 0:
            raise fail("retries", f"must be >= 0, got {value}")
        return value
    if not isinstance(value, Mapping):
        raise fail("retries", f"must be an integer, or a table of {', '.join(_RETRY_FIELDS)}")
    for name in value:
        if name not in _RETRY_FIELDS:
            raise fail("retries", f"unknown field {name!r}" + suggest(str(name), _RETRY_FIELDS))
    try:
        return RetryPolicy(**value)
    except ConfigurationError as exc:
        raise fail("retries", str(exc)) from None


def _shown(value: object) -> str:
    return str(value) if type(value) is int else kind(value)
