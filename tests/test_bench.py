"""jwtmint.bench: every adapter's tokens verify with PyJWT; the runner's JSON; missing peers.

No timing is asserted here: the runs use a tiny time budget and only their
structure is checked. Peers that only the ``bench`` extra installs are
skipped when absent; PyJWT, joserfc and jwcrypto are in the ``test`` extra.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import jwt
import pytest

import jwtmint
from jwtmint import _kernels, _pure
from jwtmint._cli import main
from jwtmint.bench import (
    DEFAULT_ALGORITHMS,
    PEERS,
    NotSupported,
    Peer,
    TokenCheckError,
    adapters,
    check_token,
    floor,
    format_report,
    get_peer,
    job,
    quiet,
    run,
)

#: (peer, algorithm) pairs the peer has no implementation of: "n/a" in the table.
LACKING = {("python-jose", "PS256"), ("python-jose", "EdDSA"), ("oxyjwt", "ES512")}
IN_TEST_EXTRA = {"pyjwt", "joserfc", "jwcrypto"}
REPEATS = 2


def tiny_run(
    algorithms: list[str], peers: list[str] | None = None, registry: Sequence[Peer] = PEERS
) -> dict[str, Any]:
    """A run with a tiny time budget: its structure is checked, never its timings."""
    return run(algorithms, peers, repeats=REPEATS, batch_seconds=0.001, registry=registry)


_KEYS: dict[str, jwtmint.SigningKey] = {}


def bench_key(algorithm: str) -> jwtmint.SigningKey:
    if algorithm not in _KEYS:
        _KEYS[algorithm] = job.new_key(algorithm)
    return _KEYS[algorithm]


def require(peer: Peer) -> None:
    """Skip when a bench-only peer is absent; the others must be here."""
    if peer.name == "jwtmint-c":
        if _kernels.load_speedups() is None:
            if os.environ.get("JWTMINT_REQUIRE_EXTENSIONS"):
                pytest.fail("the C extension jwtmint._speedups did not load")
            pytest.skip("C extension not built")
    elif peer.name not in IN_TEST_EXTRA and peer.name != "jwtmint-py":
        pytest.importorskip(peer.module)
    assert peer.missing() is None


def pyjwt_decode(token: str, key: jwtmint.SigningKey, algorithm: str) -> dict[str, Any]:
    verifier: Any = key.key if isinstance(key.key, bytes) else key.key.public_key()
    claims: dict[str, Any] = jwt.decode(
        token, verifier, algorithms=[algorithm], audience=job.AUDIENCE, issuer=job.CLIENT_ID
    )
    return claims


@pytest.mark.parametrize("peer", PEERS, ids=[peer.name for peer in PEERS])
def test_adapter_tokens_verify_with_pyjwt(peer: Peer) -> None:
    require(peer)
    lacking = set()
    with quiet():
        for algorithm in DEFAULT_ALGORITHMS:
            key = bench_key(algorithm)
            try:
                mint = peer.minter(key, algorithm)
            except NotSupported:
                lacking.add((peer.name, algorithm))
                continue
            first, second = mint(), mint()
            claims = [pyjwt_decode(token, key, algorithm) for token in (first, second)]
            assert claims[0]["jti"] != claims[1]["jti"], "a fresh jti per mint"
            assert jwt.get_unverified_header(first) == {
                "alg": algorithm,
                "kid": key.kid,
                "typ": "client-authentication+jwt",
            }
            for token in (first, second):  # header, exact claim set, lifetime, 128-bit jti
                check_token(token, key, algorithm, use_pyjwt=True)
    assert lacking == {pair for pair in LACKING if pair[0] == peer.name}


@pytest.mark.parametrize("algorithm", DEFAULT_ALGORITHMS)
def test_floor_signs_a_message_of_the_real_size(algorithm: str) -> None:
    base = floor(bench_key(algorithm), algorithm)
    base.verify(base.sign())
    assert 250 < base.message_bytes < 500


def test_check_token_rejects_the_wrong_audience() -> None:
    key = bench_key("HS256")
    token = jwt.encode(
        {**job.claims(), "aud": "https://elsewhere.example"},
        key.key,
        algorithm="HS256",
        headers={"kid": key.kid, "typ": job.TYP},
    )
    with pytest.raises(TokenCheckError, match="PyJWT rejects"):
        check_token(token, key, "HS256", use_pyjwt=True)
    with pytest.raises(TokenCheckError, match="aud"):
        check_token(token, key, "HS256", use_pyjwt=False)


def test_run_json_structure() -> None:
    results = tiny_run(["ES256", "HS256"], ["jwtmint-py", "joserfc"])
    assert json.loads(json.dumps(results)) == results
    assert results["settings"]["peers"] == ["jwtmint-py", "pyjwt", "joserfc"]  # + the reference
    env = results["environment"]
    for fact in ("python", "cryptography", "openssl", "cpu", "cpu_count", "jwtmint"):
        assert env[fact], fact
    assert results["peers"]["pyjwt"]["version"] == jwt.__version__
    assert results["peers"]["joserfc"]["status"] == "ok"
    assert results["checked_by"].startswith("PyJWT")
    assert set(results["results"]) == {"ES256", "HS256"}
    for result in results["results"].values():
        cells = result["contenders"]
        assert list(cells) == ["floor", "jwtmint-py", "pyjwt", "joserfc"]
        for cell in cells.values():
            assert cell["status"] == "timed"
            assert cell["median_us"] > 0
            assert len(cell["samples_us"]) == REPEATS
        assert cells["floor"]["vs_floor"] == 1.0
        assert cells["pyjwt"]["vs_pyjwt"] == 1.0
        assert cells["joserfc"]["vs_pyjwt"] > 0
        assert result["kid"] and result["message_bytes"] > 250
    text = format_report(results)
    assert "vs floor" in text and "vs PyJWT" in text and "joserfc 1." in text


def test_missing_peer_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jwskate", None)  # import jwskate -> ImportError
    assert get_peer("jwskate").missing() is not None
    results = tiny_run(["HS256"], ["jwskate"])
    info = results["peers"]["jwskate"]
    assert info["status"] == "missing"
    assert info["reason"].startswith("not installed (pip install jwskate)")
    assert results["results"]["HS256"]["contenders"]["jwskate"]["status"] == "missing"
    assert results["results"]["HS256"]["contenders"]["pyjwt"]["status"] == "timed"
    assert "missing: jwskate: not installed" in format_report(results)


def test_a_peer_that_fails_verification_is_reported_and_not_timed() -> None:
    def build(key: jwtmint.SigningKey, algorithm: str) -> job.Minter:
        def mint() -> str:
            token: str = jwt.encode(
                {**job.claims(), "iss": "someone-else"},
                key.key,
                algorithm=algorithm,
                headers={"kid": key.kid, "typ": job.TYP},
            )
            return token

        return mint

    wrong = Peer("wrong", "wrong iss", build, "jwt")
    results = tiny_run(["HS256"], ["wrong"], registry=[*PEERS, wrong])
    cell = results["results"]["HS256"]["contenders"]["wrong"]
    assert cell["status"] == "failed"
    assert "check before timing" in cell["reason"] and "iss" in cell["reason"].lower()
    assert "median_us" not in cell
    assert "failed the correctness check" in format_report(results)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown peer"):
        tiny_run(["HS256"], ["no-such-peer"])
    with pytest.raises(ValueError, match="unknown algorithm"):
        tiny_run(["none"])


def test_cli_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--json", "--algorithms", "HS256", "--peers", "jwtmint-py"]
    assert main([*argv, "--quick", "--repeats", "2", "--batch-ms", "1"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["settings"]["quick"] is True
    assert results["settings"]["algorithms"] == ["HS256"]
    assert results["results"]["HS256"]["contenders"]["jwtmint-py"]["status"] == "timed"


def test_cli_bench_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--algorithms", "ES256", "--peers", "jwtmint-py,jwcrypto"]
    assert main([*argv, "--repeats", "2", "--batch-ms", "1"]) == 0
    out = capsys.readouterr().out
    assert "ES256 (signing input" in out and "jwcrypto" in out and "summary, median µs" in out


def test_cli_bench_refuses_unknown_peer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--peers", "jwtmint-py,nope"])
    assert exit_info.value.code == 2
    assert "unknown nope" in capsys.readouterr().err


def test_cli_demo_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json", "--quick", "--algorithms", "HS256"]) == 0
    results = json.loads(capsys.readouterr().out)
    timings = results["results"]["HS256"]["timings"]
    assert {"jwtmint-py", "pyjwt"} <= set(timings)
    assert results["example"]["header"]["typ"] == "client-authentication+jwt"


@pytest.mark.parametrize("algorithm", ["ES256", "HS256", "EdDSA"])
def test_jwtmint_minter_names_its_kernel_and_leaves_the_active_one(algorithm: str) -> None:
    active = _kernels.kernel
    key = bench_key(algorithm)
    mint = adapters.jwtmint_minter(key, _pure, algorithm)
    assert _kernels.kernel is active
    check_token(mint(), key, algorithm, use_pyjwt=True)
    signer = jwtmint.AssertionSigner(key, job.CLIENT_ID, job.AUDIENCE, _kernel=_pure)
    assert "implementation='py'" in repr(signer)
    # the signature too: not the extension's C signers (HMAC, P-256, Ed25519)
    sign = signer._state.sign
    assert "_speedups" not in f"{type(sign).__module__} {getattr(sign, '__module__', '')}"
    check_token(signer.mint(), key, algorithm, use_pyjwt=True)
    for token in signer.mint_many(3):
        check_token(token, key, algorithm, use_pyjwt=True)


def test_percentile_is_the_nearest_rank() -> None:
    from jwtmint.bench.timing import percentile

    hundred = [float(n) for n in range(1, 101)]
    assert percentile(hundred, 0.50) == 50.0 and percentile(hundred, 0.99) == 99.0
    assert percentile(hundred, 1.0) == 100.0 and percentile(hundred, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0
