"""Retrying a token endpoint call: the policy, the attempt signals and the one retry runner."""

from __future__ import annotations

import asyncio
import copy
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .. import errors
from .._display import shown
from ..errors import ConfigurationError, TokenEndpointError, TokenRequestError

__all__ = ["Retry", "RetryPolicy", "Stop", "parse_retry_after", "retrying"]

_log = logging.getLogger("jwtmint.tokens")
_T = TypeVar("_T")
_E = TypeVar("_E", bound=TokenRequestError)
#: the classes rebuilt() can copy: jwtmint's own, constructed as (message, **attributes)
_OWN_ERRORS = frozenset(
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, TokenRequestError)
)


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
            raise ConfigurationError(f"attempts must be an int >= 1, got {self.attempts!r}")
        for name in ("backoff", "max_backoff", "deadline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(f"{name} must be a non-negative number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigurationError(f"{name} must be finite, got {value!r}")

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


class Retry(Exception):
    """Raised by an attempt that failed in a way another attempt may mend (``error``, with
    the server's ``retry_after`` when it gave one)."""

    def __init__(self, error: TokenEndpointError) -> None:
        super().__init__(str(error))
        self.error = error


class Stop(Exception):
    """Raised by an attempt when no further attempt can be made; ``error`` is the previous
    attempt's failure, the one to report."""

    def __init__(self, error: TokenEndpointError) -> None:
        super().__init__(str(error))
        self.error = error


async def retrying(
    attempt: Callable[[float], Awaitable[_T]], policy: RetryPolicy, request_timeout: float
) -> _T:
    """``await attempt(timeout)`` until it returns, retrying :class:`Retry` per ``policy``.

    Each attempt gets ``request_timeout`` or what is left of the deadline,
    whichever is less. The error raised at the end is a new one, built from
    the last failure with the number of attempts and the time spent: the
    caught exceptions are left as they were.
    """
    started = time.monotonic()
    number = 0
    while True:
        number += 1
        left = policy.deadline - (time.monotonic() - started)
        try:
            return await attempt(max(0.001, min(request_timeout, left)))
        except Retry as retry:
            error = retry.error
            delay = policy.delay(number, error.retry_after)
            elapsed = time.monotonic() - started
            if number >= policy.attempts or elapsed + delay >= policy.deadline:
                raise _gave_up(error, number, elapsed) from None
            _log.info("retrying in %.2f s after %s", delay, describe(error))
            await asyncio.sleep(delay)
        except Stop as stop:
            elapsed = time.monotonic() - started
            raise _gave_up(
                stop.error,
                number - 1,
                elapsed,
                "; nothing could authenticate another attempt (the caller's assertion was "
                "used, and the assertion service declined)",
            ) from None
        except TokenRequestError as error:
            if type(error) not in _OWN_ERRORS:
                # a ClientAssertionService's own subclass: its constructor is its own, so it
                # cannot be rebuilt; it is raised as it is, told how many attempts it took
                error.attempts = number
                raise
            raise rebuilt(error, attempts=number) from None


def describe(error: BaseException) -> str:
    """A short, secret-free description of an error for log lines: the server's ``error``
    code escaped and bounded (jwtmint's own messages are already)."""
    if isinstance(error, TokenRequestError) and error.error:
        return f"{type(error).__name__}: {shown(error.error, 100)}"
    return f"{type(error).__name__}: {shown(str(error), 500)}"


def rebuilt(error: _E, *, attempts: int, note: str = "") -> _E:
    """A copy of ``error`` (same class, attributes and traceback) that says how many
    attempts it took; ``error`` must be one of :mod:`jwtmint.errors`' own classes, whose
    constructors take the message first."""
    copied = copy.copy(error)
    copied.args = (f"{error.args[0]}{note}", *error.args[1:])
    copied.attempts = attempts
    # where it was raised (the exchange, the parser) stays in the traceback
    return copied.with_traceback(error.__traceback__)


def _gave_up(
    error: TokenEndpointError, attempts: int, elapsed: float, reason: str = ""
) -> TokenEndpointError:
    note = f" (gave up after {attempts} attempt{'s' * (attempts > 1)} in {elapsed:.1f} s"
    if error.retry_after is not None:
        note += f"; the server asked to retry after {error.retry_after:.0f} s"
    return rebuilt(error, attempts=attempts, note=note + ")" + reason)
