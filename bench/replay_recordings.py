"""The replay bench's recordings: generated once by the project's seeded simulator and cached
in ``bench/.cache/``, keyed by their parameters and by the generator's source."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from mmbot.clock import monotonic_ns  # noqa: E402
from mmbot.facts.recording import RecordingWriter, iter_frames  # noqa: E402
from mmbot.venues.simulator.flow import FlowParams  # noqa: E402
from mmbot.venues.simulator.generate import Simulation  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
INTERVAL_S = 3600  # hourly Up/Down windows: one opens, closes and resolves inside the default recording
QUICK_EVENTS = 10_000

# --------------------------------------------------------------------------- recordings


class Spec(NamedTuple):
    """One cached recording. ``price_changes`` 0 means the whole duration."""

    tokens: int
    price_changes: int
    seed: int
    duration_s: int
    warmup_s: int
    interval_s: int = INTERVAL_S
    batched: bool = False  # the simulator's shape before issue 11: ~10 entries per price_change
    mirrored: bool = True  # the venue's one book per market: two entries per level change (issue 14)


def main_spec(events: int, tokens: int, seed: int) -> Spec:
    markets = tokens // 2
    # Enough market time at 1.5 price_change messages per market-second (the generator makes
    # ~1.8), plus slack: the writer stops at exactly ``events``; report() retries longer if short.
    duration = -(-events * 2 // (markets * 3)) + 120
    return Spec(tokens=tokens, price_changes=events, seed=seed, duration_s=duration, warmup_s=60)


def simulation(spec: Spec) -> Simulation:
    """The generator's ``markets`` is markets at a time; pick it so the header lists tokens/2."""
    wanted = spec.tokens // 2
    best: Simulation | None = None
    for markets in range(1, 2 * wanted + 2):
        sim = Simulation(
            seed=spec.seed, duration_s=spec.duration_s, markets=markets,
            interval_s=spec.interval_s, warmup_s=spec.warmup_s, params=FlowParams(),
            batched_price_changes=spec.batched, mirrored=spec.mirrored,
        )
        listed = len(sim.header.markets)
        if listed == wanted:
            return sim
        if listed > wanted:
            break
        best = sim
    if best is None:
        raise SystemExit(f"bench: cannot plan a recording with {spec.tokens} tokens")
    return best


# What the recording generator is made of (the simulator's server side is not: editing it must not
# throw away a cached recording that takes minutes to make).
GENERATOR_SOURCES = (
    "mmbot/venues/simulator/generate.py", "mmbot/venues/simulator/engine.py", "mmbot/venues/simulator/flow.py",
    "mmbot/venues/simulator/frames.py", "mmbot/venues/simulator/prices.py", "mmbot/venues/simulator/book.py",
    "mmbot/venues/simulator/events.py", "mmbot/venues/simulator/matching.py", "mmbot/venues/simulator/orders.py",
    "mmbot/venues/simulator/engine_markets.py", "mmbot/facts/recording.py", "mmbot/model",
)


def _generator_fingerprint() -> str:
    sources = []
    for name in GENERATOR_SOURCES:  # a package stands for every module in it
        path = ROOT / name
        sources.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    h = hashlib.sha256()
    for path in sources:
        h.update(path.read_bytes())
    return h.hexdigest()


def _level_changes(frame: str) -> int:
    """Entries of the price_change messages in a generated frame: each one carries best_bid."""
    return frame.count('"best_bid"')


def cached_recording(spec: Spec) -> tuple[Path, dict[str, Any]]:
    """The recording for ``spec`` and its metadata, generated once and then read from the cache."""
    key = hashlib.sha256(f"{spec!r}{FlowParams()!r}{_generator_fingerprint()}".encode()).hexdigest()[:12]
    path = CACHE / f"{spec.tokens}tok-{spec.price_changes}pc-{spec.duration_s}s-seed{spec.seed}-{key}.jsonl.gz"
    meta_path = path.with_name(path.name + ".meta.json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if "level_changes" not in meta:  # a cache from before the field existed
            meta["level_changes"] = sum(_level_changes(text) for _, channel, text in iter_frames(path)
                                        if channel == "market")
            meta_path.write_text(json.dumps(meta))
        return path, meta
    CACHE.mkdir(parents=True, exist_ok=True)
    started = monotonic_ns()
    sim = simulation(spec)
    partial = path.with_name(path.name + ".part.gz")
    price_changes = frames = level_changes = 0
    with RecordingWriter(partial) as writer:
        writer.write_header(sim.header)
        for t_ns, channel, text in sim.frames():
            writer.write_frame(t_ns, channel, text)
            if channel == "market":
                frames += 1
                price_changes += text.count('"event_type":"price_change"')
                level_changes += _level_changes(text)
                if spec.price_changes and price_changes >= spec.price_changes:
                    break
    meta = {
        "tokens": 2 * len(sim.header.markets),
        "market_frames": frames,
        "price_changes": price_changes,
        "level_changes": level_changes,
        "generated_s": round((monotonic_ns() - started) / 1e9, 1),  # float-ok: a duration
    }
    partial.rename(path)
    meta_path.write_text(json.dumps(meta))
    print(f"bench: generated {path.name} in {meta['generated_s']} s", file=sys.stderr)
    return path, meta



def main_recording(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    events = QUICK_EVENTS if args.quick else args.events
    batched = getattr(args, "batched", False)  # the older shape, as it was measured: never mirrored
    spec = main_spec(events, args.tokens, args.seed)._replace(
        batched=batched, mirrored=not (batched or getattr(args, "unmirrored", False)))
    recording, meta = cached_recording(spec)
    while meta["price_changes"] < events:  # the generator was slower than the bound assumed
        spec = spec._replace(duration_s=spec.duration_s * 2)
        recording, meta = cached_recording(spec)
    return recording, meta

