"""No secret is reachable from what jwtmint raises: a URL's password never reaches a
configuration error, and after a malformed or failed HTTP answer the whole exception graph
(cause, context, args, notes, attributes) holds no aiohttp exception, whose request_info
would carry the request's Authorization and DPoP headers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from jwtmint._display import redact_userinfo, shown_url
from jwtmint.errors import ConfigurationError, JwtMintError, TokenRequestError
from jwtmint.testing import Fault, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, RetryPolicy, TokenManager
from jwtmint.tokens._middleware import check_origins

from .conftest import raw_serving, serving, signing_key

PASSWORD = "hunter2-Pa55word"
SECRET = "the client secret, long enough for HS256 keys"
#: a response aiohttp's parser refuses: it raises a ClientResponseError holding request_info
MALFORMED = b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n{}"
NO_RETRIES = RetryPolicy(attempts=1)
TWO_ATTEMPTS = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.01, deadline=5.0)

BAD_URLS = [
    f"htps://user:{PASSWORD}@idp.example/token",  # a scheme typo
    f"https://user:{PASSWORD}@[::1/token",  # unparseable
    f"https://user:{PASSWORD}@idp.example:99999/token",  # a port out of range
    f"user:{PASSWORD}@idp.example/token",  # no scheme at all
    f"https://user:{PASSWORD}/x@idp.example/token",  # a password with a "/" in it
    f"https://user:{PASSWORD}@idp.example/token#top",
    f"http://user:{PASSWORD}@idp.example/token",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("setting", ["token_endpoint", "issuer"])
def test_a_password_in_a_url_never_reaches_the_message(url: str, setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings: dict[str, Any] = {setting: url}
        ClientCredentialsClient("c", client_secret=SECRET, **settings)
    for text in (str(caught.value), repr(caught.value)):
        assert PASSWORD not in text
        assert "***@" in text or "credentials" in text


@pytest.mark.parametrize(
    "resource", [f"//{PASSWORD}@api.example/x", f"https://user:{PASSWORD}@api.example/x#f"]
)
def test_a_password_in_a_resource_never_reaches_the_message(resource: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientCredentialsClient(
            "c", token_endpoint="https://idp.example/token", client_secret=SECRET, resource=resource
        )
    assert PASSWORD not in str(caught.value) and "***@" in str(caught.value)


def test_a_password_in_an_origin_never_reaches_the_message() -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_origins([f"https://user:{PASSWORD}@api.example/path"])
    assert PASSWORD not in str(caught.value) and "***@" in str(caught.value)


@given(
    prefix=st.sampled_from(["https://", "htps://", "//", "", "https:", "HTTPS://", " https://"]),
    user=st.text(alphabet=st.characters(exclude_characters="@"), max_size=8),
    password=st.text(
        alphabet=st.sampled_from("/:?#%\\ \r\n") | st.characters(exclude_characters="@"),
        min_size=6,
    ),
    rest=st.sampled_from(["idp.example/token", "[::1/t", "idp:99999/x?y#z", "h//x@y/z", ""]),
)
@example(prefix="", user="u", password="ab//cdef", rest="idp.example/token")
def test_no_userinfo_survives_redaction(prefix: str, user: str, password: str, rest: str) -> None:
    url = f"{prefix}{user}:{password}@{rest}"
    assume(password not in prefix and password not in rest)
    shown = redact_userinfo(url)
    assert password not in shown and shown.endswith(f"@{rest}" if "@" not in rest else "@y/z")
    assert password not in shown_url(url)


# ---- the exception graph ----------------------------------------------------------------


def graph(error: BaseException) -> Iterator[tuple[str, object]]:
    """Every object reachable from ``error`` through exceptions' cause, context, args, notes
    and attributes, with a path for the failure message."""
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("error", error)]
    while stack:
        path, node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        yield path, node
        if not isinstance(node, BaseException):
            continue
        links: dict[str, Any] = {
            "__cause__": node.__cause__,
            "__context__": node.__context__,
            **{f"args[{i}]": arg for i, arg in enumerate(node.args)},
            **{f"note[{i}]": n for i, n in enumerate(getattr(node, "__notes__", ()))},
            **{name: value for name, value in vars(node).items()},
        }
        stack.extend((f"{path}.{name}", value) for name, value in links.items())


def credentials_sent(requests: list[bytes]) -> set[str]:
    """What the requests carried that must stay secret: Authorization and DPoP header values
    (and their credentials alone), client secrets and assertions."""
    found = {SECRET, base64.b64encode(f"c:{quote_plus(SECRET)}".encode()).decode()}
    for request in requests:
        head, _, body = request.partition(b"\r\n\r\n")
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() in ("authorization", "dpop"):
                found.add(value.strip())
                found.add(value.strip().split(" ")[-1])
        for name, value in parse_qsl(body.decode("ascii")):
            if name in ("client_secret", "client_assertion"):
                found.add(value)
                found.add(quote_plus(value))
    return found


def assert_nothing_reachable(error: BaseException, secrets: set[str]) -> None:
    assert isinstance(error, JwtMintError)
    for path, node in graph(error):
        assert not type(node).__module__.startswith("aiohttp"), f"{path}: {type(node)!r}"
        for text in (str(node), repr(node)):
            leaked = [s for s in secrets if s in text]
            assert not leaked, f"{path} shows a secret: {text[:200]}"


def client_for(url: str, method: str) -> ClientCredentialsClient:
    endpoint = f"{url}/token"
    if method == "private_key_jwt":
        return ClientCredentialsClient(
            "c", token_endpoint=endpoint, private_key=signing_key("ES256")
        )
    if method == "dpop":
        return ClientCredentialsClient(
            "c", token_endpoint=endpoint, client_secret=SECRET, dpop_key=signing_key("ES256")
        )
    return ClientCredentialsClient(
        "c", token_endpoint=endpoint, client_secret=SECRET, auth_method=method
    )


METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "dpop",
]


async def raised(client: ClientCredentialsClient, **kwargs: Any) -> BaseException:
    async with TokenManager({"c": client}, **kwargs) as tokens:
        with pytest.raises(JwtMintError) as caught:
            await tokens.get_token("c")
    return caught.value


@pytest.mark.parametrize("method", METHODS)
async def test_after_a_malformed_answer_no_credential_is_reachable(method: str) -> None:
    received: list[bytes] = []
    async with raw_serving(MALFORMED, received) as url:
        error = await raised(client_for(url, method), retries=TWO_ATTEMPTS)
    assert len(received) == 2
    secrets = credentials_sent(received)
    # the requests' own credentials are among what is looked for
    assert len(secrets) > len(credentials_sent([]))
    assert_nothing_reachable(error, secrets)


async def test_after_a_garbage_page_no_credential_is_reachable() -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("c", secret=SECRET)
        ep.set_fault(Fault(status=200, garbage=True))
        client = ClientCredentialsClient("c", token_endpoint=ep.token_url, client_secret=SECRET)
        error = await raised(client, retries=TWO_ATTEMPTS)
    assert_nothing_reachable(error, credentials_sent([]))


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""
    waiting: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        waiting.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for writer in waiting:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_after_a_timeout_no_credential_is_reachable(silent: str) -> None:
    error = await raised(
        client_for(silent, "client_secret_basic"), retries=NO_RETRIES, request_timeout=0.2
    )
    assert_nothing_reachable(error, credentials_sent([]))


async def test_after_a_refused_connection_no_credential_is_reachable() -> None:
    async with serving() as url:
        pass  # the port is free again: connections are refused
    error = await raised(client_for(url, "client_secret_basic"), retries=NO_RETRIES)
    assert_nothing_reachable(error, credentials_sent([]))


async def test_after_malformed_metadata_no_aiohttp_exception_is_reachable() -> None:
    async with raw_serving(MALFORMED) as url:
        client = ClientCredentialsClient("c", issuer=url, client_secret=SECRET)
        error = await raised(client, retries=NO_RETRIES)
    assert_nothing_reachable(error, credentials_sent([]))


def test_the_graph_walk_finds_what_is_hidden_in_a_suppressed_context() -> None:
    """The check can fail: a secret two links down, in a suppressed context, is found."""
    try:
        try:
            raise RuntimeError(f"Authorization: Basic {SECRET}")
        except RuntimeError:
            raise ConfigurationError("outer") from None
    except ConfigurationError as exc:
        error = exc
    assert error.__suppress_context__
    with pytest.raises(AssertionError, match="shows a secret"):
        assert_nothing_reachable(error, {SECRET})


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
async def test_no_frame_local_of_the_raised_error_holds_the_secret(method: str) -> None:
    # tools that capture locals (Sentry's default, capture_locals=True) walk __traceback__
    # and every chained exception's frames: the exchange's form and headers must not be there
    import base64
    import traceback

    from jwtmint.testing import TokenEndpoint
    from jwtmint.tokens import ClientCredentialsClient, TokenManager

    secret = "tb-locals-secret-0123456789abcdef"
    async with TokenEndpoint() as ep:
        ep.register_client("c", secret="another secret entirely, long enough")
        client = ClientCredentialsClient(
            "c", token_endpoint=ep.token_url, client_secret=secret, auth_method=method
        )
        async with TokenManager({"c": client}, retries=0) as tokens:
            with pytest.raises(TokenRequestError) as caught:
                await tokens.get_token("c")
    shown: list[str] = []
    pending = [traceback.TracebackException.from_exception(caught.value, capture_locals=True)]
    while pending:  # the error and every exception chained to it
        summary = pending.pop()
        for frame in summary.stack:
            if "/tests/" not in frame.filename:  # this test's own frame holds the secret
                shown.extend(f"{name}={value}" for name, value in (frame.locals or {}).items())
        pending.extend(e for e in (summary.__cause__, summary.__context__) if e is not None)
    text = "\n".join(shown)
    assert "post_token_request" not in "".join(  # the exchange's frames are gone
        f.name for f in traceback.TracebackException.from_exception(caught.value).stack
    )
    basic = base64.b64encode(f"c:{secret}".encode()).decode()
    assert secret not in text and basic not in text
