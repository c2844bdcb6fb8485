"""Fuzz targets for the key loaders and DER->raw, shared by both engines: Hypothesis
(tests/test_fuzz.py, every platform) and atheris (coverage-guided libFuzzer, run by
tests/test_fuzz.py in a subprocess: ``python tests/fuzz_keys.py CORPUS_DIR -runs=N``).

The contract checked: the loaders end in a SigningKey or raise a JwtMintError subclass or
TypeError, nothing else (no cryptography or binascii exception, no crash); der_to_raw
returns 2*size bytes or raises ValueError or TypeError, and the C and Python kernels agree
on every input (the same bytes, or both raise the same class)."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import FunctionType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

import jwtmint
from jwtmint import _keyformat, _pure
from jwtmint._kernels import load_speedups
from jwtmint.errors import JwtMintError

SPEEDUPS = load_speedups()
#: what the loaders may take as ``algorithm``: every name, a wrong one, none at all
ALGORITHMS: tuple[str | None, ...] = (None, "HS256", "HS512", "RS256", "PS256", "ES256",
                                      "ES384", "ES512", "EdDSA", "none", "XX")  # fmt: skip
PASSWORDS: tuple[bytes | None, ...] = (None, b"pw", b"")


class ContractBroken(AssertionError):
    """An input broke the contract: the engine reports it as a failure (or crash)."""


def check_load(
    load: Callable[..., object], source: object, *args: object, **kwargs: object
) -> None:
    """``load(source, ...)`` ends in a SigningKey or a JwtMintError or TypeError."""
    try:
        key = load(source, *args, **kwargs)
    except (JwtMintError, TypeError):
        return
    except Exception as exc:
        raise ContractBroken(
            f"{getattr(load, '__name__', load)} raised {type(exc).__module__}."
            f"{type(exc).__name__}: {str(exc)[:200]} for {source!r:.200}"
        ) from exc
    if not isinstance(key, jwtmint.SigningKey):
        raise ContractBroken(f"{load} returned {type(key).__name__}")


def check_key_bytes(data: bytes, password: bytes | None, algorithm: str | None) -> None:
    """Bytes and the same text through load_key, load_secret, and the format sniffer."""
    try:
        _keyformat.sniff(data)
    except Exception as exc:
        raise ContractBroken(f"sniff raised {type(exc).__name__}: {exc} for {data!r:.200}") from exc
    check_load(jwtmint.load_key, data, password=password, algorithm=algorithm)
    text = data.decode("utf-8", "surrogateescape")
    check_load(jwtmint.load_key, text, password=password, algorithm=algorithm)
    if algorithm is not None:
        check_load(jwtmint.load_secret, data, algorithm)
        check_load(jwtmint.load_secret, text, algorithm)


def check_jwk(jwk: object, algorithm: str | None) -> None:
    """A JWK as a mapping (or anything JSON holds) and as JSON text."""
    check_load(jwtmint.load_key, jwk, algorithm=algorithm)
    try:
        text = json.dumps(jwk)
    except (TypeError, ValueError):
        return
    check_load(jwtmint.load_key, text, algorithm=algorithm)


def check_der_to_raw(der: object, size: object) -> bytes | None:
    """Both kernels agree, and keep the contract: 2*size bytes, or ValueError/TypeError."""
    kernels = [_pure] if SPEEDUPS is None else [SPEEDUPS, _pure]
    results: list[bytes | type[BaseException]] = []
    for kernel in kernels:
        try:
            out = kernel.der_to_raw(der, size)
        except (ValueError, TypeError) as exc:
            results.append(ValueError if isinstance(exc, ValueError) else TypeError)
            continue
        except Exception as exc:
            raise ContractBroken(
                f"{kernel.__name__}.der_to_raw raised {type(exc).__name__}: {exc} "
                f"for ({der!r:.200}, {size!r:.40})"
            ) from exc
        if type(out) is not bytes or not isinstance(size, int) or len(out) != 2 * size:
            raise ContractBroken(f"{kernel.__name__}.der_to_raw returned {out!r:.200}")
        results.append(out)
    if len(set(results)) != 1:
        raise ContractBroken(f"the kernels disagree on ({der!r:.200}, {size!r:.40}): {results}")
    first = results[0]
    return first if isinstance(first, bytes) else None


def seeds() -> dict[str, bytes]:
    """Valid key files of every format, the starting points of mutation."""
    found: dict[str, bytes] = {}
    keys: dict[str, Any] = {
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }
    none = serialization.NoEncryption()
    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    pkcs8, openssl = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.OpenSSH
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    for name, key in keys.items():
        found[f"{name}.pk8.pem"] = key.private_bytes(pem, pkcs8, none)
        found[f"{name}.pk8.der"] = key.private_bytes(der, pkcs8, none)
        found[f"{name}.ssh"] = key.private_bytes(pem, openssl, none)
        found[f"{name}.pub.der"] = key.public_key().public_bytes(
            der, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if name != "ed":
            found[f"{name}.trad.der"] = key.private_bytes(der, traditional, none)
        found[f"{name}.p12"] = pkcs12.serialize_key_and_certificates(
            None, key, None, None, serialization.BestAvailableEncryption(b"pw")
        )
    private_value = keys["ec"].private_numbers().private_value
    found["ec.jwk"] = json.dumps(
        {**jwtmint.load_key(keys["ec"]).public_jwk(), "d": _b64(private_value.to_bytes(32, "big"))}
    ).encode()
    found["oct.jwk"] = b'{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}'
    found["ecdsa.der"] = bytes.fromhex("3006020101020102")
    return found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---- atheris ------------------------------------------------------------------------------


def one_input(data: bytes) -> None:
    """libFuzzer's entry: byte 0 picks the target, byte 1 its options, the rest is input."""
    if len(data) < 2:
        return
    target, choice, payload = data[0] % 4, data[1], data[2:]
    if target == 0:
        password = PASSWORDS[choice % len(PASSWORDS)]
        algorithm = ALGORITHMS[choice // len(PASSWORDS) % len(ALGORITHMS)]
        check_key_bytes(payload, password, algorithm)
    elif target == 1:
        try:
            jwk = json.loads(payload)
        except ValueError:  # UnicodeDecodeError too
            return
        check_jwk(jwk, ALGORITHMS[choice % len(ALGORITHMS)])
    elif target == 2:
        check_der_to_raw(payload, choice - 2)
    else:
        check_der_to_raw(payload[8:], int.from_bytes(payload[:8], "big", signed=True))


def main() -> None:
    import atheris

    corpus = Path(sys.argv[1])
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        # the target and its options first (see one_input): key files without password or
        # algorithm, JWKs without algorithm, DER signatures of size 1
        prefix = {"jwk": b"\x01\x00", "der": b"\x02\x03"}.get(name.rsplit(".", 1)[1], b"\0\0")
        (corpus / name).write_bytes(prefix + data)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    import atheris

    # coverage of jwtmint's Python (the loaders, the sniffer, the pure DER->raw) guides the
    # mutation; the C kernel is not instrumented (that needs a clang build), so it is
    # reached through the inputs that cover its pure twin, and compared with it on each
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("jwtmint"):
            for value in list(vars(module).values()):
                if isinstance(value, FunctionType) and value.__module__ == module.__name__:
                    atheris.instrument_func(value)
    main()
