"""The token manager's DPoP parts on their own: the nonce store, challenges, token types."""

from __future__ import annotations

import base64

import pytest
from multidict import CIMultiDict
from yarl import URL

import jwtmint
from jwtmint.errors import ConfigurationError, InvalidTokenResponseError
from jwtmint.tokens import ClientCredentialsClient, Token
from jwtmint.tokens._dpop import (
    ANSWERABLE,
    CHALLENGED,
    MAX_NONCE_LENGTH,
    NOT_CHALLENGED,
    ApiProofs,
    DPoPNonces,
    is_nonce_challenge,
    origin_of,
)
from jwtmint.tokens._exchange import check_token_type

ENDPOINT = "https://idp.example.com/token"


def test_nonces_keep_the_latest_value_per_origin() -> None:
    nonces = DPoPNonces()
    assert nonces.learn("https://a", "n1")
    assert not nonces.learn("https://a", "n1")  # the same value is not news
    assert nonces.learn("https://a", "n2")
    assert nonces.learn("https://b", "m1")
    assert (nonces.get("https://a"), nonces.get("https://b"), nonces.get("https://c")) == (
        "n2",
        "m1",
        None,
    )
    assert nonces.updates == 3


def test_nonces_are_bounded_and_forget_the_least_recently_updated() -> None:
    nonces = DPoPNonces(limit=3)
    for i in range(3):
        nonces.learn(f"https://{i}", "x")
    nonces.learn("https://0", "y")  # 0 is updated: 1 is now the oldest
    nonces.learn("https://new", "z")
    assert len(nonces) == 3
    assert nonces.get("https://1") is None
    assert nonces.get("https://0") == "y"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "has space",
        'quote"',
        "back\\slash",
        "line\r\nX-Injected: 1",
        "\x1b[31mred",
        "é",
        "n" * (MAX_NONCE_LENGTH + 1),
    ],
)
def test_nonces_that_a_proof_cannot_carry_are_ignored(value: str) -> None:
    # RFC 9449 §8.1: NQCHAR only; anything else would go into every later proof
    nonces = DPoPNonces()
    nonces.learn("https://a", "good")
    assert not nonces.learn("https://a", value)
    assert nonces.get("https://a") == "good"


def test_a_new_local_nonce_is_published_and_a_shared_one_is_not() -> None:
    published: list[tuple[str, str]] = []
    nonces = DPoPNonces()
    nonces.publish = lambda origin, nonce: published.append((origin, nonce))
    nonces.learn("https://a", "n1")
    nonces.learn("https://a", "n1")
    nonces.learn("https://a", "n2", shared=True)
    assert published == [("https://a", "n1")]
    assert nonces.get("https://a") == "n2"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (['DPoP error="use_dpop_nonce", error_description="Resource server requires nonce"'], True),
        (['dpop algs="ES256", error="use_dpop_nonce"'], True),
        (["DPoP error=use_dpop_nonce"], True),
        (['Bearer realm="api"', 'DPoP error="use_dpop_nonce"'], True),
        (['Bearer error="use_dpop_nonce"'], False),  # not a DPoP challenge
        (['DPoP error="invalid_token"'], False),
        (['DPoP error="use_dpop_nonce_later"'], False),
        (['DPoP realm="x", error_description="use_dpop_nonce"'], False),
        ([], False),
    ],
)
def test_nonce_challenges_are_found_in_www_authenticate(values: list[str], expected: bool) -> None:
    assert is_nonce_challenge(values) is expected


def test_origins_drop_default_ports_and_paths() -> None:
    assert origin_of(URL("https://API.example.com:443/a?b#c")) == "https://api.example.com"
    assert origin_of(URL("http://127.0.0.1:8080/x")) == "http://127.0.0.1:8080"


def _token(token_type: str) -> Token:
    return Token("tok", token_type, 1e10)


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER"])
def test_bearer_tokens_are_usable_by_every_client(token_type: str) -> None:
    check_token_type(_token(token_type), dpop=False, client="c", status=200)
    check_token_type(_token(token_type), dpop=True, client="c", status=200)


def test_dpop_tokens_need_a_dpop_key() -> None:
    check_token_type(_token("DPoP"), dpop=True, client="c", status=200)
    with pytest.raises(InvalidTokenResponseError, match="dpop_key"):
        check_token_type(_token("DPoP"), dpop=False, client="c", status=200)


@pytest.mark.parametrize("token_type", ["mac", "N_A", "Basic", "x" * 500])
def test_token_types_a_client_does_not_understand_are_refused(token_type: str) -> None:
    # RFC 6749 §7.1: a client must not use a token whose type it does not understand
    with pytest.raises(InvalidTokenResponseError, match=r"RFC 6749 §7\.1") as caught:
        check_token_type(_token(token_type), dpop=True, client="c", status=200)
    assert len(str(caught.value)) < 300  # a server's long text is cut short


def test_a_dpop_client_keys_its_tokens_by_the_key_thumbprint() -> None:
    key = jwtmint.generate_key("ES256")
    plain = ClientCredentialsClient("c", token_endpoint=ENDPOINT, client_secret="s" * 32)
    bound = ClientCredentialsClient(
        "c", token_endpoint=ENDPOINT, client_secret="s" * 32, dpop_key=key
    )
    assert plain.dpop is None and plain.dpop_jkt is None
    assert bound.dpop_jkt == jwtmint.jwk_thumbprint(key.public_jwk())
    assert "dpop_jkt=" in repr(bound)
    scalar = key.key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    assert base64.urlsafe_b64encode(scalar).rstrip(b"=").decode() not in repr(bound)


def test_a_dpop_key_must_be_asymmetric() -> None:
    with pytest.raises(ConfigurationError, match="asymmetric"):
        ClientCredentialsClient("c", token_endpoint=ENDPOINT, dpop_key=b"k" * 32)


def test_a_dpop_algorithm_needs_a_key_and_must_fit_it() -> None:
    with pytest.raises(ConfigurationError, match="dpop_algorithm needs a dpop_key"):
        ClientCredentialsClient("c", token_endpoint=ENDPOINT, dpop_algorithm="ES256")
    with pytest.raises(ConfigurationError, match="dpop_key"):
        ClientCredentialsClient(
            "c",
            token_endpoint=ENDPOINT,
            dpop_key=jwtmint.generate_key("ES256"),
            dpop_algorithm="RS256",
        )


def test_api_proofs_answer_a_nonce_challenge_once_per_new_nonce() -> None:
    key = jwtmint.generate_key("EdDSA")
    proofs = ApiProofs(jwtmint.DPoPSigner(key), DPoPNonces())
    url = URL("https://api.example.com/v1/items?page=2")
    token = _token("DPoP")
    challenge = CIMultiDict(
        [("WWW-Authenticate", 'DPoP error="use_dpop_nonce"'), ("DPoP-Nonce", "n1")]
    )
    _, sent = proofs.proof("GET", url, token)
    assert sent is None
    assert proofs.challenged(url, 401, challenge, sent) == ANSWERABLE
    _, sent = proofs.proof("GET", url, token)
    assert sent == "n1"
    # the same nonce again: a retry cannot help, and there is no loop
    assert proofs.challenged(url, 401, challenge, sent) == CHALLENGED
    # a 200 that rotates the nonce is learned, and is not a challenge
    rotated = CIMultiDict([("DPoP-Nonce", "n2")])
    assert proofs.challenged(url, 200, rotated, sent) == NOT_CHALLENGED
    assert proofs.nonces.get("https://api.example.com") == "n2"
    # a plain 401 (a stale token) is not a nonce challenge
    assert proofs.challenged(url, 401, CIMultiDict(), "n2") == NOT_CHALLENGED
