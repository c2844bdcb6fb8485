"""Run panva's oidc-provider (tests/integration/oidc-provider/server.mjs) for a test module.

:func:`start_oidc_provider` registers the given clients, starts ``node server.mjs``,
waits (bounded) for its ``READY <issuer>`` line and yields the issuer; on exit it closes
the server's stdin (the server exits on EOF), then terminates or kills it, and reaps it.
The helpers below build oidc-provider client metadata for each authentication method.
"""

from __future__ import annotations

import itertools
import json
import os
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from jwtmint import SigningKey

__all__ = [
    "REQUIRE_ENV",
    "SERVER_DIR",
    "OidcProviderError",
    "missing_prerequisite",
    "private_key_jwt_client",
    "secret_client",
    "start_oidc_provider",
]

SERVER_DIR = Path(__file__).resolve().parent / "oidc-provider"
SERVER_SCRIPT = SERVER_DIR / "server.mjs"
#: CI sets this to 1: a missing node or node_modules then fails the tests instead of skipping
REQUIRE_ENV = "JWTMINT_REQUIRE_OIDC_PROVIDER"
#: the scopes every test client is registered for; the server also knows api.admin
CLIENT_SCOPE = "api.read api.write"

_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0
_config_numbers = itertools.count()


class OidcProviderError(RuntimeError):
    """The server did not start: its exit status and stderr say why."""


class _SilentStart(OidcProviderError):
    """The server printed no READY line in time (it neither failed nor started)."""


#: starts tried when the server stays silent (a start that fails is not retried)
_STARTS = 2


def missing_prerequisite() -> str | None:
    """Why the server cannot run here (no node, no npm install), or None."""
    if shutil.which("node") is None:
        return "node is not on PATH (the oidc-provider integration tests need Node.js >= 20)"
    if not (SERVER_DIR / "node_modules" / "oidc-provider").is_dir():
        return (
            f"{SERVER_DIR / 'node_modules'} is missing: run "
            "`npm ci --prefix tests/integration/oidc-provider` (make test does)"
        )
    return None


def private_key_jwt_client(
    client_id: str,
    key: SigningKey,
    *,
    scope: str = CLIENT_SCOPE,
    pin_algorithm: bool = True,
    dpop_bound: bool = False,
) -> dict[str, Any]:
    """Client metadata for private_key_jwt with ``key``'s public JWK.

    ``pin_algorithm`` registers token_endpoint_auth_signing_alg = the key's algorithm, so
    that oidc-provider refuses assertions signed with any other. ``dpop_bound`` registers
    ``dpop_bound_access_tokens: true``: the server then refuses a token request without a
    DPoP proof (it needs a server started with ``dpop=True``).
    """
    metadata: dict[str, Any] = {
        "client_id": client_id,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_jwk()]},
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
        "scope": scope,
    }
    if pin_algorithm:
        metadata["token_endpoint_auth_signing_alg"] = key.algorithm
    if dpop_bound:
        metadata["dpop_bound_access_tokens"] = True
    return metadata


def secret_client(
    client_id: str,
    secret: str,
    method: str,
    *,
    scope: str = CLIENT_SCOPE,
    signing_algorithm: str | None = None,
) -> dict[str, Any]:
    """Client metadata for client_secret_basic, client_secret_post or client_secret_jwt."""
    metadata: dict[str, Any] = {
        "client_id": client_id,
        "client_secret": secret,
        "token_endpoint_auth_method": method,
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
        "scope": scope,
    }
    if signing_algorithm is not None:
        metadata["token_endpoint_auth_signing_alg"] = signing_algorithm
    return metadata


@contextmanager
def start_oidc_provider(
    clients: Sequence[Mapping[str, Any]],
    *,
    workdir: Path,
    require_issuer_audience: bool = False,
    access_token_ttl: int = 300,
    dpop: bool = False,
    dpop_require_nonce: bool = False,
    dpop_algorithms: Sequence[str] | None = None,
    timeout: float = _READY_TIMEOUT,
) -> Iterator[str]:
    """Run oidc-provider with ``clients`` registered; yields its issuer (``http://127.0.0.1:N``).

    ``require_issuer_audience`` makes the server accept client assertions only when ``aud``
    is exactly the issuer (oidc-provider alone also takes the token endpoint URL).
    ``dpop`` turns DPoP (RFC 9449) on, with server nonces (sent, and accepted in proofs);
    ``dpop_require_nonce`` refuses a proof without a nonce (``use_dpop_nonce``);
    ``dpop_algorithms`` narrows the proof algorithms the server takes (default: ES256,
    ES384, ES512, PS256, RS256, Ed25519, EdDSA). server.mjs's header says what the server
    then does exactly.
    """
    if not dpop and (dpop_require_nonce or dpop_algorithms is not None):
        raise ValueError("dpop_require_nonce and dpop_algorithms need dpop=True")
    number = next(_config_numbers)
    config_path = workdir / f"oidc-provider-{number}.json"
    stderr_path = workdir / f"oidc-provider-{number}.stderr"
    config = {
        "clients": [dict(client) for client in clients],
        "port": 0,
        "require_issuer_audience": require_issuer_audience,
        "access_token_ttl": access_token_ttl,
        "dpop": dpop,
        "dpop_require_nonce": dpop_require_nonce,
    }
    if dpop_algorithms is not None:
        config["dpop_algorithms"] = list(dpop_algorithms)
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    node = shutil.which("node") or "node"
    for attempt in range(1, _STARTS + 1):
        with (
            open(stderr_path, "wb") as stderr,
            subprocess.Popen(
                [node, str(SERVER_SCRIPT), str(config_path)],
                cwd=SERVER_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=0,
            ) as process,
        ):
            try:
                issuer = _wait_ready(process, timeout, stderr_path)
            except _SilentStart:
                # once in a suite run on a loaded 2-core machine, node printed nothing for
                # 30 s and then started fine alone: a second start, never a third
                if attempt == _STARTS:
                    raise
                continue
            try:
                yield issuer
            finally:
                _stop(process)
            return


def _wait_ready(process: subprocess.Popen[bytes], timeout: float, stderr_path: Path) -> str:
    """The issuer from the server's ``READY <issuer>`` line, read within ``timeout`` seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _failure(
                    f"no READY line within {timeout:.0f} s", process, stderr_path, _SilentStart
                )
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                process.wait(_STOP_TIMEOUT)
                raise _failure(
                    f"exited with status {process.returncode} before READY", process, stderr_path
                )
            received += chunk
    line = received.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    word, _, issuer = line.partition(" ")
    if word != "READY" or not issuer.startswith("http://127.0.0.1:"):
        raise _failure(f"printed {line!r} instead of READY <issuer>", process, stderr_path)
    return issuer


def _failure(
    what: str,
    process: subprocess.Popen[bytes],
    stderr_path: Path,
    kind: type[OidcProviderError] = OidcProviderError,
) -> OidcProviderError:
    _stop(process)
    log = stderr_path.read_text(encoding="utf-8", errors="replace").strip()
    return kind(f"oidc-provider ({SERVER_SCRIPT.name}) {what}; stderr:\n{log or '(empty)'}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Close stdin (the server exits on EOF), else SIGTERM, else SIGKILL; always reap."""
    if process.stdin is not None and not process.stdin.closed:
        with suppress(BrokenPipeError):
            process.stdin.close()
    for escalate in (process.terminate, process.kill):
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            escalate()
        else:
            return
    process.wait()  # SIGKILL: reaped at once
