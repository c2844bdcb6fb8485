"""One client's settings (a clients-file table, or ``jwtmint token``'s flags) checked and made
into a :class:`ClientCredentialsClient`, every mistake named where the user wrote it.

Secrets and key passwords come only by reference (an environment variable, a file), keys
only by path: a setting's value can then appear in a message without revealing anything,
and none of them ever does for a secret, a password or a key.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from .._algorithms import get_algorithm
from .._display import shown
from .._keys import SigningKey, load_key
from ..errors import ConfigurationError, InvalidKeyError, UnsupportedAlgorithmError
from ._client import (
    AUTH_METHODS,
    ClientCredentialsClient,
    check_parameters,
    check_url,
    normal_resources,
    normal_scope,
)

__all__ = ["CLIENT_FIELDS", "Origin", "build_client", "kind", "suggest"]

_T = TypeVar("_T")

#: the fields of a client's table: ClientCredentialsClient's parameters, with the secret and
#: the key passwords by reference and the keys by path
CLIENT_FIELDS: Final = (
    "client_id",
    "issuer",
    "token_endpoint",
    "auth_method",
    "client_secret_env",
    "client_secret_file",
    "private_key",
    "private_key_kid",
    "private_key_password_env",
    "private_key_password_file",
    "signing_algorithm",
    "audience",
    "scope",
    "resource",
    "parameters",
    "assertion_lifetime",
    "allow_insecure_http",
    "dpop_key",
    "dpop_key_password_env",
    "dpop_key_password_file",
    "dpop_algorithm",
)
#: secrets that are refused when written inline (their value is never read, let alone shown)
_INLINE_SECRETS: Final = ("client_secret", "private_key_password", "dpop_key_password")
_SECRET_METHODS: Final = frozenset(
    {"client_secret_basic", "client_secret_post", "client_secret_jwt"}
)
#: a conventional environment variable name; anything else may be a misplaced secret
_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_KINDS: Final = {str: "a string", bool: "a boolean", int: "an integer", float: "a float"}


def kind(value: object) -> str:
    """What ``value`` is, in TOML's words (never the value itself: it may be a secret)."""
    for python, word in _TOML_KINDS.items():
        if type(value) is python:
            return word
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def suggest(name: str, known: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for the nearest known name (difflib), or nothing."""
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def _table_header(table: str) -> str:
    return f"[{table}]" if _BARE_KEY.fullmatch(table) else f"[{json.dumps(table)}]"


@dataclass(frozen=True)
class Origin:
    """Where settings come from, so that a message can name it: a clients file (``name``
    and its ``lines``, for line numbers), a mapping (``name`` only), or the command line
    (``flags``: field -> the flag that sets it). Relative paths resolve against ``base_dir``."""

    name: str | None
    base_dir: Path
    lines: Sequence[str] = ()
    flags: Mapping[str, str] | None = None

    def label(self, field: str) -> str:
        """How the user spells ``field`` here: itself in a file, its flag on the command line."""
        return field if self.flags is None else self.flags.get(field, field)

    def setting(self, field: str, value: object) -> str:
        """How the user writes ``field`` set to ``value`` here (a TOML line or a flag)."""
        if self.flags is None:
            return f"{field} = {json.dumps(value)}"
        return self.label(field) if value is True else f"{self.label(field)} {value}"

    def path(self, value: str | os.PathLike[str]) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def error(
        self, table: str | None, field: str | None, problem: str, *, labelled: bool = False
    ) -> ConfigurationError:
        """``problem`` prefixed with the file, line, table and field (``labelled``: the
        problem already starts with the field's label)."""
        subject = "" if field is None or labelled else f"{self.label(field)}: "
        if self.name is None:
            return ConfigurationError(subject + problem)
        line = self.line(table, field)
        where = self.name + (f":{line}" if line is not None else "") + ": "
        if table is not None:
            where += f"{_table_header(table)} "
        return ConfigurationError(where + subject + problem)

    def line(self, table: str | None, field: str | None) -> int | None:
        """The line of ``field`` in ``table`` (of its header when ``field`` is None), best
        effort: headers and ``key =`` lines of a plain file; None when not found."""
        current: str | None = None
        for number, text in enumerate(self.lines, 1):
            header = re.match(r'\s*\[\s*(?:"([^"]*)"|([A-Za-z0-9_-]+))\s*\]\s*(?:#.*)?$', text)
            if header is not None:
                current = header.group(1) if header.group(1) is not None else header.group(2)
                if field is None and current == table:
                    return number
                continue
            if (
                field is not None
                and current == table
                and re.match(rf'\s*"?{re.escape(field)}"?\s*=', text)
            ):
                return number
        return None


class _Table:
    """The fields of one table, read one by one; each mistake raises with its place."""

    def __init__(self, origin: Origin, table: str | None, fields: Mapping[str, Any]) -> None:
        self.origin = origin
        self.table = table
        self.fields = fields

    def fail(
        self, field: str | None, problem: str, *, labelled: bool = False
    ) -> ConfigurationError:
        return self.origin.error(self.table, field, problem, labelled=labelled)

    def refuse_inline_and_unknown(self) -> None:
        for name in self.fields:
            if name in _INLINE_SECRETS:
                how = f"{self.origin.label(name + '_env')} or {self.origin.label(name + '_file')}"
                raise self.fail(
                    name, f"secrets are not written inline; give {how} (its value was not read)"
                )
            if name not in CLIENT_FIELDS:
                raise self.fail(name, "unknown field" + suggest(str(name), CLIENT_FIELDS))

    def get(self, field: str, expected: type[_T], words: str) -> _T | None:
        value = self.fields.get(field)
        if value is None:
            return None
        # bool is an int in Python, not in TOML
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise self.fail(field, f"must be {words}, got {kind(value)}")
        return value

    def string(self, field: str) -> str | None:
        value = self.get(field, str, "a string")
        if value is not None and not value:
            raise self.fail(field, "must not be empty")
        return value

    def checked(self, field: str, check: Callable[[Any], _T], words: str) -> _T | None:
        """A value checked by one of ClientCredentialsClient's own normalisers."""
        value = self.fields.get(field)
        if value is None:
            return None
        try:
            return check(value)
        except TypeError:
            raise self.fail(field, f"must be {words}, got {kind(value)}") from None
        except ConfigurationError as exc:
            problem = (
                str(exc).removeprefix(f"{field} ").replace("scope=, resource=", "scope, resource")
            )
            raise self.fail(field, problem) from None

    def path(self, field: str, words: str) -> Path | None:
        value = self.fields.get(field)
        if value is None:
            return None
        if not isinstance(value, str | os.PathLike) or not str(value):
            raise self.fail(field, f"must be {words}, got {kind(value)}")
        if _looks_inline(str(value)):
            # a PEM, a JWK or a pasted secret where its file's path belongs: never echoed
            raise self.fail(
                field,
                f"must be {words}; what is written there looks like the key or secret itself, "
                "which is never written inline: put it in a file and name the file (the value "
                "is not shown)",
            )
        return self.origin.path(value)

    def url(self, field: str, insecure: bool) -> str | None:
        value = self.string(field)
        if value is None:
            return None
        hint = self.origin.setting("allow_insecure_http", True)
        try:
            return check_url(self.origin.label(field), value, allow_http=insecure, hint=hint)
        except ConfigurationError as exc:
            raise self.fail(field, str(exc), labelled=True) from None

    def algorithm(self, field: str) -> str | None:
        value = self.string(field)
        if value is not None:
            try:
                get_algorithm(value)
            except UnsupportedAlgorithmError as exc:
                raise self.fail(field, str(exc)) from None
        return value

    def reference(self, stem: str) -> tuple[str | bytes | None, str | None]:
        """The secret named by ``<stem>_env`` or ``<stem>_file``, and which field named it."""
        env, file = f"{stem}_env", f"{stem}_file"
        if env in self.fields and file in self.fields:
            both = f"{self.origin.label(env)} or {self.origin.label(file)}"
            raise self.fail(env, f"give {both}, not both")
        variable = self.string(env)
        if variable is not None:
            value = os.environ.get(variable)
            if not value:
                # the secret itself, written where its variable's name belongs, stays unshown
                name = variable if _VARIABLE.fullmatch(variable) else "it names (not shown)"
                state = "is not set" if value is None else "is empty"
                raise self.fail(env, f"the environment variable {name} {state}")
            return value, env
        path = self.path(file, "a path (a string)")
        if path is None:
            return None, None
        try:
            data = path.read_bytes()
        except OSError as exc:
            # a secret written where its file's path belongs shows only as a path that could
            # be one: a file name with a "/" or "." in a directory that exists (base64 has
            # "/" and a JWT ".", but their "directories" do not exist)
            raw = str(self.fields[file])
            plausible = ("/" in raw or "." in raw) and path.parent.is_dir()
            shown_path = path if plausible else "the file it names (not shown)"
            problem = exc.strerror or type(exc).__name__
            raise self.fail(file, f"cannot read {shown_path}: {problem}") from None
        # editors end a file with a newline; the secret does not
        data = data.removesuffix(b"\n").removesuffix(b"\r")
        if not data:
            raise self.fail(file, f"{path} is empty")
        return data, file

    def key(self, field: str, *, kid: str | None = None) -> SigningKey | None:
        """The private key in the file ``field`` names, opened with its password if any."""
        password, password_field = self.reference(f"{field}_password")
        path = self.path(field, "a path to the key file (a string)")
        if path is None:
            if password_field is not None or kid is not None:
                which = password_field or f"{field}_kid"
                raise self.fail(which, f"is for {self.origin.label(field)}, which is not given")
            return None
        try:
            return load_key(path, password=password, kid=kid)
        except OSError as exc:
            raise self.fail(
                field, f"cannot read {path}: {exc.strerror or type(exc).__name__}"
            ) from None
        except InvalidKeyError as exc:
            # the loader's advice is for its Python callers; a file's user sets fields
            label = self.origin.label
            passwords = f"{label(field + '_password_env')} or {label(field + '_password_file')}"
            problem = str(exc).replace("pass password=", f"give {passwords}")
            problem = problem.partition("; if they are an HMAC secret")[0]
            raise self.fail(field, f"{path}: {problem}") from None

    def credentials(self, method: str | None, secret: str | None, has_key: bool) -> None:
        """The method, secret and key agree (ClientCredentialsClient checks this too, in
        Python's words; here it is said in the user's)."""
        label, setting = self.origin.label, self.origin.setting
        secrets = f"{label('client_secret_env')} or {label('client_secret_file')}"
        if secret is not None and has_key:
            key = label("private_key")
            raise self.fail(secret, f"a client authenticates with a secret or {key}, not both")
        if method is None:
            if secret is None and not has_key:
                key, public = label("private_key"), setting("auth_method", "none")
                raise self.fail(
                    None,
                    f"no credentials: give {key} (private_key_jwt) or {secrets} (a client "
                    f"secret), or {public} for a client that sends only its client id",
                )
            return
        if method in _SECRET_METHODS and secret is None:
            raise self.fail("auth_method", f"{method} needs a client secret: give {secrets}")
        if method == "none" and (secret is not None or has_key):
            raise self.fail("auth_method", "none sends no credentials; drop the secret or key")
        if method != "private_key_jwt" and has_key:
            raise self.fail("private_key", f"is for private_key_jwt, not {method}")
        if method == "private_key_jwt" and secret is not None:
            key = label("private_key")
            raise self.fail(secret, f"private_key_jwt signs with {key}, not a client secret")


def _looks_inline(value: str) -> bool:
    """Whether a path field holds key material or a secret: PEM armour, a JSON object, more
    than one line, or longer than any path a system takes (PATH_MAX is 4,096)."""
    return (
        "-----BEGIN" in value
        or value.lstrip().startswith("{")
        or "\n" in value
        or "\r" in value
        or len(value) > 4096
    )


def build_client(
    origin: Origin, table: str | None, fields: Mapping[str, Any], *, client_id: str | None = None
) -> ClientCredentialsClient:
    """The client ``fields`` describe (``client_id`` when the fields give none), or
    ConfigurationError naming ``origin``, ``table`` and the field."""
    t = _Table(origin, table, fields)
    t.refuse_inline_and_unknown()
    insecure = t.get("allow_insecure_http", bool, "true or false") or False
    chosen_id = t.string("client_id") or client_id
    if chosen_id is None:
        raise t.fail("client_id", "missing")
    token_endpoint = t.url("token_endpoint", insecure)
    issuer = t.url("issuer", insecure)
    if token_endpoint is None and issuer is None:
        where = f"{origin.label('token_endpoint')} or {origin.label('issuer')}"
        raise t.fail(None, f"give {where} (for discovery)")
    method = t.string("auth_method")
    if method is not None and method not in AUTH_METHODS:
        methods = sorted(AUTH_METHODS)
        raise t.fail(
            "auth_method",
            f"unknown method {shown(method, quote=True)}; use one of {', '.join(methods)}"
            + suggest(method, methods),
        )
    secret, secret_field = t.reference("client_secret")
    t.credentials(method, secret_field, fields.get("private_key") is not None)
    private_key = t.key("private_key", kid=t.string("private_key_kid"))
    audience = t.string("audience")
    lifetime = t.get("assertion_lifetime", int, "an integer of seconds")
    if lifetime is not None and not 1 <= lifetime <= 3600:
        raise t.fail("assertion_lifetime", f"must be 1 to 3600 seconds, got {lifetime}")
    parameters = fields.get("parameters")
    t.checked("parameters", _parameters, "a table of names to strings or arrays of strings")
    scope = t.checked("scope", _scope, "a string or an array of strings")
    resource = t.checked("resource", _resources, "a string or an array of strings")
    signing_algorithm = t.algorithm("signing_algorithm")
    signs = method or ("private_key_jwt" if private_key is not None else "client_secret_basic")
    if signing_algorithm is not None and signs not in ("private_key_jwt", "client_secret_jwt"):
        raise t.fail("signing_algorithm", f"is for client assertions; {signs} signs nothing")
    dpop_key, dpop_algorithm = t.key("dpop_key"), t.algorithm("dpop_algorithm")
    if dpop_algorithm is not None and dpop_key is None:
        raise t.fail("dpop_algorithm", f"is for {origin.label('dpop_key')}, which is not given")
    try:
        return ClientCredentialsClient(
            chosen_id,
            token_endpoint=token_endpoint,
            issuer=issuer,
            client_secret=secret,
            private_key=private_key,
            auth_method=method,
            signing_algorithm=signing_algorithm,
            audience=audience,
            scope=scope,
            resource=resource,
            parameters=parameters,
            allow_insecure_http=insecure,
            dpop_key=dpop_key,
            dpop_algorithm=dpop_algorithm,
            # unset: the client's own default, not a copy of it here
            **({} if lifetime is None else {"assertion_lifetime": lifetime}),
        )
    except ConfigurationError as exc:
        # the checks that span fields (a key that cannot sign with signing_algorithm, an
        # HMAC secret too short for client_secret_jwt, ...): the client says which
        raise t.fail(None, str(exc)) from None


def _scope(value: object) -> str | None:
    if not isinstance(value, str | list):
        raise TypeError
    return normal_scope(value)


def _resources(value: object) -> tuple[str, ...]:
    if not isinstance(value, str | list):
        raise TypeError
    return normal_resources(value)


def _parameters(value: object) -> object:
    if not isinstance(value, Mapping):
        raise TypeError
    return check_parameters(value)
