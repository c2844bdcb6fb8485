"""When to try a token request again, and how long to wait (full-jitter backoff)."""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of network errors, timeouts, 5xx and 429 answers.

    Up to ``attempts`` HTTP attempts in all, none starting after ``deadline``
    seconds from the first. Before attempt *n* + 1 the manager waits a random
    time up to ``min(max_backoff, backoff * 2**(n-1))`` ("full jitter", so
    that many gateways failing together do not retry together), or the
    server's ``Retry-After`` when it gives one (RFC 9110 §10.2.3), as long as
    that fits in the deadline. ``RetryPolicy(attempts=1)`` never retries.
    """

    attempts: int = 4
    backoff: float = 0.2
    max_backoff: float = 5.0
    deadline: float = 30.0

    def __post_init__(self) -> None:
        if type(self.attempts) is not int or self.attempts < 1:
            raise ValueError(f"attempts must be an int >= 1, got {self.attempts!r}")
        for name in ("backoff", "max_backoff", "deadline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from ``Retry-After``: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true, and float() refuses it
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - now)
