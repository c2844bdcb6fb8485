"""A clients file's mistakes never show or keep a secret: key material written inline, a secret
written where its file's path belongs, and the locals of the frames behind the raised error."""

from __future__ import annotations

import json
import secrets
import traceback
from pathlib import Path

import pytest

from jwtmint.errors import ConfigurationError
from jwtmint.tokens import load_clients

from .conftest import signing_key
from .test_config import PASSWORD, SECRET, workdir, write_key

__all__ = ["workdir"]  # the fixture, re-used


def _everything_reachable(error: BaseException) -> str:
    """The messages, reprs of every frame's locals (jwtmint's, not this test's) and the
    chained errors of ``error``."""
    seen: list[str] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None:
            continue
        seen.append(repr(current))
        for frame, _ in traceback.walk_tb(current.__traceback__):
            if frame.f_code.co_filename != __file__:  # this test's own frame holds the input
                seen.extend(repr(value) for value in frame.f_locals.values())
        pending += [current.__cause__, current.__context__]
    return "\n".join(seen)


def test_a_pem_written_inline_is_refused_unshown(workdir: Path) -> None:
    key = signing_key("ES256")
    pem = write_key(workdir / "inline.pem", key).read_text()
    path = workdir / "clients.toml"
    path.write_text(f'[c]\ntoken_endpoint = "https://idp/t"\nprivate_key = """{pem}"""\n')
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    message = str(caught.value)
    assert "[c] private_key: " in message and "never written inline" in message
    body = pem.splitlines()[1]
    assert "BEGIN" not in message and body not in message
    assert body not in _everything_reachable(caught.value)


@pytest.mark.parametrize("field", ["private_key", "dpop_key"])
def test_a_jwk_written_inline_is_refused_unshown(workdir: Path, field: str) -> None:
    jwk = json.dumps({"kty": "EC", "crv": "P-256", "d": "c2VjcmV0IHNjYWxhcg", "x": "a", "y": "b"})
    fields = {"token_endpoint": "https://idp/t", "client_secret_env": "CONFIG_SECRET", field: jwk}
    if field == "private_key":
        del fields["client_secret_env"]
    with pytest.raises(ConfigurationError) as caught:
        load_clients({"c": fields})
    assert "never written inline" in str(caught.value)
    assert "c2VjcmV0IHNjYWxhcg" not in str(caught.value)


def test_a_base64_secret_where_its_path_belongs_is_not_shown(workdir: Path) -> None:
    misplaced = "abc/" + secrets.token_urlsafe(18) + "+x=="
    path = workdir / "clients.toml"
    path.write_text(f'[c]\ntoken_endpoint = "https://idp/t"\nclient_secret_file = "{misplaced}"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    assert "(not shown)" in str(caught.value) and misplaced not in str(caught.value)


def test_a_real_path_that_is_missing_is_shown(workdir: Path) -> None:
    path = workdir / "clients.toml"
    path.write_text('[c]\ntoken_endpoint = "https://idp/t"\nclient_secret_file = "gone.txt"\n')
    with pytest.raises(ConfigurationError, match=r"cannot read .*gone\.txt: No such file"):
        load_clients(path)


def test_the_raised_error_keeps_no_secret_in_its_frames_or_chain(workdir: Path) -> None:
    # the secret and the key password are read before the DPoP key fails to load
    (workdir / "bad-dpop.pem").write_text("not a key")
    path = workdir / "clients.toml"
    path.write_text(
        '[c]\ntoken_endpoint = "https://idp/t"\nclient_secret_env = "CONFIG_SECRET"\n'
        'auth_method = "client_secret_post"\ndpop_key = "bad-dpop.pem"\n'
        '[d]\ntoken_endpoint = "https://idp/t"\nprivate_key = "keys/locked.pem"\n'
        'private_key_password_env = "KEY_PASSWORD"\n'
    )
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    assert "[c] dpop_key" in str(caught.value)
    reachable = _everything_reachable(caught.value)
    assert SECRET not in reachable and PASSWORD not in reachable


def test_an_inline_secret_is_not_kept_by_the_error(workdir: Path) -> None:
    inline = "inline-" + secrets.token_urlsafe(24)
    path = workdir / "clients.toml"
    path.write_text(f'[c]\ntoken_endpoint = "https://idp/t"\nclient_secret = "{inline}"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_clients(path)
    assert "not written inline" in str(caught.value)
    assert inline not in _everything_reachable(caught.value)
