"""The job every contender does, and the check each one passes before it is timed.

One client assertion (RFC 7523 §3, draft-ietf-oauth-rfc7523bis): the header
``{alg, kid, typ: "client-authentication+jwt"}`` and the claims ``iss`` =
``sub`` = client id, ``aud``, a fresh 128-bit ``jti``, ``iat`` = ``nbf`` = now
and ``exp`` = now + 60, on every call. A token is accepted when PyJWT's
``jwt.decode`` verifies it with the audience and issuer (cryptography
directly when PyJWT is not installed) and its header and claims are exactly
those.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .._assertion import CLIENT_ASSERTION_TYP
from .._b64 import b64url_decode
from .._keys import SigningKey, generate_key

__all__ = [
    "AUDIENCE",
    "CLIENT_ID",
    "HASHES",
    "HMAC_KID",
    "LIFETIME",
    "REQUIRED_CLAIMS",
    "TYP",
    "Minter",
    "TokenCheckError",
    "check_token",
    "claims",
    "decode_segments",
    "header",
    "new_key",
    "pyjwt_installed",
]

CLIENT_ID = "demo-client"
AUDIENCE = "https://idp.example.com"
LIFETIME = 60
TYP = CLIENT_ASSERTION_TYP
#: HMAC keys have no thumbprint kid (RFC 7638 would publish a hash of the secret): name one,
#: so that every algorithm's header is the same ``{alg, kid, typ}``.
HMAC_KID = "bench-hmac-key"
REQUIRED_CLAIMS = ("iss", "sub", "aud", "jti", "iat", "nbf", "exp")

#: One call, one fresh assertion.
Minter = Callable[[], str]


def new_key(algorithm: str) -> SigningKey:
    """A fresh key for ``algorithm`` with a ``kid`` (the thumbprint, or :data:`HMAC_KID`)."""
    return generate_key(algorithm, kid=HMAC_KID if algorithm.startswith("HS") else None)


def header(key: SigningKey, algorithm: str) -> dict[str, Any]:
    """The JOSE header every contender must produce for ``key``."""
    result: dict[str, Any] = {"alg": algorithm}
    if key.kid is not None:
        result["kid"] = key.kid
    result["typ"] = TYP
    return result


def claims() -> dict[str, Any]:
    """Fresh claims, as a peer's caller would build them: new ``jti`` and time per call."""
    now = int(time.time())
    return {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": AUDIENCE,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME,
    }


def pyjwt_installed() -> bool:
    try:
        import jwt  # noqa: F401
    except ImportError:
        return False
    return True


class TokenCheckError(AssertionError):
    """Raised when a minted token does not verify or does not carry the expected claims."""


#: The hash of each algorithm's family by its bit size ("256" for RS256, ES256, ...).
HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}


def _b64url_decode(segment: str) -> bytes:
    # strict: a peer whose segments or jti use "+/" or padding fails the check
    return b64url_decode(segment)


def _verify_with_cryptography(token: str, key: SigningKey, algorithm: str) -> None:
    signing_input, _, sig_b64 = token.rpartition(".")
    data, signature = signing_input.encode("ascii"), _b64url_decode(sig_b64)
    obj = key.key
    hash_alg = HASHES.get(algorithm[2:], HASHES["256"])
    try:
        if isinstance(obj, bytes):
            expected = hmac.digest(obj, data, hash_alg.name)
            if not hmac.compare_digest(expected, signature):
                raise InvalidSignature
        elif isinstance(obj, rsa.RSAPrivateKey):
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if algorithm.startswith("RS")
                else padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
            )
            obj.public_key().verify(signature, data, pad, hash_alg)
        elif isinstance(obj, ec.EllipticCurvePrivateKey):
            half = len(signature) // 2
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            obj.public_key().verify(der, data, ec.ECDSA(hash_alg))
        else:
            assert isinstance(obj, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
            obj.public_key().verify(signature, data)
    except InvalidSignature:
        raise TokenCheckError(f"{algorithm}: the signature does not verify") from None
    now = time.time()
    payload = json.loads(_b64url_decode(token.split(".")[1]))
    if payload.get("aud") != AUDIENCE or payload.get("iss") != CLIENT_ID:
        raise TokenCheckError(f"{algorithm}: wrong aud or iss")
    if not (payload["nbf"] <= now + 5 and now < payload["exp"]):
        raise TokenCheckError(f"{algorithm}: not valid now (nbf/exp)")


def check_token(token: object, key: SigningKey, algorithm: str, *, use_pyjwt: bool) -> None:
    """Verify signature, header and claims of one assertion, or raise :class:`TokenCheckError`.

    With ``use_pyjwt``, PyJWT's ``jwt.decode`` checks the signature, ``aud``,
    ``iss``, ``exp``/``nbf``/``iat`` and the presence of every claim.
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenCheckError(f"{algorithm}: not a compact JWS string: {type(token).__name__}")
    try:
        got_header = json.loads(_b64url_decode(token.split(".")[0]))
    except ValueError:
        raise TokenCheckError(f"{algorithm}: the header is not base64url JSON") from None
    if got_header != header(key, algorithm):
        raise TokenCheckError(f"{algorithm}: unexpected header {got_header}")
    if use_pyjwt:
        import jwt

        verifier: Any = key.key if isinstance(key.key, bytes) else key.key.public_key()
        try:
            payload = jwt.decode(
                token,
                verifier,
                algorithms=[algorithm],
                audience=AUDIENCE,
                issuer=CLIENT_ID,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise TokenCheckError(f"{algorithm}: PyJWT rejects the token: {exc}") from None
    else:
        _verify_with_cryptography(token, key, algorithm)
        payload = json.loads(_b64url_decode(token.split(".")[1]))
    if set(payload) != set(REQUIRED_CLAIMS):
        raise TokenCheckError(f"{algorithm}: claims {sorted(payload)}, not {REQUIRED_CLAIMS}")
    if payload["sub"] != CLIENT_ID or payload["exp"] - payload["iat"] != LIFETIME:
        raise TokenCheckError(f"{algorithm}: wrong sub or lifetime")
    if payload["nbf"] != payload["iat"]:
        raise TokenCheckError(f"{algorithm}: nbf is not iat")
    jti = payload["jti"]
    try:
        jti_bytes = _b64url_decode(jti) if isinstance(jti, str) else b""
    except ValueError:
        jti_bytes = b""
    if len(jti_bytes) != 16:
        raise TokenCheckError(f"{algorithm}: jti is not 128 bits in base64url")


def decode_segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, unverified: for display only."""
    head, payload, _ = token.split(".")
    return json.loads(_b64url_decode(head)), json.loads(_b64url_decode(payload))
