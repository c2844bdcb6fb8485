"""The README's token-manager example, run as written against a loopback server.

Only what cannot exist here is swapped: the IdP and API URLs (TokenEndpoint's),
the token endpoint path, the key file and the secrets (from the environment).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from jwtmint.testing import TokenEndpoint
from jwtmint.tokens import TokenManager

from .conftest import signing_key

README = Path(__file__).resolve().parent.parent / "README.md"


def token_manager_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Token manager") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the Token manager section has no python block"
    return match.group(1)


def localised(code: str, issuer: str, api: str, pem: Path) -> str:
    replacements = {
        'IDP = "https://idp.example.com"': f"IDP = {issuer!r}",
        'API = "https://api.example.com"': f"API = {api!r}",
        'f"{IDP}/connect/token"': 'f"{IDP}/token"',
        'Path("invoice.pem")': f"Path({str(pem)!r})",
        'f"{API}/invoices/42"': 'f"{API}/api/invoices/42"',
        "run(main())": "",
    }
    for old, new in replacements.items():
        assert old in code, f"the README example no longer contains {old!r}"
        code = code.replace(old, new)
    return code


async def test_the_readme_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = signing_key("ES256")
    assert not isinstance(key.key, bytes)
    pem = tmp_path / "invoice.pem"
    pem.write_bytes(
        key.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    billing, reports = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
    monkeypatch.setenv("BILLING_SECRET", billing)
    monkeypatch.setenv("REPORTS_SECRET", reports)
    async with TokenEndpoint() as ep:
        ep.register_client("invoice-service", public_key=key)
        ep.register_client("billing-service", secret=billing, auth_method="client_secret_jwt")
        ep.register_client("reports", secret=reports)
        namespace: dict[str, Any] = {}
        exec(localised(token_manager_example(), ep.issuer, ep.url, pem), namespace)
        await namespace["main"]()
        # the other two clients as configured there work too
        async with TokenManager(namespace["clients"]) as tokens:
            await tokens.get_token("billing")
            await tokens.get_token("reports")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Bearer ") and out[0].endswith(" invoice.read")
    assert (
        out[1]
        == "200 {'client_id': 'invoice-service', 'scope': 'invoice.read', 'path': 'invoices/42'}"
    )
    assert [(r.client_id, r.auth_method, r.outcome) for r in ep.requests] == [
        ("invoice-service", "private_key_jwt", "issued"),
        ("billing-service", "client_secret_jwt", "issued"),
        ("reports", "client_secret_basic", "issued"),
    ]
    assert ep.api_requests == [("invoices/42", 200)]
