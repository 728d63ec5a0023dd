"""Replay of the bundled recording: deterministic, trades with every strategy, explains itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmbot.memory.query import explain, format_explain, select_rows
from mmbot.memory.report import summary

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "recordings" / "sim-7.jsonl.gz"


def start_replay(db: Path, *, hash_seed: str, extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen(
        [sys.executable, "-m", "mmbot.cli", "replay", str(RECORDING), "--db", str(db), "--quiet", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def digest_of(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    match = re.search(r"^digest: ([0-9a-f]{64})$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Three replays in separate processes: two identical but for the hash seed, one with --seed 1."""
    tmp = tmp_path_factory.mktemp("replay")
    runs = {
        "a": (tmp / "a.db", start_replay(tmp / "a.db", hash_seed="1")),
        "b": (tmp / "b.db", start_replay(tmp / "b.db", hash_seed="4242")),
        "seed1": (tmp / "s.db", start_replay(tmp / "s.db", hash_seed="1", extra=("--seed", "1"))),
    }
    return {name: (db, digest_of(process)) for name, (db, process) in runs.items()}


def test_same_recording_gives_the_same_digest_whatever_the_hash_seed(replays) -> None:
    assert replays["a"][1] == replays["b"][1]


def test_a_different_paper_latency_seed_changes_the_digest(replays) -> None:
    assert replays["seed1"][1] != replays["a"][1]


def test_replay_trades_with_every_strategy(replays) -> None:
    report = summary(replays["a"][0])
    assert report["malformed"] == 0
    assert set(report["orders_by_strategy"]) >= {"maker", "taker"}
    assert set(report["fills_by_strategy"]) >= {"maker", "taker"}
    assert report["merges"] > 0
    assert report["resolutions"] >= 1  # the Up/Down interval markets resolve inside the recording
    assert report["book_updates"] > 1000
    assert (report["errors"], report["restarts"], report["breaker_trips"]) == (0, 0, 0)


def test_explain_prints_the_whole_chain_of_any_fill(replays) -> None:
    db = replays["a"][0]
    fills = select_rows(db, "kind = 'fill'")
    for fill in fills[:: max(1, len(fills) // 10)]:
        kinds = [row.kind for row in explain(db, fill.payload["fill_id"])]
        for kind in ("intent", "risk_verdict", "submit", "ack", "fill"):
            assert kind in kinds, (fill.payload["fill_id"], kinds)
        text = format_explain(explain(db, fill.payload["fill_id"]))
        assert "caused by f" in text


def test_report_plot_writes_a_png(replays, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    result = subprocess.run(
        [sys.executable, "-m", "mmbot.cli", "report", str(replays["a"][0]), "--plot", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "total PnL" in result.stdout
