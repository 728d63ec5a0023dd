"""Generate a synthetic recording from the seeded simulator: same seed, same bytes.

The recording is what ``mmbot replay`` trades: a header naming every market, then the
subscription snapshot (one array of ``book`` messages) and the market channel as the venue
would send it - several plain binary markets and a recurring 5-minute Up/Down series whose
windows open and resolve inside the recording - plus the series' reference price on the
``underlying`` channel. A warm-up before the start fills the books, so the snapshot has depth.

    python -m mmbot.venues.simulator.generate --seed 7 --out recordings/sim-7.jsonl.gz
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from mmbot.facts.recording import RecordingHeader, RecordingWriter
from mmbot.model import ONE, MarketInfo
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.flow import COARSE_TICK, MS, FlowParams, MarketPlan, PlainSpec, WindowSpec, World
from mmbot.venues.simulator.frames import FrameRenderer, underlying_frame
from mmbot.venues.simulator.prices import SECOND

# Recordings are anchored here, near the captured frames' dates, whatever the seed.
BASE_EPOCH_S = 1_786_604_100
SOURCE = "mmbot.venues.simulator.generate"

# (question, slug, taker fee rate): fee rates from the venue's category table.
PLAIN_MARKETS = (
    ("Will the incumbent governor be re-elected?", "incumbent-governor-re-elected", 40_000),
    ("Will the central bank cut rates at its next meeting?", "central-bank-cut-next-meeting", 40_000),
    ("Will the home side win the cup final?", "home-side-win-cup-final", 30_000),
    ("Will the flagship phone ship before October?", "flagship-phone-before-october", 40_000),
    ("Will a named storm make landfall this week?", "named-storm-landfall-this-week", 50_000),
    ("Will the sequel gross $500M worldwide?", "sequel-gross-500m-worldwide", 50_000),
)
# (slug asset, reference symbol, name, starting price, largest move per second)
SERIES = (
    ("btc", "btc/usd", "Bitcoin", 65_000 * ONE, 12 * ONE),
    ("eth", "eth/usd", "Ethereum", 3_200 * ONE, ONE),
    ("sol", "sol/usd", "Solana", 150 * ONE, 40_000),
)
CRYPTO_FEE_RATE = 72_000


def _condition_id(rng: random.Random) -> str:
    return f"0x{rng.getrandbits(256):064x}"


def _token_id(rng: random.Random) -> str:
    return str(rng.randrange(10**76, 10**77))


def _interval_label(interval_s: int) -> str:
    return f"{interval_s // 60}m" if interval_s % 60 == 0 else f"{interval_s}s"


def plan_markets(
    rng: random.Random, *, start_ns: int, end_ns: int, markets: int, interval_s: int
) -> MarketPlan:
    """Which markets exist, with ids from ``rng``: one Up/Down series per four markets, the rest plain.

    The first plain market is a long shot near 0.96, so the tick size changes during the
    recording. Interval windows are listed half an interval before they open; every window
    listed before ``end_ns`` is part of the plan (and of the header).
    """
    series = max(1, markets // 4)
    plain = []
    for i in range(markets - series):
        question, slug, fee = PLAIN_MARKETS[i % len(PLAIN_MARKETS)]
        suffix = f"-{i // len(PLAIN_MARKETS) + 1}" if i >= len(PLAIN_MARKETS) else ""
        info = MarketInfo(
            market=_condition_id(rng), tokens=(_token_id(rng), _token_id(rng)), tick=COARSE_TICK,
            end_ns=end_ns + 30 * 24 * 3600 * SECOND, fee_rate=fee, slug=slug + suffix, question=question,
        )
        fair = rng.randint(950_000, 958_000) if i == 0 else rng.randint(200_000, 800_000)
        plain.append(PlainSpec(info=info, fair=fair, max_step=4_000))

    windows = plan_windows(rng, series=series, first_start_ns=start_ns + interval_s // 5 * SECOND, end_ns=end_ns,
                           interval_s=interval_s)
    underlyings = tuple((symbol, price, step) for _, symbol, _, price, step in SERIES[:series])
    return MarketPlan(underlyings=underlyings, plain=tuple(plain), windows=windows)


def plan_windows(
    rng: random.Random, *, series: int, first_start_ns: int, end_ns: int, interval_s: int
) -> tuple[WindowSpec, ...]:
    """The windows of the first ``series`` Up/Down series from ``first_start_ns`` on, every one
    listed (half an interval before it opens) before ``end_ns``, with ids from ``rng``."""
    windows = []
    resolve_delay = min(15, interval_s // 4) * SECOND
    for asset, symbol, name, _, _ in SERIES[:series]:
        start = first_start_ns
        while start - interval_s // 2 * SECOND < end_ns:
            end = start + interval_s * SECOND
            opens = datetime.fromtimestamp(start // SECOND, timezone.utc)
            closes = datetime.fromtimestamp(end // SECOND, timezone.utc)
            clock = "%H:%M" if interval_s % 60 == 0 else "%H:%M:%S"
            info = MarketInfo(
                market=_condition_id(rng), tokens=(_token_id(rng), _token_id(rng)), outcomes=("Up", "Down"),
                tick=COARSE_TICK, end_ns=end, fee_rate=CRYPTO_FEE_RATE,
                slug=f"{asset}-updown-{_interval_label(interval_s)}-{start // SECOND}",
                question=f"{name} Up or Down - {opens:%B} {opens.day}, {opens:{clock}}-{closes:{clock}} UTC",
            )
            windows.append(
                WindowSpec(
                    info=info, symbol=symbol, list_ns=start - interval_s // 2 * SECOND, start_ns=start,
                    end_ns=end, resolve_ns=end + resolve_delay,
                )
            )
            start = end
    return tuple(windows)


class Simulation:
    """One seeded run: its header, its engine (the oracle) and the frames it produces.

    ``price_change`` messages carry the venue's one or two entries each; ``batched_price_changes``
    writes the older shape, one message per market and step. ``mirrored`` runs the engine as the
    venue does, each market's two books one (no complete-set mispricing rests), and shows each
    token's book with its complement's mirrored in: every level change is then two entries. No
    ``best_bid_ask`` is written (the venue sends it only to connections that ask, and it is a
    cross-check only)."""

    def __init__(
        self, *, seed: int, duration_s: int = 720, markets: int = 4, interval_s: int = 300,
        warmup_s: int = 60, params: FlowParams = FlowParams(), batched_price_changes: bool = False,
        mirrored: bool = False,
    ) -> None:
        if duration_s <= 0 or markets <= 0 or warmup_s < 0 or interval_s < 10:
            raise ValueError("duration and markets must be positive, warm-up not negative, the interval >= 10 s")
        self.rng = random.Random(seed)
        # Start a fifth of an interval before a window boundary: the first window opens soon.
        first_boundary_s = -(-BASE_EPOCH_S // interval_s) * interval_s
        self.start_ns = (first_boundary_s - interval_s // 5) * SECOND
        self.end_ns = self.start_ns + duration_s * SECOND
        self.begin_ns = self.start_ns - warmup_s * SECOND
        self.plan = plan_markets(
            self.rng, start_ns=self.start_ns, end_ns=self.end_ns, markets=markets, interval_s=interval_s
        )
        self.header = RecordingHeader(start_ns=self.start_ns, markets=self.plan.infos(), source=SOURCE, seed=seed)
        self.engine = Engine(mirrored=mirrored)
        self.params = params
        self.batched_price_changes = batched_price_changes

    def frames(self) -> Iterator[tuple[int, str, str]]:
        """(receive ns, channel, frame text), in order; runs the simulation as it is consumed."""
        rng, engine = self.rng, self.engine
        world = World(engine, rng, self.plan, self.begin_ns, self.params)
        renderer = FrameRenderer(batched=self.batched_price_changes, mirrored=engine.mirrored)
        now = self.begin_ns
        while now < self.start_ns:  # warm-up: the books fill, nothing is recorded
            world.step(now)
            renderer.render(engine.take_events())
            world.take_underlying_ticks()
            now = min(now + rng.randint(20, 400) * MS, self.start_ns)
        world.step(now)
        renderer.render(engine.take_events())
        world.take_underlying_ticks()
        yield now, "market", renderer.snapshot(now)

        last_t = now
        while now < self.end_ns:
            now += rng.randint(20, 400) * MS
            world.step(now)
            market_frames = renderer.render(engine.take_events())
            ticks = world.take_underlying_ticks()
            if not market_frames and not ticks:
                continue
            # Every frame of one step arrives together, a little after the venue sent it.
            last_t = max(last_t, now + rng.randint(5, 60) * MS)
            for symbol, price, ts in ticks:
                yield last_t, "underlying", underlying_frame(symbol, price, ts)
            for frame in market_frames:
                yield last_t, "market", frame


def write_recording(simulation: Simulation, out_path: str | Path) -> int:
    """Run ``simulation`` into a recording file; returns the number of frames written."""
    with RecordingWriter(out_path) as writer:
        writer.write_header(simulation.header)
        for t, channel, frame in simulation.frames():
            writer.write_frame(t, channel, frame)
        return writer.frames_written


def generate_recording(
    out_path: str | Path, *, seed: int, duration_s: int = 720, markets: int = 4, interval_s: int = 300,
    warmup_s: int = 60, params: FlowParams = FlowParams(), batched_price_changes: bool = False,
    mirrored: bool = False,
) -> RecordingHeader:
    simulation = Simulation(
        seed=seed, duration_s=duration_s, markets=markets, interval_s=interval_s, warmup_s=warmup_s, params=params,
        batched_price_changes=batched_price_changes, mirrored=mirrored,
    )
    write_recording(simulation, out_path)
    return simulation.header


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmbot.venues.simulator.generate", description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="recording to write (.jsonl or .jsonl.gz)")
    parser.add_argument("--duration", type=int, default=720, help="seconds of market time (default 720)")
    parser.add_argument("--markets", type=int, default=4, help="markets at a time (default 4)")
    parser.add_argument("--interval", type=int, default=300, help="Up/Down window in seconds (default 300)")
    parser.add_argument("--batched-price-changes", action="store_true",
                        help="one price_change per market and step, many entries (default: the venue's one or two)")
    parser.add_argument("--mirrored", action="store_true",
                        help="each market's two books one, as on the venue: two entries per level change and no "
                             "complete-set mispricing (default: two books, so mispricings rest for the strategies)")
    args = parser.parse_args(argv)
    try:
        simulation = Simulation(
            seed=args.seed, duration_s=args.duration, markets=args.markets, interval_s=args.interval,
            batched_price_changes=args.batched_price_changes, mirrored=args.mirrored,
        )
        frames = write_recording(simulation, args.out)
    except (ValueError, OSError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    size = args.out.stat().st_size
    print(f"{args.out}: {len(simulation.header.markets)} markets, {frames} frames, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
