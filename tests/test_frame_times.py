"""FrameTimes: a replay's real processing time per frame, in a fixed histogram; and the replay summary
showing it instead of a decision latency of 0 on the recording's virtual clock."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mmbot.facts.frame_times import FrameTimes

ROOT = Path(__file__).resolve().parent.parent


def exact(samples: list[int], per_mille: int) -> int:
    ordered = sorted(samples)
    return ordered[max(1, -(-len(ordered) * per_mille // 1000)) - 1]


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300),
       st.sampled_from([1, 500, 900, 990, 999, 1000]))
def test_a_percentile_is_within_a_sixteenth_above_the_exact_one_and_never_past_the_max(samples, per_mille) -> None:
    times = FrameTimes()
    for ns in samples:
        times.add(ns)
    truth = exact(samples, per_mille)
    got = times.percentile_ns(per_mille)
    assert truth <= got <= max(samples)
    assert got - truth <= truth // 16
    assert (times.count, times.total_ns, times.max_ns) == (len(samples), sum(samples), max(samples))


def test_small_times_are_exact_and_nothing_is_zero_when_empty() -> None:
    times = FrameTimes()
    assert times.summary() == {"frames": 0, "p50_us": 0, "p99_us": 0, "p999_us": 0, "max_us": 0, "busy_ms": 0}
    for ns in (3, 7, 7, 15):
        times.add(ns)
    assert [times.percentile_ns(p) for p in (250, 500, 750, 1000)] == [3, 7, 7, 15]


def test_the_replay_summary_shows_real_processing_time_not_a_virtual_decision_latency(tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mmbot.cli", "replay", str(ROOT / "recordings" / "sim-7.jsonl.gz"),
         "--db", str(tmp_path / "r.db"), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "decision latency" not in run.stdout
    row = re.search(r"processing per frame \(real time, µs\)\s*│\s*frames (\d+), p50_us (\d+), p99_us (\d+)", run.stdout)
    assert row, run.stdout
    frames, p50, p99 = map(int, row.groups())
    assert frames > 7000 and 0 < p50 <= p99  # every market frame of the recording, each taking some time
    assert "simulated ack latency" in run.stdout
