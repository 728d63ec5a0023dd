"""Recording headers no recorder writes are refused (issue 13 item 8): negative times, a tick out
of (0, 1), a negative minimum size, absurd fees, the same token twice… each one line naming the
market and field, exit code 2, through ``mmbot replay`` as a subprocess; the bundled recording
and a generated one still pass."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from mmbot.facts.recording import RecordingError, read_header

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "recordings" / "sim-7.jsonl.gz"


def with_header(tmp_path: Path, change: Callable[[dict[str, Any]], None], frame: str | None = None) -> Path:
    lines = gzip.open(RECORDING, "rt").read().splitlines()[:50]
    header = json.loads(lines[0])
    change(header)
    lines[0] = json.dumps(header)
    if frame is not None:
        lines[1] = frame
    path = tmp_path / "changed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def market(i: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda header: header["markets"][i].update(fields)


def second_token_is(i: int, source: tuple[int, int]) -> Callable[[dict[str, Any]], None]:
    def change(header: dict[str, Any]) -> None:
        header["markets"][i]["tokens"][1] = header["markets"][source[0]]["tokens"][source[1]]
    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda h: h.update(start_ns=-1), "header: 'start_ns' must not be negative, got -1"),
        (market(0, end_ns=-5), "header: market 0: 'end_ns' must not be negative, got -5"),
        (market(1, tick="0"), "header: market 1: 'tick' must be above 0, below 1 and divide 1, got 0"),
        (market(1, tick="1"), "'tick' must be above 0, below 1 and divide 1, got 1"),
        (market(1, tick="0.03"), "'tick' must be above 0, below 1 and divide 1, got 0.03"),
        (market(2, min_size="-5"), "header: market 2: 'min_size' must not be negative, got -5"),
        (market(3, fee_rate="-0.01"), "header: market 3: 'fee_rate' must be from 0 to 1, got -0.01"),
        (market(3, fee_rate="2"), "'fee_rate' must be from 0 to 1, got 2"),
        (market(3, fee_exponent=5), "header: market 3: 'fee_exponent' must be from 0 to 4, got 5"),
        (market(3, fee_exponent=-1), "'fee_exponent' must be from 0 to 4, got -1"),
        (second_token_is(0, (0, 0)), "header: market 0: both outcomes have the same token"),
        (second_token_is(4, (1, 0)), "header: market 4: token "),
        (market(0, tokens=["", "1"]), "header: market 0: a token id is empty"),
        (market(0, market=""), "header: market 0: 'market' is empty"),
        (lambda h: h["markets"].append(dict(h["markets"][0])), "is listed twice (also market 0)"),
    ],
    ids=["start<0", "end<0", "tick-0", "tick-1", "tick-0.03", "min_size<0", "fee_rate<0", "fee_rate>1",
         "exponent-5", "exponent<0", "same-token", "token-in-two-markets", "empty-token", "empty-market",
         "market-twice"],
)
def test_a_bad_header_is_one_line_and_exit_2(tmp_path, change, message) -> None:
    recording = with_header(tmp_path, change)
    done = subprocess.run([sys.executable, "-m", "mmbot.cli", "replay", str(recording), "--quiet", "--db",
                           str(tmp_path / "r.db")], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"mmbot: {recording}: line 1: ") and message in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "r.db").exists()


def test_a_negative_frame_time_is_refused(tmp_path) -> None:
    recording = with_header(tmp_path, lambda h: None, frame='{"t":-1,"ch":"market","frame":"[]"}')
    done = subprocess.run([sys.executable, "-m", "mmbot.cli", "replay", str(recording), "--quiet", "--db",
                           str(tmp_path / "r.db")], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "line 2: negative receive time -1" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1


def test_good_headers_pass(tmp_path) -> None:
    assert len(read_header(RECORDING).markets) == 6
    # a market may end before the recording starts (a listed market can trade past its end date)
    ended = with_header(tmp_path, market(0, end_ns=1, fee_exponent=0, min_size="0", tick="0.0001"))
    assert read_header(ended).markets[0].end_ns == 1
    generated = tmp_path / "g.jsonl"
    done = subprocess.run([sys.executable, "-m", "mmbot.cli", "generate", "--out", str(generated), "--duration", "10",
                           "--markets", "3"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert len(read_header(generated).markets) >= 3
    with pytest.raises(RecordingError, match="line 1: header: market 0: 'tick'"):
        read_header(with_header(tmp_path, market(0, tick="-0.01")))
