"""mmbot's replay side by side with NautilusTrader's BacktestEngine, on the same recording.

    .venv/bin/python bench/nautilus.py                 # the replay bench's 200,000 price_change recording
    .venv/bin/python bench/nautilus.py --quick --rounds 1
    .venv/bin/python bench/nautilus.py --quick --check # NT's books at the end == mmbot's, every token

NautilusTrader is the optional ``bench`` extra (``.venv/bin/pip install -e '.[bench]'``).

The recording is the replay bench's (``bench/replay.py``'s ``main_recording``, cached in
``bench/.cache``). Each round runs four children, each in a fresh interpreter, in an order that
rotates from round to round:

- **nautilus**: the recording decoded by mmbot's own decoder and converted into NT instruments,
  book deltas and trade ticks (``nautilus_data.py``) *before* any timing; then ``add_data``
  (timed apart) and ``engine.run()`` (the figure) with the top-of-book taker
  (``nautilus_strategies.CompleteSets``);
- **nautilus_maker**: the same with the re-quoting maker as well (what mmbot runs);
- **mmbot**: exactly ``mmbot replay``'s code (``replay.run_child("replay-plain", ...)``: the
  replay bench's path without its tick-to-submit probe, whose wrappers cost per frame): gzip,
  JSON decoding, books, strategies (taker and maker: the defaults), risk, ledger, paper venue,
  every row written to SQLite on a thread;
- **mmbot_taker**: the same with the maker off (``replay-plain-taker``): the strategy
  **nautilus** runs.

Every rate has the same numerator: mmbot's decoded market messages (``events``).
``ratio_vs_nautilus`` is the issue's figure, mmbot's defaults against NT's top-of-book taker;
``like_for_like`` sets each side's same strategies against each other: taker against taker
(mmbot_taker / nautilus), taker and maker against taker and maker (mmbot / nautilus_maker).
Prints ONE JSON line (see bench/README.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(ROOT), str(BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from mmbot.clock import monotonic_ns, wall_ns
from mmbot.config import Config
from mmbot.decisions.book import Books
from mmbot.model import Side
from replay_probe import peak_rss_kib

INSTALL = ".venv/bin/pip install -e '.[bench]'"
CONFIGS = {"nautilus": False, "nautilus_maker": True}  # child name -> whether the maker quotes too
MMBOT = {"mmbot": "replay-plain", "mmbot_taker": "replay-plain-taker"}  # child name -> the replay bench's path
TARGET_RATIO = 0.5
# mmbot's paper venue starts with 1,000 pUSD and gets it back by merging complete sets; NT cannot
# merge, so its cash account starts deep enough never to refuse an order for want of cash.
STARTING_BALANCE = 1_000_000
PART_QUIET_S = 120  # a recording being generated whose file has not grown for this long is abandoned


def _seconds(ns: int) -> float:  # float-ok: a duration for the report
    return round(ns / 1e9, 3)


# --------------------------------------------------------------------------- the NT child


def build_engine(conv: Any, *, maker: bool) -> tuple[Any, Any]:
    """A BacktestEngine with the POLYMARKET venue, every instrument and one strategy; no data yet."""
    from nautilus_data import VENUE
    from nautilus_strategies import CompleteSets, CompleteSetsConfig
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.backtest.models import LatencyModel
    from nautilus_trader.config import BacktestEngineConfig, LoggingConfig
    from nautilus_trader.model.currencies import USDC_POS
    from nautilus_trader.model.enums import AccountType, BookType, OmsType
    from nautilus_trader.model.identifiers import TraderId
    from nautilus_trader.model.objects import Money

    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR"),
    ))
    engine.add_venue(
        venue=VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USDC_POS,
        starting_balances=[Money(STARTING_BALANCE, USDC_POS)],
        book_type=BookType.L2_MBP,
        # the paper venue's acknowledgement latency (its seeded jitter aside)
        latency_model=LatencyModel(base_latency_nanos=Config().paper.ack_latency_ms * 1_000_000),
    )
    for instrument in conv.instruments:
        engine.add_instrument(instrument)
    instruments = {instrument.id: instrument for instrument in conv.instruments}
    strategy = CompleteSets(CompleteSetsConfig(maker=maker), conv.markets, conv.ids, instruments)
    engine.add_strategy(strategy)
    return engine, strategy


def run_nautilus(recording: Path, *, maker: bool) -> dict[str, Any]:
    import nautilus_trader
    from nautilus_data import convert

    started = monotonic_ns()
    conv = convert(recording)
    converted = monotonic_ns()
    engine, strategy = build_engine(conv, maker=maker)
    built = monotonic_ns()
    # One call in recording order: add_data's sort is stable, so frames of one instant keep the
    # order they were received in (per-instrument calls would group them by instrument).
    engine.add_data(conv.data)
    added = monotonic_ns()
    engine.run()
    ran = monotonic_ns()
    result = {
        "nautilus_trader": nautilus_trader.__version__,
        "events": conv.counts["messages"],
        "data_objects": len(conv.data),
        "deltas": conv.counts["deltas"],
        "conversion": dict(sorted(conv.counts.items())),
        "size_precision": conv.size_precision,
        "price_precisions": dict(sorted(Counter(conv.price_precision.values()).items())),
        "convert_s": _seconds(converted - started),
        "build_s": _seconds(built - converted),
        "add_data_s": _seconds(added - built),
        "run_s": (ran - added) / 1e9,  # float-ok: the timed figure, full resolution
        "iterations": engine.iteration,
        "work": dict(sorted(strategy.figures.items())),
        "orders_in_cache": len(engine.cache.orders()),
        "positions_in_cache": len(engine.cache.positions()),
        "peak_rss_kib": peak_rss_kib(),
    }
    engine.dispose()
    return result


# --------------------------------------------------------------------------- the check


class CountingSink:
    """mmbot's EventSink port for a bare ``Books``: counts the rows it would have written."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "",
               token: str = "") -> None:
        self.kinds[kind] += 1


def _nt_levels(levels: list[Any]) -> list[tuple[int, int]]:
    from nautilus_data import to_micro

    return [(to_micro(level.price.raw), sum(to_micro(order.size.raw) for order in level.orders())) for level in levels]


def check(recording: Path) -> dict[str, Any]:
    """Replay the converted stream through NT (top-of-book taker) and the decoded stream through
    mmbot's ``Books``; compare every token's book at the end, top and full depth."""
    from nautilus_data import convert, decoded_messages

    conv = convert(recording)
    engine, _ = build_engine(conv, maker=False)
    engine.add_data(conv.data)
    engine.run()
    sink = CountingSink()
    books = Books(sink)
    for msg in decoded_messages(recording):
        books.apply(msg)
    equal, empty, differing, states = 0, 0, [], Counter()
    for token, iid in conv.ids.items():
        mine, theirs = books.get(token), engine.cache.order_book(iid)
        state = "no book" if mine is None else mine.state.value
        states[state] += 1
        ours = ([], []) if mine is None else (mine.levels(Side.BUY), mine.levels(Side.SELL))
        nt = ([], []) if theirs is None else (_nt_levels(theirs.bids()), _nt_levels(theirs.asks()))
        if ours == nt:
            equal += 1
            empty += not any((*ours, *nt))
            continue
        side, index = next((side, i) for side, (a, b) in zip(("bids", "asks"), zip(ours, nt))
                           for i in range(max(len(a), len(b))) if a[i:i + 1] != b[i:i + 1])
        differing.append({
            "token": token, "mmbot_state": state, "first_difference": {"side": side, "level": index},
            "mmbot_top": [ours[0][:1], ours[1][:1]], "nautilus_top": [nt[0][:1], nt[1][:1]],
            "mmbot_levels": [len(ours[0]), len(ours[1])], "nautilus_levels": [len(nt[0]), len(nt[1])],
        })
    engine.dispose()
    return {
        "check": "books equal" if not differing else "books differ",
        "recording": recording.name,
        "tokens": len(conv.ids),
        "equal": equal,
        "equal_with_levels": equal - empty,
        "empty_on_both": empty,  # tokens the recording never sent a book for
        "differing": differing,
        "mmbot_book_states": dict(states),
        "mmbot_book_rows": dict(sink.kinds),
        "mmbot_book_statistics": attrs.asdict(books.statistics()),
        "conversion": dict(sorted(conv.counts.items())),
    }


# --------------------------------------------------------------------------- the parent


def run_nautilus_child(name: str, recording: Path) -> dict[str, Any]:
    started = monotonic_ns()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", name, "--recording", str(recording)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: the {name} run failed:\n{proc.stderr.strip()}")
    print(f"bench: {name} of {recording.name}: {(monotonic_ns() - started) // 1_000_000_000} s", file=sys.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wait_for_generation(args: argparse.Namespace, quick_events: int) -> None:
    """If another process is generating this recording (a ``.part.gz`` that is still growing),
    wait for it instead of generating a second copy."""
    events = quick_events if args.quick else args.events
    pattern = f"{args.tokens}tok-{events}pc-*-seed{args.seed}-*.jsonl.gz.part.gz"
    told = False
    while True:
        growing = [p for p in (BENCH / ".cache").glob(pattern)
                   if p.exists() and wall_ns() - p.stat().st_mtime_ns < PART_QUIET_S * 1_000_000_000]
        if not growing:
            return
        if not told:
            print(f"bench: waiting for {growing[0].name}, being generated by another run", file=sys.stderr)
            told = True
        time.sleep(5)


def run_rounds(args: argparse.Namespace, recording: Path) -> list[dict[str, dict[str, Any]]]:
    """``args.rounds`` rounds of the three children, the order rotated from round to round."""
    import replay

    names = [*CONFIGS, *MMBOT]
    rounds = []
    for r in range(args.rounds):
        results: dict[str, dict[str, Any]] = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            results[name] = (replay.run_child(MMBOT[name], recording, args.seed) if name in MMBOT
                             else run_nautilus_child(name, recording))
        rounds.append({name: results[name] for name in names})
    return rounds


def round_figures(results: dict[str, dict[str, Any]], events: int) -> dict[str, Any]:
    """One round's rates, all over mmbot's decoded market messages."""
    mm, mmt, nt, ntm = results["mmbot"], results["mmbot_taker"], results["nautilus"], results["nautilus_maker"]
    rate = {"mmbot": events / mm["seconds"], "mmbot_taker": events / mmt["seconds"],  # float-ok: rates
            "nautilus": events / nt["run_s"], "nautilus_maker": events / ntm["run_s"]}
    return {
        "nautilus_events_per_s": round(rate["nautilus"]),
        "nautilus_maker_events_per_s": round(rate["nautilus_maker"]),
        "mmbot_events_per_s": round(rate["mmbot"]),
        "mmbot_taker_events_per_s": round(rate["mmbot_taker"]),
        "ratio_vs_nautilus": round(rate["mmbot"] / rate["nautilus"], 3),
        "ratio_vs_nautilus_maker": round(rate["mmbot"] / rate["nautilus_maker"], 3),
        "like_for_like_taker": round(rate["mmbot_taker"] / rate["nautilus"], 3),
        "like_for_like_taker_and_maker": round(rate["mmbot"] / rate["nautilus_maker"], 3),
        "nautilus_run_s": round(nt["run_s"], 3),
        "nautilus_maker_run_s": round(ntm["run_s"], 3),
        "mmbot_s": round(mm["seconds"], 3),
        "mmbot_taker_s": round(mmt["seconds"], 3),
        "nautilus_add_data_s": nt["add_data_s"],
        "nautilus_maker_add_data_s": ntm["add_data_s"],
    }


def summary(recording: Path, meta: dict[str, Any], rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    events = rounds[0]["mmbot"]["events"]
    per_round = [round_figures(results, events) for results in rounds]

    def median(values: list[Any]) -> Any:
        return statistics.median(values)

    def median_s(name: str, key: str) -> float:  # float-ok: seconds
        return median([r[name][key] for r in rounds])

    last = rounds[-1]
    nt, ntm, mm = last["nautilus"], last["nautilus_maker"], last["mmbot"]
    ratio = median([r["ratio_vs_nautilus"] for r in per_round])
    like = {"taker": median([r["like_for_like_taker"] for r in per_round]),
            "taker_and_maker": median([r["like_for_like_taker_and_maker"] for r in per_round])}
    nt_s, ntm_s, mm_s = median_s("nautilus", "run_s"), median_s("nautilus_maker", "run_s"), median_s("mmbot", "seconds")
    return {
        "recording": recording.name,
        "tokens": meta["tokens"],
        "events": events,
        "nautilus_events": nt["events"],  # NT's count of the same decoded messages: must equal events
        "level_changes": meta["level_changes"],
        "nautilus_trader": nt["nautilus_trader"],
        "rounds": len(rounds),
        **{key: round(median([r[key] for r in per_round])) for key in
           ("nautilus_events_per_s", "nautilus_maker_events_per_s", "mmbot_events_per_s",
            "mmbot_taker_events_per_s")},
        "ratio_vs_nautilus": ratio,
        "ratio_vs_nautilus_maker": median([r["ratio_vs_nautilus_maker"] for r in per_round]),
        "like_for_like": like,
        "level_changes_per_s": {"mmbot": round(meta["level_changes"] / mm_s),
                                "nautilus": round(meta["level_changes"] / nt_s),
                                "mmbot_taker": round(meta["level_changes"] / median_s("mmbot_taker", "seconds")),
                                "nautilus_maker": round(meta["level_changes"] / ntm_s)},
        "nautilus_own_counts": {
            "data_objects": nt["data_objects"],
            "deltas": nt["deltas"],
            "data_objects_per_s": round(nt["data_objects"] / nt_s),
            "deltas_per_s": round(nt["deltas"] / nt_s),
            "maker_data_objects_per_s": round(nt["data_objects"] / ntm_s),
            "maker_deltas_per_s": round(nt["deltas"] / ntm_s),
        },
        "nautilus_add_data_s": median_s("nautilus", "add_data_s"),
        "nautilus_maker_add_data_s": median_s("nautilus_maker", "add_data_s"),
        "nautilus_convert_s": median_s("nautilus", "convert_s"),
        "per_round": per_round,
        "work": {
            "nautilus": nt["work"],
            "nautilus_maker": ntm["work"],
            "mmbot": {key: mm[key] for key in ("orders", "fills", "book_updates", "rows_written", "drops")},
            "mmbot_taker": {key: last["mmbot_taker"][key] for key in ("orders", "fills", "book_updates", "rows_written")},
            "same_every_round": all(
                r["nautilus"]["work"] == nt["work"] and r["nautilus_maker"]["work"] == ntm["work"]
                and (r["mmbot"]["orders"], r["mmbot"]["fills"]) == (mm["orders"], mm["fills"])
                and r["mmbot_taker"]["orders"] == last["mmbot_taker"]["orders"] for r in rounds
            ),
        },
        "malformed": {"mmbot": mm["malformed"], "nautilus_conversion": nt["conversion"]["malformed"]},
        "conversion": nt["conversion"],
        "peak_rss_mib": {name: round((result["peak_rss_kib"] or 0) / 1024, 1)  # float-ok: MiB
                         for name, result in last.items()},
        "targets_met": {"ratio_vs_nautilus": ratio >= TARGET_RATIO,
                        **{f"like_for_like_{name}": value >= TARGET_RATIO for name, value in like.items()}},
    }


def report(args: argparse.Namespace) -> dict[str, Any]:
    import replay

    wait_for_generation(args, replay.QUICK_EVENTS)
    recording, meta = replay.main_recording(args)
    if args.check:
        return check(recording)
    return summary(recording, meta, run_rounds(args, recording))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/nautilus.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--events", type=int, default=200_000, help="price_change events in the recording")
    parser.add_argument("--tokens", type=int, default=50, help="subscribed tokens (two per market)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (also mmbot's paper latency seed)")
    parser.add_argument("--quick", action="store_true", help="the replay bench's 10,000-event recording")
    parser.add_argument("--batched", action="store_true",
                        help="the simulator's older shape, ~10 entries per price_change (the issue's first measurement)")
    parser.add_argument("--unmirrored", action="store_true",
                        help="the simulator's two books per market (one entry per level change, mostly) instead of "
                             "the venue's one mirrored book (two entries each)")
    parser.add_argument("--check", action="store_true",
                        help="no timing: check that NT's books at the end equal mmbot's for every token")
    parser.add_argument("--child", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--recording", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.tokens % 2 or args.events < 1 or args.rounds < 1:
        parser.error("--tokens must be an even number >= 2, --events and --rounds positive")
    if importlib.util.find_spec("nautilus_trader") is None:
        print(f"bench/nautilus.py: nautilus_trader is not installed; install the bench extra: {INSTALL}",
              file=sys.stderr)
        return 2
    if args.child:
        print(json.dumps(run_nautilus(args.recording, maker=CONFIGS[args.child])))
        return 0
    result = report(args)
    print(json.dumps(result, separators=(",", ":")))
    return 1 if args.check and result["differing"] else 0


if __name__ == "__main__":
    sys.exit(main())
