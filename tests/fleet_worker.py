"""One gateway of a fleet, for tests/test_redis_fleet.py: a TokenManager on a RedisTokenCache.

Run as ``python tests/fleet_worker.py '<json config>'``. It builds its manager
(which is what takes a process its time), prints ``ready``, waits for a line
on stdin (the barrier: the test releases every worker at once), asks for a
token for every scope at the same time, and prints one JSON line: scope ->
fingerprint of the token it got (never the token itself), the seconds it took
and its counters. Config: ``redis`` (URL), ``issuer``, ``client_id``,
``secret``, ``scopes``, ``encryption_key`` (hex), ``lock_timeout``,
``operation_timeout``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sys
import time
from typing import Any

from jwtmint.tokens import ClientCredentialsClient, RedisTokenCache, TokenManager


def fingerprint(access_token: str) -> str:
    return hashlib.sha256(access_token.encode()).hexdigest()[:16]


async def main(config: dict[str, Any]) -> None:
    client = ClientCredentialsClient(
        config["client_id"],
        issuer=config["issuer"],
        client_secret=config["secret"],
        auth_method="client_secret_jwt",
        allow_insecure_http=True,
    )
    cache = RedisTokenCache(
        config["redis"],
        encryption_keys=[bytes.fromhex(config["encryption_key"])],
        lock_timeout=config["lock_timeout"],
        operation_timeout=config["operation_timeout"],
    )
    # no retries: a second request for a key must come from the lock failing, not a retry
    async with cache, TokenManager({"fleet": client}, cache=cache, retries=0) as tokens:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        started = time.monotonic()
        scopes: list[str] = config["scopes"]
        got = await asyncio.gather(*(tokens.get_token("fleet", scope=s) for s in scopes))
        elapsed = time.monotonic() - started
        report = {
            "tokens": {s: fingerprint(t.access_token) for s, t in zip(scopes, got, strict=True)},
            "elapsed": elapsed,
            "manager": dataclasses.asdict(tokens.stats()),
            "cache": dataclasses.asdict(cache.stats()),
        }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
