"""A live progress bar and a one-line live status for the command line, without dependencies.

``Progress(total, label)`` draws ``label [#####.....]  45%  450/1000  3.2s  note`` and
redraws it in place (``\\r``) at most ten times a second when its stream is a terminal;
``LiveLine().status(text)`` does the same for any one line (the demo's counters under
concurrency). When the stream is not a terminal (a pipe, a file, CI's log) or ``TERM=dumb``,
there is no redrawing: plain lines only, at the start, at most every ten seconds, and at the
end, never a ``\\r`` or an escape sequence, so a log stays readable. Nothing here ever writes
colour or any other ANSI code, so ``NO_COLOR`` (https://no-color.org) holds by construction.

Why not rich, tqdm or alive-progress: each is a dependency (rich alone is larger than
jwtmint) for what is a bar and a status line. Everything they add (colours, nested bars,
spinners, Jupyter widgets) is something a CLI that scripts parse does not want; and the rule
that matters, plain lines when not a terminal, is a dozen lines here.

Both are context managers: leaving the block draws the final state and ends the line.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["LiveLine", "Progress", "is_live"]

#: the least time between two redraws of a live line (ten a second)
REDRAW_INTERVAL = 0.1
#: the least time between two plain lines when the stream is not a terminal
PLAIN_INTERVAL = 10.0
_BAR_WIDTH = 20


def is_live(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that can redraw a line: a TTY, and ``TERM`` is not
    ``dumb`` (a terminal that cannot be relied on to honour ``\\r``, such as Emacs' shell)."""
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


def _columns(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 80
    # a pseudo-terminal nobody sized reports 0
    return columns if columns > 0 else 80


def _one_line(text: str) -> str:
    # a line break or carriage return in a note would break the redraw (and forge a line)
    return text.replace("\r", " ").replace("\n", " ")


class LiveLine:
    """One line of status, redrawn in place on a terminal, as plain lines elsewhere.

    ``status(text)`` replaces the line; on a terminal it is drawn at most every
    ``REDRAW_INTERVAL`` seconds (the latest text wins), elsewhere at most every
    ``plain_interval`` seconds (the first at once). ``close()`` (or leaving the ``with``
    block) draws the latest text if it was not drawn yet and ends the line. ``quiet`` draws
    nothing at all (``--json``). Thread-safe: workers may call ``status`` concurrently.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        plain_interval: float = PLAIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream: TextIO = sys.stderr if stream is None else stream
        self.quiet = quiet
        self.live = not quiet and is_live(self.stream)
        self.plain_interval = plain_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._text = ""
        self._drawn_text: str | None = None
        self._drawn_at: float | None = None
        self._width = 0
        self._closed = False

    def __enter__(self) -> LiveLine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def status(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` as the line (drawn now if due, or if ``force``)."""
        with self._lock:
            self._text = _one_line(text)
            if not self._closed:
                self._draw(force=force)

    def close(self) -> None:
        """Draw the latest text if it is not on screen yet, and end the line."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.quiet:
                return
            if self._drawn_text != self._text:
                self._write(self._text)
            if self.live and self._drawn_at is not None:
                self.stream.write("\n")
                self.stream.flush()

    def _draw(self, *, force: bool) -> None:
        if self.quiet:
            return
        now = self._clock()
        interval = REDRAW_INTERVAL if self.live else self.plain_interval
        due = self._drawn_at is None or now - self._drawn_at >= interval
        if (due or force) and self._text != self._drawn_text:
            self._write(self._text)

    def _write(self, text: str) -> None:
        self._drawn_at = self._clock()
        self._drawn_text = text
        if not self.live:
            self.stream.write(text + "\n")
        else:
            # the last column left free: writing into it wraps on some terminals
            text = text[: max(_columns(self.stream) - 1, 10)]
            # spaces, not an erase-line escape, cover what a longer previous line left
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        self.stream.flush()


class Progress:
    """A progress bar for ``total`` steps of work named ``label``.

    ``advance(n)`` counts ``n`` more steps done, ``update(done)`` sets the count; either may
    carry a ``note`` shown after the figures (the batch being timed). On a terminal the bar
    is redrawn at most ten times a second; elsewhere a plain line is written at the start,
    at most every ``plain_interval`` seconds, and at the end (``done N/T in 12.3s``, or
    ``stopped at N/T`` when the block raised). ``total`` may be ``None`` when unknown: then
    the count and the time are shown without a bar. Thread-safe, as :class:`LiveLine` is.
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        plain_interval: float = PLAIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"total must be >= 0 or None, got {total}")
        self.total = total
        self.label = label
        self.done = 0
        self.note = ""
        self._clock = clock
        self._line = LiveLine(stream, quiet=quiet, plain_interval=plain_interval, clock=clock)
        self._started = clock()
        self._finished = False
        # advance() from several threads must not lose a step
        self._count_lock = threading.RLock()
        if not self._line.live:
            todo = f" ({total} to do)" if total is not None else ""
            self._line.status(f"{label}: started{todo}")

    @property
    def live(self) -> bool:
        """Whether the bar is redrawn in place (the stream is a terminal)."""
        return self._line.live

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was made."""
        return self._clock() - self._started

    def __enter__(self) -> Progress:
        if self.live:
            self._line.status(self.render())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(failed=kind is not None)

    def advance(self, n: int = 1, note: str | None = None) -> None:
        """Count ``n`` more steps done (``note`` replaces the note when given)."""
        with self._count_lock:
            self.update(self.done + n, note)

    def update(self, done: int, note: str | None = None) -> None:
        """Set the count of steps done (``note`` replaces the note when given)."""
        with self._count_lock:
            self.done = done
            if note is not None:
                self.note = note
            self._line.status(self.render() if self.live else self._plain())

    def close(self, *, failed: bool = False) -> None:
        """Draw the final state and end the line; a second call does nothing."""
        if self._finished:
            return
        self._finished = True
        if self.live:
            self._line.status(self.render())
        else:
            word = "stopped at" if failed else "done"
            self._line.status(f"{self.label}: {word} {self._count()} in {self.elapsed:.1f}s")
        self._line.close()

    def render(self) -> str:
        """The bar as one line: label, bar, percentage, count, elapsed time, note."""
        parts = [self.label]
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * _BAR_WIDTH)
            parts.append("[" + "#" * filled + "." * (_BAR_WIDTH - filled) + "]")
            parts.append(f"{fraction:4.0%}")
        parts.append(self._count())
        parts.append(f"{self.elapsed:.1f}s")
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)

    def _plain(self) -> str:
        percent = f" ({self.done / self.total:.0%})" if self.total else ""
        note = f"  {self.note}" if self.note else ""
        return f"{self.label}: {self._count()}{percent} after {self.elapsed:.1f}s{note}"
