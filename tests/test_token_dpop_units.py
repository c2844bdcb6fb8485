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
    authorization_server,
    dpop_error,
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


def test_only_announced_nonces_are_published() -> None:
    published: list[tuple[str, str, float]] = []
    nonces = DPoPNonces()
    nonces.publish = lambda server, nonce, at: published.append((server, nonce, at))
    nonces.learn("https://a", "n1")
    nonces.learn("https://a", "n2")  # rotations seen on responses: not worth a message each
    assert published == []
    nonces.announce("https://a")  # after a challenge
    nonces.announce("https://unknown")
    assert [(server, nonce) for server, nonce, _ in published] == [("https://a", "n2")]


def test_a_late_shared_nonce_does_not_replace_a_newer_one() -> None:
    nonces = DPoPNonces()
    nonces.learn("https://a", "newest")
    assert not nonces.learn("https://a", "older", learned_at=1.0)
    assert nonces.get("https://a") == "newest"
    assert nonces.learn("https://a", "from-the-future", learned_at=4e9)
    assert nonces.get("https://a") == "from-the-future"


def test_authorization_server_nonces_are_kept_apart_from_the_resources_at_one_origin() -> None:
    # RFC 9449 §9: a nonce is used only at the server that issued it
    nonces = DPoPNonces()
    origin = "https://gateway.example.com"
    nonces.learn(authorization_server(origin), "for-the-as")
    nonces.learn(origin, "for-the-api")
    assert nonces.get(authorization_server(origin)) == "for-the-as"
    assert nonces.get(origin) == "for-the-api"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (['DPoP error="use_dpop_nonce", error_description="needs a nonce"'], "use_dpop_nonce"),
        (['dpop algs="ES256", error="use_dpop_nonce"'], "use_dpop_nonce"),
        (["DPoP error=use_dpop_nonce"], "use_dpop_nonce"),
        (['Bearer realm="api"', 'DPoP error="use_dpop_nonce"'], "use_dpop_nonce"),
        # several challenges in one field (RFC 9110 §11.6.1)
        (['Bearer realm="api", DPoP error="use_dpop_nonce", algs="ES256"'], "use_dpop_nonce"),
        (
            ['Bearer realm="a, b", error="x", DPoP algs="ES256", error="invalid_dpop_proof"'],
            "invalid_dpop_proof",
        ),
        (['Bearer error="use_dpop_nonce"'], None),  # not a DPoP challenge
        (['DPoP error="invalid_token"'], "invalid_token"),
        (['DPoP realm="x", error_description="use_dpop_nonce"'], None),
        (['DPoP realm="x, error=use_dpop_nonce"'], None),  # inside a quoted string
        (["DPoP"], None),
        ([], None),
    ],
)
def test_the_dpop_challenges_error_is_found_in_www_authenticate(
    values: list[str], expected: str | None
) -> None:
    assert dpop_error(values) == expected


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
        ClientCredentialsClient(
            "c", token_endpoint=ENDPOINT, dpop_key=b"k" * 32, auth_method="none"
        )


def test_a_dpop_algorithm_needs_a_key_and_must_fit_it() -> None:
    with pytest.raises(ConfigurationError, match="dpop_algorithm needs a dpop_key"):
        ClientCredentialsClient(
            "c", token_endpoint=ENDPOINT, dpop_algorithm="ES256", auth_method="none"
        )
    with pytest.raises(ConfigurationError, match="dpop_key"):
        ClientCredentialsClient(
            "c",
            token_endpoint=ENDPOINT,
            dpop_key=jwtmint.generate_key("ES256"),
            dpop_algorithm="RS256",
            auth_method="none",
        )


def test_api_proofs_answer_a_nonce_challenge_once_per_new_nonce() -> None:
    key = jwtmint.generate_key("EdDSA")
    proofs = ApiProofs(jwtmint.DPoPSigner(key), DPoPNonces())
    url, origin = "https://api.example.com/v1/items", "https://api.example.com"
    token = _token("DPoP")
    challenge = CIMultiDict(
        [("WWW-Authenticate", 'DPoP error="use_dpop_nonce"'), ("DPoP-Nonce", "n1")]
    )
    _, sent = proofs.proof("GET", url, origin, token)
    assert sent is None
    assert proofs.challenged(origin, 401, challenge, sent) == ANSWERABLE
    _, sent = proofs.proof("GET", url, origin, token)
    assert sent == "n1"
    # the same nonce again: a retry cannot help, and there is no loop
    assert proofs.challenged(origin, 401, challenge, sent) == CHALLENGED
    # a 200 that rotates the nonce is learned, and is not a challenge
    rotated = CIMultiDict([("DPoP-Nonce", "n2")])
    assert proofs.challenged(origin, 200, rotated, sent) == NOT_CHALLENGED
    assert proofs.nonces.get(origin) == "n2"
    # a plain 401 (a stale token) is not a nonce challenge
    assert proofs.challenged(origin, 401, CIMultiDict(), "n2") == NOT_CHALLENGED
    # a refused proof is no stale token either: it stands, without renewal
    bad = CIMultiDict([("WWW-Authenticate", 'DPoP error="invalid_dpop_proof"')])
    assert proofs.challenged(origin, 401, bad, "n2") == CHALLENGED
