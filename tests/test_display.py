"""What a server controls reaches messages, logs and reprs escaped and bounded: the display
helper itself, and every server-controlled field a hostile loopback server can fill."""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

import jwtmint
from jwtmint._display import shown, shown_url
from jwtmint.errors import (
    ConfigurationError,
    DiscoveryError,
    InvalidTokenResponseError,
    JwtMintError,
    TokenEndpointError,
    TokenRequestError,
)
from jwtmint.tokens import ClientCredentialsClient, RetryPolicy, TokenManager

from .conftest import raw_serving, serving, signing_key

#: a line a server could use to forge a log line, clear a terminal and hide text behind a
#: bidi override; then half a megabyte
FORGERY = "x\r\n2030-01-01 CRITICAL jwtmint: forged\x1b[2J\x1b[31m\u202egnp.exe\\"
HUGE = FORGERY + "A" * 500_000
#: far above any message jwtmint writes, far below anything the server sent
BOUND = 3000
NO_RETRIES = RetryPolicy(attempts=1)
FAST_RETRIES = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, deadline=5.0)


#: the non-ASCII characters of jwtmint's own wording ("RFC 6749 §5.2")
OWN_WORDING = frozenset("§—µ±")


def assert_displayable(text: str) -> None:
    """Printable ASCII (no CR, LF, ESC, bidi or other control) but for jwtmint's own
    wording, and bounded."""
    assert all(" " <= c <= "~" or c in OWN_WORDING for c in text), text[:300]
    assert len(text) < BOUND, len(text)


# ---- the helper ---------------------------------------------------------------------------


def test_plain_text_is_shown_as_it_is() -> None:
    assert shown("invalid_client") == "invalid_client"
    assert shown("") == ""
    assert shown_url("https://idp.example.com/token") == "'https://idp.example.com/token'"


def test_control_and_non_ascii_characters_become_escapes() -> None:
    assert shown("a\r\nb\tc\x1b[31m\x00\x7f") == "a\\r\\nb\\tc\\x1b[31m\\x00\\x7f"
    assert shown("\u202e\u00e9\U0001f600") == "\\u202e\\xe9\\U0001f600"
    # a backslash is doubled, so a server's literal "\n" is not read as a line break
    assert shown("a\\nb") == "a\\\\nb"
    assert shown("it's", quote=True) == "'it\\'s'"


def test_long_text_is_cut_with_its_length() -> None:
    assert shown("x" * 201) == "x" * 200 + "...(201 chars)"
    assert shown("x" * 200) == "x" * 200
    assert shown("\n" * 150) == "\\n" * 100 + "...(150 chars)"
    huge = shown(HUGE, 300)
    assert huge.endswith(f"...({len(HUGE)} chars)") and len(huge) < 330


def test_what_is_not_a_string_shows_as_its_repr() -> None:
    assert shown(["HS256", None]) == "['HS256', None]"
    assert shown(None) == "None"
    assert shown_url(42) == "42"


@given(st.text(), st.integers(min_value=1, max_value=400), st.booleans())
def test_anything_shows_as_bounded_printable_ascii(text: str, limit: int, quote: bool) -> None:
    out = shown(text, limit, quote=quote)
    assert out.isascii() and out.isprintable()
    assert len(out) <= limit + len(f"...({len(text)} chars)") + 2 * quote


@given(st.text(max_size=60))
def test_escapes_are_exact_python_escapes(text: str) -> None:
    assert ast.literal_eval(shown(text, 1000, quote=True)) == text


# ---- the server's text, end to end ----------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """jwtmint's log records at DEBUG; each must be displayable (checked after the test)."""
    with caplog.at_level(logging.DEBUG, logger="jwtmint"):
        yield caplog
    for record in caplog.get_records("call"):
        assert_displayable(record.getMessage())


def secret_client(url: str, **kwargs: Any) -> ClientCredentialsClient:
    return ClientCredentialsClient(
        "hostile", token_endpoint=f"{url}/token", client_secret="s3cret-of-the-client", **kwargs
    )


async def fetch_error(client: ClientCredentialsClient, retries: RetryPolicy) -> JwtMintError:
    async with TokenManager({"c": client}, retries=retries) as tokens:
        with pytest.raises(JwtMintError) as caught:
            await tokens.get_token("c")
    error = caught.value
    assert_displayable(str(error))
    assert_displayable(repr(error))
    return error


def answering(status: int, body: dict[str, Any]) -> web.RouteDef:
    async def token(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return web.post("/token", token)


async def test_error_fields_are_escaped_in_messages_and_kept_raw_as_attributes(
    logs: pytest.LogCaptureFixture,
) -> None:
    body = {"error": "invalid_request" + FORGERY, "error_description": HUGE, "error_uri": HUGE}
    async with serving(answering(400, body)) as url:
        error = await fetch_error(secret_client(url), NO_RETRIES)
    assert isinstance(error, TokenRequestError)
    assert "CRITICAL jwtmint: forged\\x1b[2J" in str(error)  # shown, but on the same line
    assert (error.error, error.error_description, error.error_uri) == (
        "invalid_request" + FORGERY,
        HUGE,
        HUGE,
    )


async def test_retried_errors_log_escaped(logs: pytest.LogCaptureFixture) -> None:
    body = {"error": "server_error" + FORGERY, "error_description": HUGE}
    async with serving(answering(503, body)) as url:
        error = await fetch_error(secret_client(url), FAST_RETRIES)
    assert isinstance(error, TokenEndpointError) and error.attempts == 3
    assert error.error_description == HUGE
    assert sum("retrying" in r.getMessage() for r in logs.records) == 2


async def test_a_hostile_content_type_is_escaped() -> None:
    page = b"<html>proxy error</html>"
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; x=\x1b[31m\xe2\x80\xae"
        + b"B" * 6000
        + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(page), page)
    )
    async with raw_serving(answer) as url:
        error = await fetch_error(secret_client(url), NO_RETRIES)
    assert isinstance(error, InvalidTokenResponseError)
    assert "text/html" in str(error)


async def test_a_malformed_answer_is_described_escaped() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1\x1b[2J" + b"9" * 6000 + b"\r\n\r\nx"
    async with raw_serving(answer) as url:
        error = await fetch_error(secret_client(url), NO_RETRIES)
    assert isinstance(error, TokenEndpointError)


async def test_token_type_and_scope_show_escaped() -> None:
    async with serving(
        answering(200, {"access_token": "t0k", "token_type": "mac" + "X" * 5000})
    ) as url:
        error = await fetch_error(secret_client(url), NO_RETRIES)
    assert isinstance(error, InvalidTokenResponseError)
    body = {"access_token": "t0k", "token_type": "Bearer", "scope": HUGE}
    async with serving(answering(200, body)) as url, TokenManager({"c": secret_client(url)}) as m:
        token = await m.get_token("c")
    assert token.scope == HUGE
    assert_displayable(repr(token))
    assert_displayable(str(token))


def metadata_route(document: dict[str, Any]) -> web.RouteDef:
    async def metadata(request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        filled = {k: (base if v is None else v) for k, v in document.items()}
        return web.json_response(filled)

    return web.get("/.well-known/openid-configuration", metadata)


async def test_a_lying_issuer_is_shown_escaped(logs: pytest.LogCaptureFixture) -> None:
    route = metadata_route({"issuer": HUGE, "token_endpoint": "https://idp.example/token"})
    async with serving(route) as url:
        client = ClientCredentialsClient("c", issuer=url, client_secret="s3cret-of-the-client")
        error = await fetch_error(client, NO_RETRIES)
    assert isinstance(error, DiscoveryError)
    assert "RFC 8414" in str(error)


async def test_the_servers_algorithm_list_is_shown_escaped(logs: pytest.LogCaptureFixture) -> None:
    route = metadata_route(
        {
            "issuer": None,
            "token_endpoint": "https://idp.example/token",
            "token_endpoint_auth_signing_alg_values_supported": ["HS256", HUGE],
        }
    )
    async with serving(route) as url:
        client = ClientCredentialsClient("c", issuer=url, private_key=signing_key("ES256"))
        error = await fetch_error(client, NO_RETRIES)
    assert isinstance(error, ConfigurationError)
    assert "token_endpoint_auth_signing_alg_values_supported" in str(error)


def test_the_display_helper_is_private_and_the_errors_doc_says_what_is_kept() -> None:
    assert "shown" not in jwtmint.__all__
    doc = TokenRequestError.__doc__ or ""
    assert "as received" in doc and "escape" in doc


def test_configured_urls_are_shown_escaped() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientCredentialsClient("c", token_endpoint="htps://idp\x1b[2J/" + "t" * 5000)
    assert_displayable(str(caught.value))
    assert "htps://idp\\x1b[2J/" in str(caught.value)
