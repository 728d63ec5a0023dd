"""What a recording holds: books rebuilt from its market frames, and its mispricing windows.

A check tool for the simulator's output, not mmbot's feed (that decodes frames in
``venues/polymarket/wire.py``): it reads the frames this simulator writes with plain ``json`` and
answers two questions - do the frames rebuild the engine's books exactly, and how many
complete-set mispricings (best asks summing below 1, best bids summing above 1) does the
recording offer, and for how long.

    python -m mmbot.venues.simulator.survey recordings/sim-7.jsonl.gz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import attrs

from mmbot.facts.recording import RecordingError, RecordingHeader, iter_frames, read_header
from mmbot.model import ONE, MarketInfo, parse_micro, taker_fee

Level = tuple[int, int]


class FrameBooks:
    """Every token's book as the market frames of a recording describe it."""

    def __init__(self, header: RecordingHeader) -> None:
        self.markets: dict[str, MarketInfo] = {m.market: m for m in header.markets}
        self._books: dict[str, tuple[dict[int, int], dict[int, int]]] = {
            token: ({}, {}) for m in header.markets for token in m.tokens
        }
        self.resolved: set[str] = set()

    def apply(self, frame: str) -> set[str]:
        """Apply one market frame; returns the markets whose books it touched."""
        decoded = json.loads(frame)
        touched: set[str] = set()
        for msg in decoded if isinstance(decoded, list) else [decoded]:
            touched |= self._apply_message(msg)
        return touched

    def _apply_message(self, msg: dict[str, Any]) -> set[str]:
        kind = msg.get("event_type")
        if kind == "book":
            bids, asks = self._books[msg["asset_id"]]
            bids.clear()
            asks.clear()
            bids.update((parse_micro(lv["price"]), parse_micro(lv["size"])) for lv in msg["bids"])
            asks.update((parse_micro(lv["price"]), parse_micro(lv["size"])) for lv in msg["asks"])
            return {msg["market"]}
        if kind == "price_change":
            for change in msg["price_changes"]:
                side = self._books[change["asset_id"]][0 if change["side"] == "BUY" else 1]
                price, size = parse_micro(change["price"]), parse_micro(change["size"])
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)
            return {msg["market"]}
        if kind == "market_resolved":
            self.resolved.add(msg["market"])
            for token in msg["assets_ids"]:
                for side in self._books[token]:
                    side.clear()
            return {msg["market"]}
        return set()

    def best(self, token: str) -> tuple[int | None, int | None]:
        bids, asks = self._books[token]
        return (max(bids) if bids else None), (min(asks) if asks else None)

    def snapshot(self, token: str) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks), best first: the engine's ``book_snapshot`` shape."""
        bids, asks = self._books[token]
        return tuple(sorted(bids.items(), reverse=True)), tuple(sorted(asks.items()))


@attrs.frozen
class MispricingWindow:
    market: str
    kind: str  # "ask": best asks sum below 1; "bid": best bids sum above 1
    start_ns: int
    end_ns: int
    widest: int  # the largest gap to 1 seen, micro-units per share
    after_fees: bool  # at some moment the gap exceeded both legs' taker fees

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def _gaps(books: FrameBooks, info: MarketInfo) -> dict[str, tuple[int, int]]:
    """Per kind, (gap to 1, fees of taking both legs), for the kinds mispriced right now."""
    (yes_bid, yes_ask), (no_bid, no_ask) = (books.best(t) for t in info.tokens)
    out = {}
    for kind, a, b in (("ask", yes_ask, no_ask), ("bid", yes_bid, no_bid)):
        if a is None or b is None:
            continue
        gap = ONE - (a + b) if kind == "ask" else a + b - ONE
        if gap > 0:
            fees = sum(taker_fee(ONE, p, info.fee_rate, info.fee_exponent) for p in (a, b))
            out[kind] = (gap, fees)
    return out


def find_mispricings(path: str | Path, *, min_duration_ms: int = 1_000) -> list[MispricingWindow]:
    """Every window of at least ``min_duration_ms`` during which a market's best quotes mispriced a set."""
    books = FrameBooks(read_header(path))
    open_windows: dict[tuple[str, str], list[Any]] = {}  # -> [start, widest, after_fees]
    found: list[MispricingWindow] = []
    last_t = 0

    def close(key: tuple[str, str], t: int) -> None:
        start, widest, after_fees = open_windows.pop(key)
        if t - start >= min_duration_ms * 1_000_000:
            found.append(MispricingWindow(key[0], key[1], start, t, widest, after_fees))

    for t, channel, frame in iter_frames(path):
        last_t = t
        if channel != "market":
            continue
        for market in sorted(books.apply(frame)):
            gaps = _gaps(books, books.markets[market])
            for kind in ("ask", "bid"):
                key = (market, kind)
                if kind in gaps:
                    gap, fees = gaps[kind]
                    window = open_windows.setdefault(key, [t, 0, False])
                    window[1] = max(window[1], gap)
                    window[2] = window[2] or gap > fees
                elif key in open_windows:
                    close(key, t)
    for key in sorted(open_windows):
        close(key, last_t)
    return sorted(found, key=lambda w: (w.start_ns, w.market, w.kind))


def summary(windows: list[MispricingWindow]) -> str:
    lines = []
    for kind, label in (("ask", "asks sum < 1"), ("bid", "bids sum > 1")):
        chosen = [w for w in windows if w.kind == kind]
        durations = sorted(w.duration_ns // 1_000_000_000 for w in chosen)
        median = durations[len(durations) // 2] if durations else 0
        lines.append(
            f"{label}: {len(chosen)} windows, {sum(w.after_fees for w in chosen)} beat taker fees, "
            f"median {median} s, longest {durations[-1] if durations else 0} s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmbot.venues.simulator.survey", description=__doc__)
    parser.add_argument("recording", type=Path)
    parser.add_argument("--min-ms", type=int, default=1_000, help="shortest window counted (default 1000)")
    args = parser.parse_args(argv)
    try:
        windows = find_mispricings(args.recording, min_duration_ms=args.min_ms)
    except RecordingError as exc:
        print(f"survey: {exc}", file=sys.stderr)
        return 2
    print(summary(windows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
