"""The live progress bar and status line: plain lines on a pipe, redrawn lines on a pty."""

from __future__ import annotations

import contextlib
import io
import os
import select
import threading
from collections.abc import Iterator

import pytest

from jwtmint._progress import LiveLine, Progress, is_live


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # the suite may run under TERM=dumb (an editor's shell): the tests choose their TERM
    monkeypatch.setenv("TERM", "xterm")


def test_plain_stream_gets_a_start_and_an_end_line_only() -> None:
    stream = io.StringIO()
    clock = Clock()
    with Progress(40, "bench", stream, clock=clock) as bar:
        for _ in range(40):
            clock.now += 0.05
            bar.advance(note="ES256 pyjwt")
    text = stream.getvalue()
    assert text.splitlines() == ["bench: started (40 to do)", "bench: done 40/40 in 2.0s"]
    assert "\r" not in text and "\x1b" not in text


def test_plain_stream_reports_every_plain_interval() -> None:
    stream = io.StringIO()
    clock = Clock()
    with Progress(4, "bench", stream, clock=clock) as bar:
        for _ in range(4):
            clock.now += 6.0
            bar.advance(note="RS256")
    lines = stream.getvalue().splitlines()
    # at 12 s and at 24 s a line (ten seconds apart at least), then the end
    assert lines == [
        "bench: started (4 to do)",
        "bench: 2/4 (50%) after 12.0s  RS256",
        "bench: 4/4 (100%) after 24.0s  RS256",
        "bench: done 4/4 in 24.0s",
    ]


def test_plain_stream_says_stopped_when_the_block_raises() -> None:
    stream = io.StringIO()
    with pytest.raises(KeyError), Progress(10, "bench", stream, clock=Clock()) as bar:
        bar.update(3)
        raise KeyError("x")
    assert stream.getvalue().splitlines()[-1] == "bench: stopped at 3/10 in 0.0s"


def test_quiet_writes_nothing() -> None:
    stream = io.StringIO()
    with Progress(3, "bench", stream, quiet=True) as bar:
        bar.advance(3)
    with LiveLine(stream, quiet=True) as line:
        line.status("x")
    assert stream.getvalue() == ""


def test_unknown_total_counts_without_a_bar() -> None:
    bar = Progress(None, "tokens", io.StringIO(), clock=Clock())
    bar.update(7, note="3 joins")
    assert bar.render() == "tokens  7  0.0s  3 joins"
    with pytest.raises(ValueError, match="total"):
        Progress(-1, "x", io.StringIO())


def test_render_shows_bar_percentage_count_and_time() -> None:
    clock = Clock()
    bar = Progress(8, "bench", io.StringIO(), clock=clock)
    clock.now += 1.25
    bar.update(2, note="ES256")
    assert bar.render() == "bench  [#####...............]   25%  2/8  1.2s  ES256"
    bar.update(9)  # more than the total: the bar is full, not longer
    assert "[" + "#" * 20 + "]" in bar.render()


def test_liveline_plain_keeps_the_latest_text_for_the_end() -> None:
    stream = io.StringIO()
    clock = Clock()
    with LiveLine(stream, clock=clock) as line:
        line.status("calls 1")
        line.status("calls 2")  # not due: kept
        line.status("calls\r\n3")  # a line break cannot split the line
    assert stream.getvalue().splitlines() == ["calls 1", "calls  3"]


def test_term_dumb_is_not_live(monkeypatch: pytest.MonkeyPatch) -> None:
    with _pty() as (stream, _):
        assert is_live(stream)
        monkeypatch.setenv("TERM", "dumb")
        assert not is_live(stream)
        assert not LiveLine(stream).live
    assert not is_live(io.StringIO())


@contextlib.contextmanager
def _pty() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A pseudo-terminal: its slave end as a text stream, its master end's fd to read."""
    master, slave = os.openpty()
    try:
        with open(slave, "w", encoding="utf-8") as stream:
            yield stream, master
    finally:
        os.close(master)


@pytest.fixture
def pty_pair() -> Iterator[tuple[io.TextIOWrapper, int]]:
    with _pty() as pair:
        yield pair


def _read(master: int) -> str:
    chunks = []
    while select.select([master], [], [], 0.2)[0]:
        chunks.append(os.read(master, 65536))
    return b"".join(chunks).decode()


def test_tty_redraws_in_place_at_most_ten_times_a_second(
    pty_pair: tuple[io.TextIOWrapper, int],
) -> None:
    stream, master = pty_pair
    clock = Clock()
    with Progress(100, "bench", stream, clock=clock) as bar:
        assert bar.live
        for _ in range(100):
            clock.now += 0.01  # one second in all: about ten redraws, not a hundred
            bar.advance()
    out = _read(master)
    draws = out.count("\r") - out.count("\r\n")  # the pty turns the final \n into \r\n
    assert 9 <= draws <= 13
    assert out.endswith("\r\n")
    final = out.rstrip("\r\n").rsplit("\r", 1)[-1]
    assert final.startswith("bench  [" + "#" * 20 + "]  100%  100/100  1.0s")
    assert "\x1b" not in out  # no colour, no escape sequence: NO_COLOR holds


def test_tty_liveline_covers_a_longer_previous_text(
    pty_pair: tuple[io.TextIOWrapper, int],
) -> None:
    stream, master = pty_pair
    clock = Clock()
    with LiveLine(stream, clock=clock) as line:
        line.status("requests 1000 joins 20")
        clock.now += 1
        line.status("done")
    out = _read(master)
    assert out == "\rrequests 1000 joins 20\rdone                  \r\n"


def test_advance_from_many_threads_loses_no_step() -> None:
    bar = Progress(8000, "demo", io.StringIO())

    def work() -> None:
        for _ in range(1000):
            bar.advance()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    assert bar.done == 8000
