"""Retrying a token endpoint call: the policy, its deadline, the attempt signals and the runner."""

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
from ..errors import (
    ConfigurationError,
    JwtMintError,
    TokenEndpointError,
    TokenEndpointTimeout,
    TokenRequestError,
)

__all__ = [
    "Deadline",
    "Pauses",
    "Retry",
    "RetryPolicy",
    "Stop",
    "out_of_time",
    "parse_retry_after",
    "retrying",
]

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

    Up to ``attempts`` HTTP attempts in all. ``deadline`` bounds the whole
    token request, from the call that starts it: discovery, the wait for a
    shared cache's lock, every attempt (its assertion included) and every
    wait between attempts, each cut to what is left of it. Before attempt
    *n* + 1 the manager waits a random time up to
    ``min(max_backoff, backoff * 2**(n-1))`` ("full jitter", so that many
    gateways failing together do not retry together), or the server's
    ``Retry-After`` when it gives a longer one (RFC 9110 §10.2.3), as long as
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
        """Seconds to wait after failed attempt number ``attempt`` (1-based): the backoff,
        or the server's ``retry_after`` when that is longer. A shorter one (``0``, a past
        date) never removes the backoff, or a failing server would be asked again at once."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        backoff = random.uniform(0.0, ceiling)
        return backoff if retry_after is None else max(backoff, retry_after)


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


class Deadline:
    """The time by which one token request must be over (monotonic), from ``seconds`` now."""

    __slots__ = ("expires", "seconds", "started")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.expires = self.started + seconds

    def left(self) -> float:
        """Seconds left (negative once it has passed)."""
        return self.expires - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def part(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now, or this one's if that comes first."""
        return Deadline(max(0.0, min(seconds, self.left())))


def out_of_time(deadline: Deadline, client: str, waiting: str) -> TokenEndpointTimeout:
    """The error of a token request whose deadline ran out before its next step."""
    return TokenEndpointTimeout(
        f"the token request for client {client!r} ran out of its {deadline.seconds:.3g} s "
        f"deadline {waiting}; give RetryPolicy(deadline=) more time, or look at that server",
        client=client,
    )


#: the longest a server's Retry-After holds its token endpoint back: a day, a daily quota's
#: reset; a longer one (or an HTTP-date years ahead, a server's mistake) is taken as a day
MAX_PAUSE = 86_400.0
#: token endpoints held back at once (a manager has one per client at most)
MAX_PAUSED = 1024


class Pauses:
    """What token endpoints asked with ``Retry-After`` (RFC 9110 §10.2.3), remembered per
    endpoint until it passes, so that the next requests do not ask again meanwhile.

    One per manager, gone with it, on the manager's ``clock`` (its time of token
    expiry and background backoff). An entry that has passed is dropped when it is
    next looked at; beyond :data:`MAX_PAUSED` endpoints, those that end soonest go.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._until: dict[str, tuple[float, TokenEndpointError]] = {}

    def __len__(self) -> int:
        return len(self._until)

    def note(self, endpoint: str, error: TokenEndpointError) -> None:
        """``endpoint`` answered ``error``, whose ``retry_after`` (if any) holds it back."""
        seconds = error.retry_after
        if seconds is None or seconds <= 0:
            return
        now = self._clock()
        if endpoint not in self._until and len(self._until) >= MAX_PAUSED:
            for name in [name for name, (until, _) in self._until.items() if until <= now]:
                del self._until[name]
            while len(self._until) >= MAX_PAUSED:
                del self._until[min(self._until, key=lambda name: self._until[name][0])]
        self._until[endpoint] = (now + min(seconds, MAX_PAUSE), error)

    def answered(self, endpoint: str) -> None:
        """``endpoint`` issued a token: it is not holding anyone back any more (a pause
        one node behind a load balancer asked for must not outlast the service's return)."""
        self._until.pop(endpoint, None)

    def left(self, endpoint: str) -> float:
        """Seconds ``endpoint`` is still held back (0.0: it is not)."""
        held = self._until.get(endpoint)
        if held is None:
            return 0.0
        left = held[0] - self._clock()
        if left <= 0:
            del self._until[endpoint]
            return 0.0
        return left

    def refusal(self, endpoint: str, client: str) -> TokenEndpointError:
        """The error for a request of ``client`` not sent because ``endpoint`` is held back
        (:meth:`left` said so): the server's answer again (its status and OAuth error),
        with the time left."""
        until, asked = self._until[endpoint]
        left = max(0.0, until - self._clock())
        error = TokenEndpointError(
            f"the token endpoint of client {client!r} answered an earlier request (of client "
            f"{asked.client!r}) HTTP {asked.status} with Retry-After: "
            f"{asked.retry_after:.0f}; this request was not sent: retry after {left:.0f} s",
            error=asked.error,
            error_description=asked.error_description,
            error_uri=asked.error_uri,
            status=asked.status,
            client=client,
            attempts=0,
        )
        error.retry_after = left
        return error


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
    attempt: Callable[[float], Awaitable[_T]],
    policy: RetryPolicy,
    request_timeout: float,
    deadline: Deadline | None = None,
) -> _T:
    """``await attempt(timeout)`` until it returns, retrying :class:`Retry` per ``policy``.

    Each attempt gets ``request_timeout`` or what is left of ``deadline`` (by
    default ``policy.deadline`` from now), whichever is less; no wait between
    attempts reaches past it. The error raised at the end is a new one, built
    from the last failure with the number of attempts and the time spent: the
    caught exceptions are left as they were.
    """
    if deadline is None:
        deadline = Deadline(policy.deadline)
    number = 0
    while True:
        number += 1
        try:
            return await attempt(max(0.001, min(request_timeout, deadline.left())))
        except Retry as retry:
            error = retry.error
            delay = policy.delay(number, error.retry_after)
            elapsed = deadline.elapsed()
            if number >= policy.attempts or delay >= deadline.left():
                retry.__traceback__ = None  # the exchange's frames: see rebuilt()
                raise _gave_up(error, number, elapsed) from None
            _log.info("retrying in %.2f s after %s", delay, describe(error))
            await asyncio.sleep(delay)
        except Stop as stop:
            stop.__traceback__ = None  # the exchange's frames: see rebuilt()
            raise _gave_up(
                stop.error,
                number - 1,
                deadline.elapsed(),
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
    if isinstance(error, JwtMintError):  # its message is escaped already: not twice
        return f"{type(error).__name__}: {str(error)[:500]}"
    return f"{type(error).__name__}: {shown(str(error), 500)}"


def rebuilt(error: _E, *, attempts: int, note: str = "") -> _E:
    """A copy of ``error`` (same class and attributes) that says how many attempts it took;
    ``error`` must be one of :mod:`jwtmint.errors`' own classes, whose constructors take the
    message first.

    Neither the copy nor ``error`` keeps a traceback: the frames of the exchange hold the
    request's form and headers (a client secret, an Authorization header, the aiohttp
    response with its request_info), which tools that capture locals (Sentry's default,
    ``traceback.TracebackException(capture_locals=True)``) would show. The copy's traceback
    starts where the retry runner raises it.
    """
    copied = copy.copy(error)
    copied.args = (f"{error.args[0]}{note}", *error.args[1:])
    copied.attempts = attempts
    error.__traceback__ = None  # reachable as the copy's suppressed __context__
    return copied.with_traceback(None)


def _gave_up(
    error: TokenEndpointError, attempts: int, elapsed: float, reason: str = ""
) -> TokenEndpointError:
    note = f" (gave up after {attempts} attempt{'s' * (attempts > 1)} in {elapsed:.1f} s"
    if error.retry_after is not None:
        note += f"; the server asked to retry after {error.retry_after:.0f} s"
    return rebuilt(error, attempts=attempts, note=note + ")" + reason)
