"""The token manager's parts without a network: clients, responses, cache keys, retries."""

from __future__ import annotations

import base64
import copy
import email.utils
import pickle
import re
from pathlib import Path
from urllib.parse import unquote_plus

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from jwtmint.errors import (
    ClosedError,
    ConfigurationError,
    InvalidTokenResponseError,
    JwtMintError,
    ManagerNotRunningError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
    UnknownClientError,
)
from jwtmint.tokens import (
    CacheEntry,
    CacheKey,
    ClientCredentialsClient,
    MemoryTokenCache,
    RetryPolicy,
    Token,
    TokenCache,
    TokenManager,
)
from jwtmint.tokens._client import RESERVED_PARAMETERS
from jwtmint.tokens._discovery import check_metadata, discovery_urls
from jwtmint.tokens._retry import Retry, Stop, parse_retry_after, retrying
from jwtmint.tokens._token import (
    MAX_LIFETIME,
    MIN_LIFETIME,
    parse_error_response,
    parse_token_response,
)

from .conftest import signing_key

ISSUER = "https://idp.example.com"
SECRET = "s" * 40


# ---- ClientCredentialsClient ------------------------------------------------------------


def test_auth_method_is_inferred() -> None:
    keyed = ClientCredentialsClient("a", issuer=ISSUER, private_key=signing_key("ES256"))
    secret = ClientCredentialsClient("b", issuer=ISSUER, client_secret=SECRET)
    assert (keyed.auth_method, secret.auth_method) == ("private_key_jwt", "client_secret_basic")


def test_a_client_without_credentials_must_ask_for_none() -> None:
    # sending no credentials at all is a choice to make, never a default to fall into
    with pytest.raises(ConfigurationError, match="auth_method='none'") as caught:
        ClientCredentialsClient("c", issuer=ISSUER)
    assert "private_key_jwt" in str(caught.value)  # the keyless client of a service, too
    assert ClientCredentialsClient("c", issuer=ISSUER, auth_method="none").auth_method == "none"


def test_a_str_that_names_a_key_file_is_refused_as_key_material(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = signing_key("ES256").key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.chdir(tmp_path)
    name = "invoice-service-signing-key-2025.pem"  # 36 bytes: a valid HS256 secret
    (tmp_path / name).write_bytes(pem)
    for kwargs in (
        {"private_key": name},
        {"dpop_key": name, "auth_method": "none"},
        {"client_secret": name, "auth_method": "client_secret_jwt"},
    ):
        with pytest.raises(ConfigurationError, match=r"pathlib\.Path") as caught:
            ClientCredentialsClient("app", issuer=ISSUER, **kwargs)  # type: ignore[arg-type]
        # no advice to pass a key file's name as a client_secret
        assert "client_secret=" not in str(caught.value) and name not in str(caught.value)
    assert ClientCredentialsClient("app", issuer=ISSUER, private_key=Path(name)).private_key
    # a secret sent as it is (basic, post) is a password, not key material: taken as given
    basic = ClientCredentialsClient("app", issuer=ISSUER, client_secret=name)
    assert basic.client_secret == name


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({}, "token_endpoint= or issuer="),
        ({"issuer": ISSUER, "client_secret": SECRET, "private_key": "KEY"}, "both"),
        ({"issuer": ISSUER, "auth_method": "client_secret_jwt"}, "needs client_secret"),
        ({"issuer": ISSUER, "auth_method": "tls_client_auth"}, "unknown auth_method"),
        ({"issuer": ISSUER, "auth_method": "none", "client_secret": SECRET}, "sends no"),
        ({"issuer": ISSUER, "client_secret": SECRET, "auth_method": "private_key_jwt"}, "signs"),
        ({"issuer": "idp.example.com"}, "absolute https URL"),
        ({"issuer": "http://idp.example.com"}, "plain http"),
        ({"token_endpoint": "https://user:hunter2@idp/token"}, "must not carry credentials"),
        ({"token_endpoint": "https://[::1/t"}, "absolute https URL"),
        ({"token_endpoint": "https://idp:99999/t"}, "absolute https URL"),
        ({"token_endpoint": "https://idp:abc/t"}, "absolute https URL"),
        ({"issuer": ISSUER, "client_secret": b"\xff\xfe"}, "UTF-8"),
        (
            {"issuer": ISSUER, "client_secret": SECRET, "signing_algorithm": "RS256"},
            "signs nothing",
        ),
        (
            {"issuer": ISSUER, "private_key": "K", "signing_algorithm": "none"},
            "none",
        ),
        ({"issuer": ISSUER, "audience": ""}, "audience"),
        ({"token_endpoint": "https://idp/token#x"}, "fragment"),
        ({"issuer": ISSUER, "client_secret": "short", "auth_method": "client_secret_jwt"}, "HS256"),
        (
            {"issuer": ISSUER, "parameters": {"client_id": "x"}, "auth_method": "none"},
            "may not set client_id",
        ),
        (
            {"issuer": ISSUER, "parameters": {"grant_type": "password"}, "auth_method": "none"},
            "grant_type",
        ),
        ({"issuer": ISSUER, "resource": "not-a-uri", "auth_method": "none"}, "RFC 8707"),
        ({"issuer": ISSUER, "resource": "https://api/#frag", "auth_method": "none"}, "RFC 8707"),
        ({"issuer": ISSUER, "assertion_lifetime": 0, "auth_method": "none"}, "assertion_lifetime"),
        ({"issuer": ISSUER, "client_secret": ""}, "non-empty"),
    ],
)
def test_configuration_errors_raise_at_construction(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        ClientCredentialsClient("app", **kwargs)  # type: ignore[arg-type]


def test_urls_credentials_and_audiences() -> None:
    # loopback http is fine (tests, sidecars); elsewhere only with the explicit opt-in
    assert ClientCredentialsClient("a", issuer="http://127.0.0.1:8080", auth_method="none").issuer
    assert ClientCredentialsClient("a", issuer="http://localhost", auth_method="none").issuer
    assert ClientCredentialsClient("a", issuer="http://[::1]:8080", auth_method="none").issuer
    assert ClientCredentialsClient("a", issuer="http://127.0.0.2", auth_method="none").issuer
    for lookalike in ("http://127.attacker.example", "http://127.0.0.1.nip.io/t"):
        with pytest.raises(ConfigurationError, match="plain http"):
            ClientCredentialsClient("a", token_endpoint=lookalike, auth_method="none")
    insecure = ClientCredentialsClient(
        "a", issuer="http://idp.internal", allow_insecure_http=True, auth_method="none"
    )
    assert insecure.allow_insecure_http
    with pytest.raises(ConfigurationError) as caught:
        ClientCredentialsClient(
            "a", token_endpoint="https://user:hunter2@idp/token", auth_method="none"
        )
    assert "hunter2" not in str(caught.value) and caught.value.__context__ is None
    # RFC 7519 §4.1.3: an audience is any StringOrURI
    assert ClientCredentialsClient(
        "a", issuer=ISSUER, audience="urn:example:idp", auth_method="none"
    ).audience


def test_a_non_utf8_secret_never_reaches_an_exception() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientCredentialsClient("a", issuer=ISSUER, client_secret=b"\xffsecret-bytes")
    assert "secret-bytes" not in repr(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    # for client_secret_jwt the bytes are the HMAC key itself: fine
    ClientCredentialsClient(
        "a", issuer=ISSUER, client_secret=b"\xff" * 40, auth_method="client_secret_jwt"
    )


def test_the_clients_mapping_is_read_only() -> None:
    tokens = TokenManager({"a": ClientCredentialsClient("a", issuer=ISSUER, auth_method="none")})
    with pytest.raises(TypeError):
        tokens.clients["b"] = ClientCredentialsClient("b", issuer=ISSUER, auth_method="none")  # type: ignore[index]


def test_tokens_pickle_for_a_shared_cache_tier() -> None:
    entry = CacheEntry(Token("AT", "Bearer", 5.0, "s", {"access_token": "AT", "x": [1]}), 4.0)
    for copy_ in (pickle.loads(pickle.dumps(entry)), copy.deepcopy(entry)):
        assert copy_ == entry and dict(copy_.token.raw) == dict(entry.token.raw)
        assert copy_.token.authorization == "Bearer AT"


def test_a_private_key_that_is_a_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="client_secret_jwt"):
        ClientCredentialsClient("app", issuer=ISSUER, private_key=signing_key("HS256"))


def test_wrong_algorithm_for_the_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ES256"):
        ClientCredentialsClient(
            "app", issuer=ISSUER, private_key=signing_key("RS256"), signing_algorithm="ES256"
        )


def test_basic_credentials_are_form_encoded_before_base64() -> None:
    # RFC 6749 §2.3.1: a ':' in the id or a '+' in the secret must survive the round trip
    client = ClientCredentialsClient("app:1", token_endpoint=ISSUER, client_secret="p+ss wörd:")
    header = client.basic_authorization
    assert header is not None and header.startswith("Basic ")
    decoded = base64.b64decode(header[6:]).decode()
    user, password = decoded.split(":")
    assert (unquote_plus(user), unquote_plus(password)) == ("app:1", "p+ss wörd:")


def test_client_repr_hides_the_secret_and_the_key() -> None:
    key = signing_key("ES256")
    for client in (
        ClientCredentialsClient("a", issuer=ISSUER, client_secret=SECRET),
        ClientCredentialsClient("b", issuer=ISSUER, private_key=key),
    ):
        text = repr(client)
        assert SECRET not in text and "BEGIN" not in text
        assert client.basic_authorization is None or client.basic_authorization not in text
    assert key.fingerprint in repr(ClientCredentialsClient("b", issuer=ISSUER, private_key=key))


def test_scope_lists_and_strings_are_the_same() -> None:
    one = ClientCredentialsClient("a", issuer=ISSUER, scope=["read", "write"], auth_method="none")
    two = ClientCredentialsClient("a", issuer=ISSUER, scope="read write", auth_method="none")
    assert one.scope == two.scope == "read write"


# ---- TokenManager construction ----------------------------------------------------------


def test_manager_configuration_errors() -> None:
    client = ClientCredentialsClient("a", issuer=ISSUER, auth_method="none")
    with pytest.raises(ConfigurationError, match="ClientCredentialsClient"):
        TokenManager({"a": "not a client"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="renewal_buffer"):
        TokenManager({"a": client}, renewal_buffer=-1)
    with pytest.raises(ConfigurationError, match="retries"):
        TokenManager({"a": client}, retries=-1)
    with pytest.raises(ConfigurationError, match="TokenCache"):
        TokenManager({"a": client}, cache=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="get_client_assertion"):
        TokenManager({"a": client}, assertion_service=object())  # type: ignore[arg-type]


async def test_unknown_client_name() -> None:
    async with TokenManager(
        {"a": ClientCredentialsClient("a", issuer=ISSUER, auth_method="none")}
    ) as tokens:
        with pytest.raises(UnknownClientError, match=r"no client named 'b'.*known: 'a'") as caught:
            await tokens.get_token("b")
        assert isinstance(caught.value, LookupError) and isinstance(caught.value, JwtMintError)
        with pytest.raises(UnknownClientError):
            await tokens.get_token("b", scope="x")
        with pytest.raises(UnknownClientError):
            tokens.middleware("b")


async def test_a_manager_that_was_not_started_says_so() -> None:
    tokens = TokenManager(
        {"a": ClientCredentialsClient("a", token_endpoint=ISSUER, auth_method="none")}
    )
    with pytest.raises(ManagerNotRunningError, match="async with"):
        await tokens.get_token("a")
    assert issubclass(ManagerNotRunningError, ClosedError) and issubclass(ClosedError, RuntimeError)


async def test_request_parameters_are_checked() -> None:
    async with TokenManager(
        {"a": ClientCredentialsClient("a", issuer=ISSUER, auth_method="none")}
    ) as tokens:
        with pytest.raises(ConfigurationError, match=r"get_token\('a'\).*client_secret"):
            await tokens.get_token("a", parameters={"client_secret": "x"})


# ---- responses --------------------------------------------------------------------------


def _parse(body: bytes, default: float = 300.0) -> Token:
    return parse_token_response(
        body,
        status=200,
        content_type="application/json",
        now=1000.0,
        requested_scope="asked",
        default_lifetime=default,
        client="c",
    )


def test_token_response_is_parsed() -> None:
    token = _parse(b'{"access_token":"AT","token_type":"bearer","expires_in":"3600","x":1}')
    assert (token.access_token, token.token_type, token.expires_at) == ("AT", "bearer", 4600.0)
    assert token.scope == "asked"  # RFC 6749 §5.1: omitted when it is what was asked
    assert token.authorization == "Bearer AT"
    assert token.raw["x"] == 1
    with pytest.raises(TypeError):
        token.raw["x"] = 2  # type: ignore[index]


def test_missing_expires_in_takes_the_default_lifetime_not_forever() -> None:
    assert _parse(b'{"access_token":"AT","token_type":"Bearer"}', default=120).expires_at == 1120


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"[1,2]",
        b'{"token_type":"Bearer"}',
        b'{"access_token":"","token_type":"Bearer"}',
        b'{"access_token":"AT"}',
        b'{"access_token":"AT","token_type":"Bearer","expires_in":"soon"}',
        b'{"access_token":"AT","token_type":"Bearer","expires_in":0}',
        b'{"access_token":"AT","token_type":"Bearer","expires_in":true}',
        b'{"access_token":"AT","token_type":"Bearer","scope":["a"]}',
        b'{"access_token":"AT\\r\\nX-Injected: 1","token_type":"Bearer"}',
        b'{"access_token":"AT","token_type":"Bearer\\n"}',
    ],
)
def test_garbage_responses_raise(body: bytes) -> None:
    with pytest.raises(InvalidTokenResponseError) as caught:
        _parse(body)
    assert caught.value.status == 200 and "AT" not in str(caught.value)


def test_error_response_keeps_the_rfc_6749_fields() -> None:
    error = parse_error_response(
        b'{"error":"invalid_client","error_description":"bad key","error_uri":"https://e"}',
        status=401,
        content_type="application/json",
        client="c",
    )
    assert error is not None
    assert (error.error, error.error_description, error.error_uri, error.status) == (
        "invalid_client",
        "bad key",
        "https://e",
        401,
    )
    assert "registered public key" in str(error)  # says what to do
    assert parse_error_response(b"nope", status=400, content_type=None, client="c") is None


def test_token_repr_never_shows_the_token() -> None:
    token = Token("very-secret-access-token", "Bearer", 1.0, "s", {"access_token": "x"})
    for text in (repr(token), str(token)):
        assert "very-secret" not in text and token.fingerprint in text


def test_dpop_tokens_use_the_dpop_scheme() -> None:
    assert Token("AT", "dpop", 1.0).authorization == "DPoP AT"
    assert Token("AT", "MAC", 1.0).authorization == "MAC AT"


# ---- cache ------------------------------------------------------------------------------


def _key(
    scope: str | None = None,
    resource: str | list[str] | None = None,
    parameters: dict[str, str | list[str]] | None = None,
    client: ClientCredentialsClient | None = None,
) -> CacheKey:
    """The key the manager builds for a get_token call (client "c" has parameter base=1)."""
    client = client or ClientCredentialsClient(
        "c", issuer=ISSUER, parameters={"base": "1"}, auth_method="none"
    )
    manager = TokenManager({"c": client})
    return manager.token_source("c", scope=scope, resource=resource, parameters=parameters).key


def test_cache_key_covers_scope_resource_and_parameters() -> None:
    base = _key("b a")
    assert base == _key("a b")
    assert base != _key("a")
    assert base != _key("a b", resource="https://api")
    assert base != _key("a b", parameters={"tenant": "1"})
    assert _key(parameters={"tenant": "1"}) != _key(parameters={"tenant": "2"})
    assert _key(resource=["https://b", "https://a"]) == _key(resource=["https://a", "https://b"])
    assert "secret-tenant" not in repr(_key(parameters={"t": "secret-tenant"}))


def test_request_parameters_merge_with_the_clients() -> None:
    assert dict(_key().parameters) == {"base": ("1",)}
    assert dict(_key(parameters={"tenant": "9"}).parameters) == {
        "base": ("1",),
        "tenant": ("9",),
    }
    # the request's value wins over the client's for the same name
    assert dict(_key(parameters={"base": ["2", "3"]}).parameters) == {"base": ("2", "3")}
    assert _key(parameters={"base": "1"}) == _key()


def test_clients_with_one_name_at_two_servers_never_share_a_key() -> None:
    here = ClientCredentialsClient("c", issuer=ISSUER, auth_method="none")
    there = ClientCredentialsClient("c", issuer="https://other-idp.example.com", auth_method="none")
    other_id = ClientCredentialsClient("c2", issuer=ISSUER, auth_method="none")
    keys = {_key(client=c) for c in (here, there, other_id)}
    assert len(keys) == 3


async def test_memory_cache_is_bounded_and_drops_the_soonest_to_expire() -> None:
    cache = MemoryTokenCache(max_entries=3)
    assert isinstance(cache, TokenCache)
    keys = [CacheKey(str(i)) for i in range(4)]
    for i, expiry in enumerate((50.0, 10.0, 90.0)):
        await cache.set(keys[i], CacheEntry(Token(f"t{i}", "Bearer", expiry), expiry))
    await cache.set(keys[3], CacheEntry(Token("t3", "Bearer", 70.0), 70.0))
    assert len(cache) == 3
    assert cache.peek(keys[1]) is None  # expired first: evicted
    assert [await cache.get(k) is not None for k in (keys[0], keys[2], keys[3])] == [True] * 3
    await cache.delete(keys[0])
    assert cache.peek(keys[0]) is None


_names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)


@given(
    scope=st.lists(_names, min_size=1, max_size=5),
    parameters=st.dictionaries(_names, st.lists(_names, min_size=1, max_size=3), max_size=5),
    data=st.data(),
)
def test_cache_key_ignores_order_and_nothing_else(
    scope: list[str], parameters: dict[str, list[str]], data: st.DataObject
) -> None:
    for reserved in ("base", *RESERVED_PARAMETERS):
        parameters.pop(reserved, None)
    shuffled_scope = data.draw(st.permutations(scope))
    shuffled = dict(data.draw(st.permutations(list(parameters.items()))))
    one = _key(" ".join(scope), None, dict(parameters))
    assert one == _key(" ".join(shuffled_scope), None, dict(shuffled))
    if parameters:
        name = next(iter(parameters))
        changed = {**parameters, name: [*parameters[name], "another"]}
        assert one != _key(" ".join(scope), None, dict(changed))


@given(lifetime=st.one_of(st.integers(1, 10**9), st.floats(0.001, 1e9)), as_text=st.booleans())
def test_any_positive_expires_in_round_trips(lifetime: float, as_text: bool) -> None:
    value = repr(lifetime) if as_text else lifetime
    body = orjson.dumps({"access_token": "AT", "token_type": "Bearer", "expires_in": value})
    bounded = min(MAX_LIFETIME, max(MIN_LIFETIME, float(lifetime)))  # between 5 s and a day
    assert _parse(body).expires_at == pytest.approx(1000.0 + bounded)


# ---- retries ----------------------------------------------------------------------------


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7", 0.0) == 7.0
    assert parse_retry_after(None, 0.0) is None
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after("²", 0.0) is None  # a Unicode digit, not delay-seconds
    date = email.utils.formatdate(1000.0 + 30, usegmt=True)
    assert parse_retry_after(date, 1000.0) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(10.0, usegmt=True), 1000.0) == 0.0


@given(attempt=st.integers(1, 30))
def test_backoff_is_full_jitter_below_the_cap(attempt: int) -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=4.0)
    assert 0.0 <= policy.delay(attempt) <= min(4.0, 0.5 * 2 ** (attempt - 1))
    # a Retry-After is waited when it is the longer: the backoff stays the floor
    assert (
        2.5
        <= policy.delay(attempt, retry_after=2.5)
        <= max(2.5, min(4.0, 0.5 * 2 ** (attempt - 1)))
    )


@pytest.mark.parametrize("bad", [{"attempts": 0}, {"backoff": -1}, {"deadline": float("inf")}])
def test_retry_policy_checks_its_values(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_error_tree() -> None:
    assert issubclass(TokenEndpointError, TokenRequestError)
    assert issubclass(TokenEndpointTimeout, TimeoutError)
    assert issubclass(TokenEndpointTimeout, TokenEndpointError)
    assert issubclass(InvalidTokenResponseError, TokenEndpointError)
    assert issubclass(ConfigurationError, ValueError)


# ---- discovery --------------------------------------------------------------------------


def test_discovery_urls_follow_both_specifications() -> None:
    assert discovery_urls("https://idp.example.com") == (
        "https://idp.example.com/.well-known/openid-configuration",
        "https://idp.example.com/.well-known/oauth-authorization-server",
    )
    # OIDC appends; RFC 8414 §3.1 inserts before the path
    assert discovery_urls("https://idp.example.com/tenant/1/") == (
        "https://idp.example.com/tenant/1/.well-known/openid-configuration",
        "https://idp.example.com/.well-known/oauth-authorization-server/tenant/1",
    )


def test_metadata_issuer_must_match() -> None:
    ok = check_metadata(
        ISSUER, "u", b'{"issuer":"%s","token_endpoint":"%s/t"}' % (ISSUER.encode(), ISSUER.encode())
    )
    assert isinstance(ok, dict)
    problem = check_metadata(
        ISSUER, "u", b'{"issuer":"https://evil","token_endpoint":"https://evil/t"}'
    )
    assert isinstance(problem, str) and "RFC 8414" in problem
    assert isinstance(check_metadata(ISSUER, "u", b'{"issuer":"%s"}' % ISSUER.encode()), str)
    assert isinstance(check_metadata(ISSUER, "u", b"<html>"), str)


# ---- the retry runner -------------------------------------------------------------------


async def test_the_final_error_is_built_not_the_caught_one_edited() -> None:
    raised: list[TokenEndpointError] = []

    async def attempt(timeout: float) -> Token:
        error = TokenEndpointError("busy", error="temporarily_unavailable", status=503, client="c")
        error.retry_after = 0.0
        raised.append(error)
        raise Retry(error)

    with pytest.raises(TokenEndpointError) as caught:
        await retrying(attempt, RetryPolicy(attempts=3, backoff=0.0), 1.0)
    final = caught.value
    assert len(raised) == 3 and all(final is not error for error in raised)
    assert [str(error) for error in raised] == ["busy"] * 3  # untouched
    assert [error.attempts for error in raised] == [1, 1, 1]
    assert type(final) is TokenEndpointError and final.attempts == 3
    assert str(final).startswith("busy (gave up after 3 attempts in ")
    assert (final.error, final.status, final.client, final.retry_after) == (
        "temporarily_unavailable",
        503,
        "c",
        0.0,
    )


async def test_a_stop_reports_the_previous_attempt_and_why_no_other_was_made() -> None:
    first = TokenEndpointTimeout("slow", client="c")
    calls = 0

    async def attempt(timeout: float) -> Token:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Retry(first)
        raise Stop(first)  # the second attempt found nothing to authenticate with

    with pytest.raises(TokenEndpointTimeout, match="nothing could authenticate") as caught:
        await retrying(attempt, RetryPolicy(attempts=5, backoff=0.0), 1.0)
    assert caught.value is not first and caught.value.attempts == 1
    assert type(caught.value) is TokenEndpointTimeout and caught.value.client == "c"
    assert str(first) == "slow" and first.attempts == 1


async def test_a_refusal_is_raised_at_once_with_its_attempt_number() -> None:
    calls = 0

    async def attempt(timeout: float) -> Token:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Retry(TokenEndpointError("blip"))
        raise TokenRequestError("no", error="invalid_client", status=401)

    with pytest.raises(TokenRequestError) as caught:
        await retrying(attempt, RetryPolicy(attempts=5, backoff=0.0), 1.0)
    assert calls == 2 and caught.value.attempts == 2 and caught.value.error == "invalid_client"


async def test_a_services_own_error_class_is_raised_as_it_is() -> None:
    class VaultDenied(TokenRequestError):
        def __init__(self, path: str, reason: str) -> None:  # not (message, **attributes)
            super().__init__(f"{path}: {reason}")

    async def attempt(timeout: float) -> Token:
        raise VaultDenied("secret/invoice", "sealed")

    with pytest.raises(VaultDenied) as caught:
        await retrying(attempt, RetryPolicy(), 1.0)
    assert str(caught.value) == "secret/invoice: sealed" and caught.value.attempts == 1


async def test_a_rebuilt_error_keeps_no_frame_of_the_attempt() -> None:
    # the attempt's frames hold the request's form and headers (secrets): tools that capture
    # locals would show them, so the raised error starts where the retry runner raises it
    def parse(form: list[tuple[str, str]]) -> Token:
        raise TokenRequestError("refused", error="invalid_client", status=401)

    async def attempt(timeout: float) -> Token:
        return parse([("client_secret", "s3cret")])

    with pytest.raises(TokenRequestError) as caught:
        await retrying(attempt, RetryPolicy(), 1.0)
    assert "parse" not in [entry.name for entry in caught.traceback]
    context = caught.value.__context__
    assert context is not None and context.__traceback__ is None


@pytest.mark.parametrize("limit", [None, 0, 10])
def test_connection_limit_takes_none_or_a_count(limit: int | None) -> None:
    TokenManager(
        {"a": ClientCredentialsClient("a", issuer=ISSUER, auth_method="none")},
        connection_limit=limit,
    )


@pytest.mark.parametrize("limit", [-1, 2.5, "10", True])
def test_connection_limit_refuses_anything_else(limit: object) -> None:
    with pytest.raises(ConfigurationError, match="connection_limit"):
        TokenManager(
            {"a": ClientCredentialsClient("a", issuer=ISSUER, auth_method="none")},
            connection_limit=limit,  # type: ignore[arg-type]
        )
