"""DPoP end to end (RFC 9449): the manager, the aiohttp middleware and httpx auth against
``jwtmint.testing``'s DPoP-checking token endpoint and ``/api``, which verify every proof
with their own JOSE code; proofs are also checked here with PyJWT."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import httpx
import jwt
import pytest
from aiohttp import web

import jwtmint
from jwtmint.errors import InvalidTokenResponseError, TokenEndpointTimeout, TokenRequestError
from jwtmint.testing import RedisServer, TokenEndpoint
from jwtmint.tokens import ClientCredentialsClient, RedisTokenCache, Token, TokenManager

from .conftest import TOKEN_CLIENT_SECRET, serving, signing_key

DPOP_ALGORITHMS = ["ES256", "PS256", "EdDSA"]


def _ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def _secret_client(token_endpoint: str) -> ClientCredentialsClient:
    """Client "c": a secret, an ES256 DPoP key, the given token endpoint."""
    return ClientCredentialsClient(
        "c",
        token_endpoint=token_endpoint,
        client_secret="s" * 32,
        dpop_key=jwtmint.generate_key("ES256"),
    )


async def _issue_dpop_token(request: web.Request) -> web.Response:
    return web.json_response({"access_token": "t", "token_type": "DPoP", "expires_in": 60})


def _verified(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The proof's header and claims, its signature checked by PyJWT with the embedded key."""
    header = jwt.get_unverified_header(proof)
    public = jwt.PyJWK(header["jwk"], algorithm=header["alg"])
    claims = jwt.decode(proof, public.key, algorithms=[header["alg"]])
    return header, claims


@pytest.fixture
async def dpop_endpoint() -> AsyncIterator[TokenEndpoint]:
    async with TokenEndpoint(dpop_nonce=True) as ep:
        ep.register_client("es", public_key=signing_key("ES256"), dpop_bound_access_tokens=True)
        yield ep


def _client(ep: TokenEndpoint, dpop_key: jwtmint.SigningKey | None, **extra: Any) -> Any:
    return ClientCredentialsClient(
        "es",
        issuer=ep.issuer,
        private_key=signing_key("ES256"),
        scope="api",
        dpop_key=dpop_key,
        **extra,
    )


@pytest.mark.parametrize("algorithm", DPOP_ALGORITHMS)
async def test_a_dpop_client_gets_a_token_bound_to_its_key(algorithm: str) -> None:
    dpop_key = jwtmint.generate_key(algorithm)
    async with TokenEndpoint() as ep:
        ep.register_client("es", public_key=signing_key("ES256"), dpop_bound_access_tokens=True)
        client = _client(ep, dpop_key)
        async with TokenManager({"es": client}) as tokens:
            token = await tokens.get_token("es")
        assert token.token_type == "DPoP"
        assert token.authorization == f"DPoP {token.access_token}"
        info = ep.token_info(token.access_token)
        assert info is not None and info["cnf"]["jkt"] == client.dpop_jkt
        assert client.dpop_jkt == jwtmint.jwk_thumbprint(dpop_key.public_jwk())
        (request,) = ep.requests
        assert request.dpop is not None and request.dpop.private_jwk_members == ()
        assert request.dpop.claims is not None
        assert request.dpop.claims["htm"] == "POST"
        assert request.dpop.claims["htu"] == ep.token_url
        assert "ath" not in request.dpop.claims  # no token yet at the token endpoint


async def test_a_nonce_challenge_is_met_once_with_a_new_proof_and_a_new_assertion(
    dpop_endpoint: TokenEndpoint,
) -> None:
    ep = dpop_endpoint
    async with TokenManager({"es": _client(ep, jwtmint.generate_key("ES256"))}) as tokens:
        token = await tokens.get_token("es")
        stats = tokens.stats()
    assert token.token_type == "DPoP"
    first, second = ep.requests
    assert (first.status, first.outcome) == (400, "use_dpop_nonce")
    assert second.status == 200
    assert first.dpop is not None and second.dpop is not None
    assert first.dpop.claims is not None and second.dpop.claims is not None
    assert "nonce" not in first.dpop.claims
    assert second.dpop.claims["nonce"] == ep.dpop_nonce
    assert first.dpop.claims["jti"] != second.dpop.claims["jti"]  # a new proof
    assert first.jti != second.jti  # and a new client assertion (Duende foss#328)
    assert stats.attempts == 2 and stats.dpop_nonces >= 1


async def test_the_nonce_is_kept_so_later_requests_need_no_challenge(
    dpop_endpoint: TokenEndpoint,
) -> None:
    ep = dpop_endpoint
    async with TokenManager({"es": _client(ep, jwtmint.generate_key("ES256"))}) as tokens:
        await tokens.get_token("es")
        await tokens.get_token("es", force_renewal=True)
    assert [r.status for r in ep.requests] == [400, 200, 200]


async def test_a_rotated_nonce_is_picked_up(dpop_endpoint: TokenEndpoint) -> None:
    ep = dpop_endpoint
    async with TokenManager({"es": _client(ep, jwtmint.generate_key("ES256"))}) as tokens:
        await tokens.get_token("es")
        ep.rotate_dpop_nonce()
        ep.rotate_dpop_nonce()  # the nonce jwtmint holds is now two generations old
        await tokens.get_token("es", force_renewal=True)
        await tokens.get_token("es", force_renewal=True)
    statuses = [r.status for r in ep.requests]
    assert statuses == [400, 200, 400, 200, 200]
    nonces = [r.dpop.claims.get("nonce") for r in ep.requests if r.dpop and r.dpop.claims]
    assert nonces[3] == nonces[4] == ep.dpop_nonce != nonces[1]


async def test_a_server_that_challenges_forever_gets_one_retry_per_attempt() -> None:
    async with TokenEndpoint(dpop_nonce=True, dpop_nonce_lifetime=1e-9) as ep:
        # every nonce is stale by the time it comes back
        ep.register_client("es", public_key=signing_key("ES256"))
        client = _client(ep, jwtmint.generate_key("ES256"))
        async with TokenManager({"es": client}, retries=0) as tokens:
            with pytest.raises(TokenRequestError) as caught:
                await tokens.get_token("es")
    assert caught.value.error == "use_dpop_nonce"
    assert len(ep.requests) == 2


def _keyless(ep: TokenEndpoint, dpop_algorithm: str) -> ClientCredentialsClient:
    """Client "ext": private_key_jwt with no key of its own (assertions come from outside)."""
    return ClientCredentialsClient(
        "ext",
        issuer=ep.issuer,
        auth_method="private_key_jwt",
        dpop_key=jwtmint.generate_key(dpop_algorithm),
    )


async def test_a_caller_assertion_is_never_sent_twice_for_a_nonce() -> None:
    key = signing_key("ES256")
    async with TokenEndpoint(dpop_nonce=True) as ep:
        ep.register_client("ext", public_key=key)
        client = _keyless(ep, "EdDSA")
        assertion = jwtmint.AssertionSigner(key, "ext", ep.issuer).client_assertion()
        async with TokenManager({"ext": client}) as tokens:
            with pytest.raises(TokenRequestError, match="is sent once") as caught:
                await tokens.get_token("ext", client_assertion=assertion)
    assert caught.value.error == "use_dpop_nonce"
    assert len(ep.requests) == 1  # not replayed: a reused jti would be refused anyway


async def test_a_bound_client_without_a_dpop_key_gets_the_servers_refusal() -> None:
    async with TokenEndpoint() as ep:
        ep.register_client("es", public_key=signing_key("ES256"), dpop_bound_access_tokens=True)
        async with TokenManager({"es": _client(ep, None)}) as tokens:
            with pytest.raises(TokenRequestError) as caught:
                await tokens.get_token("es")
    assert caught.value.error in ("invalid_grant", "invalid_dpop_proof")


async def test_a_proof_the_server_refuses_surfaces_with_its_code() -> None:
    async with TokenEndpoint(dpop_algorithms=["ES256"]) as ep:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": _client(ep, jwtmint.generate_key("EdDSA"))}) as tokens:
            with pytest.raises(TokenRequestError, match="dpop_signing_alg") as caught:
                await tokens.get_token("es")
    assert caught.value.error == "invalid_dpop_proof" and caught.value.status == 400


async def test_a_dpop_token_for_a_client_without_a_dpop_key_is_refused() -> None:
    async with serving(web.post("/token", _issue_dpop_token)) as url:
        client = ClientCredentialsClient("c", token_endpoint=f"{url}/token", client_secret="s" * 32)
        async with TokenManager({"c": client}, retries=0) as tokens:
            with pytest.raises(InvalidTokenResponseError, match="dpop_key"):
                await tokens.get_token("c")


async def test_tokens_of_two_dpop_keys_are_cached_apart(dpop_endpoint: TokenEndpoint) -> None:
    ep = dpop_endpoint
    one = _client(ep, jwtmint.generate_key("ES256"))
    two = _client(ep, jwtmint.generate_key("ES256"))
    async with TokenManager({"one": one, "two": two}) as tokens:
        a, b = await tokens.get_token("one"), await tokens.get_token("two")
    assert a.access_token != b.access_token
    info_a, info_b = ep.token_info(a.access_token), ep.token_info(b.access_token)
    assert info_a is not None and info_b is not None
    assert info_a["cnf"]["jkt"] == one.dpop_jkt != info_b["cnf"]["jkt"] == two.dpop_jkt


# ---- API calls -------------------------------------------------------------------------


async def test_api_calls_carry_a_fresh_proof_bound_to_method_url_and_token(
    dpop_endpoint: TokenEndpoint,
) -> None:
    ep = dpop_endpoint
    client = _client(ep, jwtmint.generate_key("ES256"))
    async with TokenManager({"es": client}) as tokens:
        async with aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api:
            for path in ("invoices?page=2#frag", "invoices", "pay"):
                method = "POST" if path == "pay" else "GET"
                async with api.request(method, f"{ep.url}/api/{path}") as response:
                    assert response.status == 200, await response.text()
                    proof = response.request_info.headers["DPoP"]
                    sent = response.request_info.headers["Authorization"]
                header, claims = _verified(proof)
                assert header["typ"] == "dpop+jwt" and "d" not in header["jwk"]
                assert sent.startswith("DPoP ")
                assert claims["ath"] == _ath(sent.removeprefix("DPoP "))
                assert claims["htm"] == method
                assert claims["htu"] == f"{ep.url}/api/{path.split('?')[0]}"
        token = await tokens.get_token("es")
    resource = ep.resource_requests
    # the first call met the resource's own nonce challenge (RFC 9449 §9: the token
    # endpoint's nonce, at the same origin, is not the resource's), and was retried once
    assert [r.status for r in ep.resource_requests] == [401, 200, 200, 200]
    jtis = [r.dpop.claims["jti"] for r in resource if r.dpop and r.dpop.claims]
    assert len(set(jtis)) == len(jtis) == 4  # every request and retry: a new jti
    assert all(r.dpop.private_jwk_members == () for r in resource if r.dpop)
    assert len(ep.requests) == 2  # one token (after its own nonce challenge) for every call
    assert token.token_type == "DPoP"


async def test_a_revoked_dpop_token_is_renewed_and_the_retry_has_a_new_proof(
    dpop_endpoint: TokenEndpoint,
) -> None:
    ep = dpop_endpoint
    async with TokenManager({"es": _client(ep, jwtmint.generate_key("EdDSA"))}) as tokens:
        async with aiohttp.ClientSession(middlewares=[tokens.middleware("es")]) as api:
            async with api.get(f"{ep.url}/api/warm") as response:
                assert response.status == 200
            old = await tokens.get_token("es")
            ep.revoke(old.access_token)
            async with api.post(f"{ep.url}/api/pay", json={"amount": 5}) as response:
                assert response.status == 200
                _, claims = _verified(response.request_info.headers["DPoP"])
        new = await tokens.get_token("es")
    assert new.access_token != old.access_token
    assert claims["ath"] == _ath(new.access_token)


async def test_httpx_auth_sends_proofs_and_meets_a_nonce_challenge(
    dpop_endpoint: TokenEndpoint,
) -> None:
    ep = dpop_endpoint
    tokens = TokenManager({"es": _client(ep, jwtmint.generate_key("PS256"))})
    async with tokens, httpx.AsyncClient(auth=tokens.httpx_auth("es")) as api:
        for _ in range(2):
            response = await api.get(f"{ep.url}/api/items?q=1")
            assert response.status_code == 200
            _, claims = _verified(response.request.headers["DPoP"])
            assert claims["htu"] == f"{ep.url}/api/items"
            assert claims["nonce"] == ep.resource_dpop_nonce
    resource = [r.status for r in ep.resource_requests]
    assert resource == [401, 200, 200]


async def test_a_resource_that_challenges_forever_gets_one_retry_per_request() -> None:
    seen: list[str | None] = []

    async def api(request: web.Request) -> web.Response:
        seen.append(request.headers.get("DPoP"))
        return web.Response(
            status=401,
            headers={
                "WWW-Authenticate": 'DPoP error="use_dpop_nonce"',
                "DPoP-Nonce": f"n{len(seen)}",
            },
        )

    async with TokenEndpoint() as ep, serving(web.get("/api", api)) as url:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": _client(ep, jwtmint.generate_key("ES256"))}) as tokens:
            session = aiohttp.ClientSession(middlewares=[tokens.middleware("es")])
            async with session, session.get(f"{url}/api") as response:
                assert response.status == 401
            async with httpx.AsyncClient(auth=tokens.httpx_auth("es")) as client:
                assert (await client.get(f"{url}/api")).status_code == 401
    assert len(seen) == 4  # two per request: no loop, no token renewal
    assert len(ep.requests) == 1


async def test_a_bearer_token_from_a_server_that_does_not_bind_goes_without_a_proof() -> None:
    async def token(request: web.Request) -> web.Response:
        assert request.headers.get("DPoP")  # the client asked for binding
        return web.json_response({"access_token": "plain", "token_type": "Bearer"})

    async def api(request: web.Request) -> web.Response:
        return web.json_response(
            {"auth": request.headers.get("Authorization"), "dpop": request.headers.get("DPoP")}
        )

    async with serving(web.post("/token", token), web.get("/api", api)) as url:
        client = _secret_client(f"{url}/token")
        async with TokenManager({"c": client}) as tokens:
            got: Token = await tokens.get_token("c")
            session = aiohttp.ClientSession(middlewares=[tokens.middleware("c")])
            async with session, session.get(f"{url}/api") as response:
                body = await response.json()
    assert got.token_type == "Bearer"
    assert body == {"auth": "Bearer plain", "dpop": None}


async def test_a_fleet_shares_dpop_nonces_through_redis(redis_server: RedisServer) -> None:
    # two gateway instances (a RedisTokenCache each) with their own DPoP clients of one
    # server: the nonce one instance was challenged for reaches the other, whose first
    # request then needs no challenge
    async with TokenEndpoint(dpop_nonce=True) as ep, AsyncExitStack() as stack:
        ep.register_client("es", public_key=signing_key("ES256"))
        ep.register_client("basic", secret=TOKEN_CLIENT_SECRET)
        managers = []
        for _ in range(2):
            cache = await stack.enter_async_context(RedisTokenCache(redis_server.url))
            clients = {
                "es": _client(ep, jwtmint.generate_key("ES256")),
                "basic": ClientCredentialsClient(
                    "basic", token_endpoint=ep.token_url, client_secret=TOKEN_CLIENT_SECRET
                ),
            }
            manager = await stack.enter_async_context(TokenManager(clients, cache=cache))
            await manager.get_token("basic")  # starts the instance's subscription
            await asyncio.wait_for(cache._subscribed.wait(), 5)
            managers.append(manager)
        first, second = managers
        await first.get_token("es")
        deadline = time.monotonic() + 5
        while second.stats().dpop_nonces < 1:
            assert time.monotonic() < deadline, "the nonce never reached the other instance"
            await asyncio.sleep(0.01)
        await second.get_token("es")
    dpop_requests = [r for r in ep.requests if r.dpop is not None]
    assert [r.status for r in dpop_requests] == [400, 200, 200]
    assert dpop_requests[2].dpop is not None and dpop_requests[2].dpop.nonce == ep.dpop_nonce


# ---- what a review found (each failed before its fix) -----------------------------------


def _claims(proof: str) -> dict[str, Any]:
    return jwt.decode(proof, options={"verify_signature": False})


async def test_authorization_and_resource_server_nonces_at_one_origin_are_kept_apart() -> None:
    # RFC 9449 §9: a nonce is used only at the server that issued it, even on one host
    log: list[str] = []

    def nonce(request: web.Request) -> Any:
        proof = request.headers.get("DPoP")
        return _claims(proof).get("nonce") if proof else None

    async def token(request: web.Request) -> web.Response:
        if nonce(request) != "AS":
            log.append("token 400")
            return web.json_response(
                {"error": "use_dpop_nonce"}, status=400, headers={"DPoP-Nonce": "AS"}
            )
        log.append("token 200")
        return web.json_response({"access_token": "t", "token_type": "DPoP", "expires_in": 600})

    async def api(request: web.Request) -> web.Response:
        if nonce(request) != "RS":
            log.append("api 401")
            return web.Response(
                status=401,
                headers={"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": "RS"},
            )
        log.append("api 200")
        return web.Response(text="ok")

    async with serving(web.post("/oauth/token", token), web.get("/api", api)) as url:
        client = _secret_client(f"{url}/oauth/token")
        async with TokenManager({"c": client}) as tokens:
            session = aiohttp.ClientSession(middlewares=[tokens.middleware("c")])
            async with session:
                for round_no in range(3):
                    await tokens.get_token("c", force_renewal=round_no > 0)
                    async with session.get(f"{url}/api") as response:
                        assert response.status == 200
    assert log == ["token 400", "token 200", "api 401", "api 200"] + 2 * ["token 200", "api 200"]


async def test_httpx_signs_the_url_httpx_sends() -> None:
    # "%3A" is not ":" (RFC 3986 §2.2): the htu must be httpx's encoding, not yarl's
    async with TokenEndpoint() as ep:
        ep.register_client("es", public_key=signing_key("ES256"), dpop_bound_access_tokens=True)
        tokens = TokenManager({"es": _client(ep, jwtmint.generate_key("ES256"))})
        async with tokens, httpx.AsyncClient(auth=tokens.httpx_auth("es")) as api:
            response = await api.get(f"{ep.url}/api/a%3Ab/c%7e?x=1")
    assert response.status_code == 200, response.headers.get("WWW-Authenticate")
    assert _claims(response.request.headers["DPoP"])["htu"] == f"{ep.url}/api/a%3Ab/c%7e"
    assert len(ep.requests) == 1


async def test_httpx_redirects_file_no_nonce_under_the_wrong_origin() -> None:
    async def target(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"DPoP-Nonce": "nonce-of-" + request.host})

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": request.query["to"]})

    async with (
        serving(web.get("/x", target)) as other,
        serving(web.post("/token", _issue_dpop_token), web.get("/old", moved)) as url,
    ):
        client = _secret_client(f"{url}/token")
        tokens = TokenManager({"c": client})
        auth = tokens.httpx_auth("c", origins=[url])
        async with tokens, httpx.AsyncClient(auth=auth, follow_redirects=True) as api:
            response = await api.get(f"{url}/old", params={"to": f"{other}/x"})
            assert response.status_code == 200
            assert tokens.token_source("c").dpop is not None
            nonces = tokens._nonces
    assert nonces.get(url) is None
    assert nonces.get(other) == "nonce-of-" + other.removeprefix("http://")


async def test_a_token_endpoint_aiohttp_can_post_to_gets_a_proof() -> None:
    async def token(request: web.Request) -> web.Response:
        htu = _claims(request.headers["DPoP"])["htu"]
        assert htu == str(request.url.with_query(None)), htu
        return web.json_response({"access_token": "t", "token_type": "DPoP", "expires_in": 60})

    async with serving(web.post("/oauth/tök", token)) as url:
        client = _secret_client(f"{url}/oauth/tök")
        async with TokenManager({"c": client}, retries=0) as tokens:
            assert (await tokens.get_token("c")).token_type == "DPoP"


async def test_a_refused_proof_at_the_api_renews_no_token() -> None:
    async def api(request: web.Request) -> web.Response:
        return web.Response(
            status=401, headers={"WWW-Authenticate": 'DPoP error="invalid_dpop_proof"'}
        )

    async with TokenEndpoint() as ep, serving(web.get("/api", api)) as url:
        ep.register_client("es", public_key=signing_key("ES256"))
        async with TokenManager({"es": _client(ep, jwtmint.generate_key("ES256"))}) as tokens:
            session = aiohttp.ClientSession(middlewares=[tokens.middleware("es")])
            async with session, session.get(f"{url}/api") as response:
                assert response.status == 401
            async with httpx.AsyncClient(auth=tokens.httpx_auth("es")) as client:
                assert (await client.get(f"{url}/api")).status_code == 401
    assert len(ep.requests) == 1  # a new token would not mend a proof


class _SameAssertion:
    """An assertion service with Duende's old bug (foss#328): one assertion for every call."""

    def __init__(self, assertion: jwtmint.ClientAssertion) -> None:
        self.assertion = assertion
        self.calls = 0

    async def get_client_assertion(self, client_name: str, parameters: Any) -> Any:
        self.calls += 1
        return self.assertion


async def test_an_assertion_service_that_repeats_itself_is_not_resent() -> None:
    key = signing_key("ES256")
    async with TokenEndpoint(dpop_nonce=True) as ep:
        ep.register_client("ext", public_key=key)
        client = _keyless(ep, "ES256")
        service = _SameAssertion(jwtmint.AssertionSigner(key, "ext", ep.issuer).client_assertion())
        async with TokenManager({"ext": client}, assertion_service=service, retries=0) as tokens:
            with pytest.raises(TokenRequestError) as caught:
                await tokens.get_token("ext")
    assert caught.value.error == "use_dpop_nonce"
    assert service.calls == 2 and len(ep.requests) == 1


async def test_the_nonce_retry_stays_within_the_attempts_time() -> None:
    async def token(request: web.Request) -> web.Response:
        await asyncio.sleep(0.6)
        return web.json_response(
            {"error": "use_dpop_nonce"}, status=400, headers={"DPoP-Nonce": f"n{time.time()}"}
        )

    async with serving(web.post("/token", token)) as url:
        client = _secret_client(f"{url}/token")
        async with TokenManager({"c": client}, request_timeout=1.0, retries=0) as tokens:
            # the retry gets what is left of the attempt's second (0.4 s), not a second
            # second in which the server would have answered again
            with pytest.raises(TokenEndpointTimeout):
                await tokens.get_token("c")


async def test_sealed_caches_take_no_nonce_from_anyone_else_on_redis(
    redis_server: RedisServer,
) -> None:
    import orjson
    import redis.asyncio as redis_asyncio

    from jwtmint._b64 import b64url_encode
    from jwtmint.tokens._redis_format import EntryCodec

    keys = [b"k" * 32]
    forged = EntryCodec(None).seal(orjson.dumps(["as:https://idp", "planted", 9e9]), b"")
    other_key = EntryCodec([b"x" * 32]).seal(
        orjson.dumps(["as:https://idp", "planted", 9e9]), b"jwtmint-dpop-nonce-v1"
    )
    genuine = EntryCodec(keys).seal(
        orjson.dumps(["as:https://idp", "genuine", 9e9]), b"jwtmint-dpop-nonce-v1"
    )
    raw = redis_asyncio.Redis.from_url(redis_server.url)
    async with (
        TokenEndpoint() as ep,
        RedisTokenCache(redis_server.url, encryption_keys=keys) as cache,
    ):
        ep.register_client("basic", secret=TOKEN_CLIENT_SECRET)
        clients = {
            "es": _client(ep, jwtmint.generate_key("ES256")),
            "basic": ClientCredentialsClient(
                "basic", token_endpoint=ep.token_url, client_secret=TOKEN_CLIENT_SECRET
            ),
        }
        async with TokenManager(clients, cache=cache) as tokens:
            await tokens.get_token("basic")  # starts the subscription
            await asyncio.wait_for(cache._subscribed.wait(), 5)
            for blob in (forged, other_key, b"not base64!", genuine):
                text = blob.decode() if blob == b"not base64!" else b64url_encode(blob).decode()
                await raw.publish("jwtmint:v1:invalidate", f"attacker {text} n")
            deadline = time.monotonic() + 5
            while tokens._nonces.get("as:https://idp") is None:
                assert time.monotonic() < deadline, "the genuine announcement never arrived"
                await asyncio.sleep(0.01)
            assert tokens._nonces.get("as:https://idp") == "genuine"
            assert tokens.stats().dpop_nonces == 1  # nothing planted before it
    await raw.aclose()
