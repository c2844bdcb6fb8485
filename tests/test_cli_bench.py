"""``jwtmint bench``'s face: --plot (a PNG from a canned result and from a tiny real run), its
refusals (exit 2 before any timing), and the progress bar: plain lines on a pipe, none with
--json."""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jwtmint._cli import main
from jwtmint.bench.plot import save_plot

JWTMINT = Path(sys.executable).parent / "jwtmint"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--algorithms", "HS256", "--peers", "jwtmint-py", "--repeats", "2", "--batch-ms", "1"]


def canned_results() -> dict[str, Any]:
    """The shape of jwtmint.bench.runner.run's results, with made-up figures: two
    algorithms, three peers, one of them not timed on one algorithm."""
    peers = {"jwtmint-c": "jwtmint C", "pyjwt": "PyJWT", "jwcrypto": "jwcrypto"}
    figures = {
        "ES256": {"floor": 21.0, "jwtmint-c": 23.5, "pyjwt": 38.0, "jwcrypto": 110.0},
        "HS256": {"floor": 0.3, "jwtmint-c": 0.9, "pyjwt": 17.0},
    }
    results = {
        algorithm: {
            "contenders": {
                name: {"status": "timed", "median_us": value} for name, value in cells.items()
            }
        }
        for algorithm, cells in figures.items()
    }
    results["HS256"]["contenders"]["jwcrypto"] = {"status": "n/a"}
    for cells in results.values():
        cells["contenders"]["pyjwt-rs"] = {"status": "missing"}
    return {
        "environment": {
            "jwtmint": "0.1.0", "python": "CPython 3.11.7", "cryptography": "50.0",
            "openssl": "OpenSSL 3", "cpu": "Example CPU", "cpu_count": 2, "cpu_usable": 2,
            "platform": "Linux",
        },
        "settings": {"algorithms": list(figures), "peers": [*peers, "pyjwt-rs"], "repeats": 7,
                     "quick": True},
        "peers": {
            **{name: {"label": label, "status": "ok"} for name, label in peers.items()},
            "pyjwt-rs": {"label": "pyjwt-rs", "status": "missing"},  # left out of the chart
        },
        "results": results,
    }  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plot_from_a_canned_result(tmp_path: Path) -> None:
    out = tmp_path / "bench.png"
    save_plot(canned_results(), out)
    width, height = png_size(out)
    assert width >= 800 and height >= 500
    assert 10_000 < out.stat().st_size < 150_000


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JWTMINT), "bench", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


def test_tiny_bench_with_plot_json_is_silent_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "tiny.png"
    result = run_cli(*TINY, "--quick", "--json", "--plot", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --json: no progress, no chatter
    assert json.loads(result.stdout)["results"]["HS256"]["contenders"]["jwtmint-py"]["status"]
    png_size(out)


def test_progress_on_a_pipe_is_plain_lines() -> None:
    result = run_cli(*TINY)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == "jwtmint bench: started (9 to do)"
    assert result.stderr.splitlines()[-1].startswith("jwtmint bench: done 9/9 in ")
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert "HS256 (signing input" in result.stdout


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--plot", "out.svg"], "--plot writes a PNG: name the file *.png, not out.svg"),
        (
            ["--plot", "no/such/dir/out.png"],
            "--plot no/such/dir/out.png: directory no/such/dir does not exist",
        ),
        (
            ["tokens", "--plot", "out.png"],
            "--plot draws the peer comparison and bench gateway only, not bench tokens",
        ),
        (["--repeats", "0"], "argument --repeats: '0' is not a whole number above 0"),
        (["--batch-ms", "inf"], "argument --batch-ms: 'inf' is not a number above 0"),
    ],
)
def test_plot_refusals_exit_2_before_timing(tmp_path: Path, args: list[str], text: str) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip().splitlines()[-1] == f"jwtmint bench: error: {text}"
    assert "started" not in result.stderr  # nothing was timed
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *TINY, "--plot", str(tmp_path / "out.png")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "jwtmint bench: error: --plot needs matplotlib: pip install 'jwtmint[plot]'\n"
    )
    assert not (tmp_path / "out.png").exists()


def test_progress_on_a_terminal_is_one_redrawn_line() -> None:
    master, slave = os.openpty()
    try:
        process = subprocess.run(
            [str(JWTMINT), "bench", *TINY[:-2], "--batch-ms", "20"],
            stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120, check=False,
            env={**os.environ, "TERM": "xterm"},
        )  # fmt: skip
        chunks = []
        while select.select([master], [], [], 0.2)[0]:
            chunks.append(os.read(master, 65536))
    finally:
        os.close(slave)
        os.close(master)
    assert process.returncode == 0
    drawn = b"".join(chunks).decode()
    assert drawn.startswith("\rjwtmint bench  [")
    assert drawn.endswith("\r\n") and drawn.count("\n") == 1  # one line, redrawn in place
    assert "100%  9/9" in drawn.rsplit("\r", 2)[-2]
