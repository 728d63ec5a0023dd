"""Replay benchmark: how fast the whole decision path runs over a recording, and how much of
that Trio costs.

    .venv/bin/python bench/replay.py                 # 200,000 price_change events, 50 tokens
    .venv/bin/python bench/replay.py --quick --no-rss
    .venv/bin/python bench/replay.py --profile replay   # cProfile of one path, no JSON

It prints ONE JSON line (see bench/README.md for every field). An *event* is one decoded
market message; one frame may hold several (the subscription snapshot is an array).

What runs, each in its own child process so that peak RSS and caches belong to one path:

- **replay**: exactly ``mmbot replay`` (``app.replay`` under an autojump MockClock). The bench
  only wraps three things from outside: the frame decoder (stamps each frame's decode start),
  the executor's ``handle`` (remembers which fact caused the intent being handled) and the
  paper gateway's ``send`` (stamps the order request); a Trio instrument times every task step.
- **no-trio**: the same objects from ``app.build_engine`` driven by plain calls with the same
  fixed order as the recorded feed (timers due, then the instant's frames, then one decision
  step). Rows stay in memory while timed and are written synchronously at the end, timed
  apart. Its digest must equal the replay's: the same work was done.
- **rss**: the replay of a few seconds of market time with 50 and with 1,000 tokens.

Recordings come from the project's seeded generator and are cached in ``bench/.cache/``,
keyed by their parameters and by the generator's source, so a changed generator regenerates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))



from replay_paths import PATHS, child, run_child  # noqa: E402
from replay_recordings import QUICK_EVENTS, Spec, cached_recording, main_recording  # noqa: E402

RSS_TOKENS = (50, 1_000)
RSS_SECONDS, RSS_WARMUP_S = 5, 10
# Issue 14: Trio replay vs the no-Trio path; steady-state tick-to-submit on venue-shaped frames.
TARGETS = {"ratio": 0.8, "p50_us": 60, "p99_us": 200, "p999_us": 1_000, "writer_stall_ms": 5, "rss_kib_per_token": 16}


# --------------------------------------------------------------------------- the report


def _rss_per_token(seed: int, mirrored: bool) -> tuple[dict[str, float], float]:  # float-ok: KiB figures
    """(peak − idle) / tokens for each run, and the slope between the two runs."""
    net = {}
    for tokens in RSS_TOKENS:
        recording, meta = cached_recording(
            Spec(tokens=tokens, price_changes=0, seed=seed, duration_s=RSS_SECONDS, warmup_s=RSS_WARMUP_S,
                 mirrored=mirrored)
        )
        result = run_child("replay", recording, seed)
        net[meta["tokens"]] = result["peak_rss_kib"] - result["idle_rss_kib"]
    (small, small_kib), (large, large_kib) = sorted(net.items())
    per_token = {str(t): round(kib / t, 1) for t, kib in net.items()}  # float-ok
    return per_token, round((large_kib - small_kib) / (large - small), 1)  # float-ok



def report(args: argparse.Namespace) -> dict[str, Any]:
    recording, meta = main_recording(args)
    replay = run_child("replay", recording, args.seed)
    no_trio = run_child("no-trio", recording, args.seed)
    rate = round(replay["events"] / replay["seconds"])
    ceiling = round(no_trio["events"] / no_trio["seconds"])
    latency = replay["tick_to_submit_us"]["steady"]
    out: dict[str, Any] = {
        "recording": recording.name,
        "tokens": meta["tokens"],
        "frames": replay["frames"],
        "events": replay["events"],
        "price_change_events": meta["price_changes"],
        "level_changes": meta["level_changes"],
        "malformed": replay["malformed"],
        "events_per_s": rate,
        "events_per_s_no_trio": ceiling,
        "ratio": round(rate / ceiling, 3),  # float-ok
        "level_changes_per_s": round(meta["level_changes"] / replay["seconds"]),
        "events_per_cpu_s": round(replay["events"] / replay["cpu_seconds"]),
        "events_per_cpu_s_no_trio": round(no_trio["events"] / no_trio["cpu_seconds"]),
        "tick_to_submit_us": latency,
        "tick_to_submit_us_no_trio": no_trio["tick_to_submit_us"],
        "longest_stall_ms": replay["stall_ms"],
        "writer_longest_write_ms": replay["writer_longest_write_ms"],
        "peak_rss_mib": round(replay["peak_rss_kib"] / 1024, 1),  # float-ok
        "drops": replay["drops"],
        "rows_written": replay["rows_written"],
        "book_updates": replay["book_updates"],
        "orders": replay["orders"],
        "fills": replay["fills"],
        "writer_peak_pending": replay["writer_peak_pending"],
        "pending_rows_at_close": replay["pending_at_close"],
        "close_s": replay["close_s"],
        "close_timed_out": replay["close_timed_out"],
        "replay_wall_s": replay["wall_s"],
        "no_trio_flush_s": no_trio["flush_s"],
        "digests_match": None if replay["digest"] is None else replay["digest"] == no_trio["digest"],
    }
    met = {
        "ratio": out["ratio"] >= TARGETS["ratio"],
        "p50": latency["p50"] <= TARGETS["p50_us"],
        "p99": latency["p99"] <= TARGETS["p99_us"],
        "p999": latency["p999"] <= TARGETS["p999_us"],
        "writer_stall": replay["stall_ms"]["writer"] <= TARGETS["writer_stall_ms"],
    }
    if not args.no_rss:
        mirrored = not (args.batched or args.unmirrored)
        out["rss_per_token_kib"], out["rss_marginal_kib_per_token"] = _rss_per_token(args.seed, mirrored)
        met["rss_per_token"] = out["rss_marginal_kib_per_token"] <= TARGETS["rss_kib_per_token"]
    out["targets_met"] = met
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/replay.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="price_change events to generate")
    parser.add_argument("--tokens", type=int, default=50, help="subscribed tokens (two per market)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (also the paper latency seed)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run of {QUICK_EVENTS:,} events")
    parser.add_argument("--batched", action="store_true",
                        help="price_change messages in the simulator's older shape (~10 entries each) instead of the venue's")
    parser.add_argument("--unmirrored", action="store_true",
                        help="the simulator's two books per market (one entry per level change, mostly) instead of "
                             "the venue's one mirrored book (two entries each)")
    parser.add_argument("--no-rss", action="store_true", help="skip the 50/1,000-token RSS runs")
    parser.add_argument("--profile", choices=sorted(PATHS), help="cProfile one path in-process; no JSON")
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--recording", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.tokens % 2 or args.events < 1:
        parser.error("--tokens must be an even number >= 2 and --events positive")
    if args.child:
        print(json.dumps(child(args.child, args.recording, args.seed)))
        return 0
    if args.profile:
        child(args.profile, main_recording(args)[0], args.seed, profile=True)
        return 0
    print(json.dumps(report(args), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
