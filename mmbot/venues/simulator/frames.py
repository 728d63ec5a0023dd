"""Engine events rendered as Polymarket market-channel frames, in the venue's exact shapes.

Shapes and key order follow the protocol doc §2 and the captured frames: a subscription
snapshot is a JSON array of ``book`` messages (best level last: bids ascending, asks
descending) with ``tick_size`` and ``last_trade_price``; every level change is a ``price_change``
of its own, with the absolute size, the token's top after the change ("0"/"1" for an empty side)
and the hash of the token's book after it. The venue mirrors a market's two books, so its
messages carry one or two entries (a YES bid at p is a NO ask at 1 - p); the engine's books are
not mirrored, so a message carries the complement's entry only when the complement's level at
1 - p on the other side really changed right after. ``batched`` renders the older shape instead:
one ``price_change`` per market and ``render`` call, every entry hashed at the call's end.
With ``best_bid_ask`` on, a token whose top changed gets a ``best_bid_ask`` after the
``price_change`` that changed it. A trade prints ``last_trade_price`` and is followed by a fresh
``book`` of every token it touched, as the venue does; tick changes are followed by a ``book``
too, so a client that marks its book stale on ``tick_size_change`` can resync at once.

``mirrored`` renders a mirrored engine (``Engine(mirrored=True)``) as the venue shows its one
book per market: each token shows its own levels plus the complement's seen through ``1 - p`` on
the other side, so every level change is a ``price_change`` of exactly two entries, the token's
and its mirror, with the same size, and every ``book`` and hash shows those levels.

The renderer keeps its own copy of the books, built from the same events, so every ``book``
it writes shows the state at that point of the event stream, not the engine's later state.
Hashes are SHA-1 over the book summary (the py-clob-client recipe), deterministic like
everything else; timestamps are the events' own times in ms.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Iterable

import msgspec

from mmbot.model import ONE, MarketInfo, Side, format_micro
from mmbot.venues.simulator import events as ev

MS = 1_000_000
# A book's levels are formatted again for every message that hashes it; most did not change.
_level_text = functools.lru_cache(maxsize=1 << 16)(format_micro)


def _ms(ns: int) -> str:
    return str(ns // MS)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _top(levels: dict[int, int], side: Side) -> str:
    if not levels:
        return "0" if side is Side.BUY else "1"
    return format_micro(max(levels) if side is Side.BUY else min(levels))


def underlying_frame(symbol: str, price: int, ts_ns: int) -> str:
    """A reference-price update shaped like the RTDS Chainlink feed (numbers, not strings)."""
    ms = ts_ns // MS
    return (
        f'{{"topic":"crypto_prices_chainlink","type":"update","timestamp":{ms},'
        f'"payload":{{"symbol":{_dumps(symbol)},"timestamp":{ms},"value":{format_micro(price)}}}}}'
    )


def _mirrors(first: ev.LevelChanged, second: ev.LevelChanged) -> bool:
    """Whether ``second`` is the complement's side of ``first`` (the same level on a mirrored book)."""
    return (second.market == first.market and second.token != first.token and second.side is not first.side
            and second.price == ONE - first.price and second.ts_ns == first.ts_ns)


class FrameRenderer:
    """Turns the engine's event stream into market-channel frame texts."""

    def __init__(self, first_market_id: int = 1_000_001, *, batched: bool = False, best_bid_ask: bool = False,
                 mirrored: bool = False) -> None:
        self.batched = batched
        self.mirrored = mirrored
        # mirrored: each token's own levels; _books holds what is shown (own plus the mirror)
        self._own: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self._best_bid_ask = best_bid_ask
        self._tops: dict[str, tuple[int | None, int | None]] = {}  # the last top each token's best_bid_ask told
        self._next_id = first_market_id
        self._infos: dict[str, MarketInfo] = {}
        self._market_ids: dict[str, str] = {}
        self._ticks: dict[str, int] = {}
        self._token_market: dict[str, str] = {}
        self._books: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self._last_trade: dict[str, int] = {}

    # ------------------------------------------------------------------ public

    def snapshot(self, now_ns: int, tokens: Iterable[str] | None = None) -> str:
        """The subscription snapshot: one array of ``book`` messages, in listing order by default."""
        chosen = list(self._books) if tokens is None else list(tokens)
        return "[" + ",".join(self._book(token, now_ns, subscription=True) for token in chosen) + "]"

    def forget_market(self, market: str) -> None:
        """Drop a market whose last frame has been rendered (a resolved one)."""
        info = self._infos.pop(market)
        del self._market_ids[market], self._ticks[market]
        for token in info.tokens:
            del self._token_market[token], self._books[token]
            self._own.pop(token, None)
            self._last_trade.pop(token, None)
            self._tops.pop(token, None)

    def render(self, events: Iterable[ev.Event]) -> list[str]:
        return self._render_batched(events) if self.batched else self._render(events)

    def _render(self, events: Iterable[ev.Event]) -> list[str]:
        frames: list[str] = []
        trades: list[ev.Trade] = []
        pending: ev.LevelChanged | None = None  # rendered once the next event shows it has no mirror

        def changed(*group: ev.LevelChanged) -> None:
            nonlocal pending
            pending = None
            frames.extend(self._changes(group[0].market, list(group)))

        for event in events:
            if isinstance(event, ev.LevelChanged) and self.mirrored:
                frames.extend(self._changes(event.market, self._shown_changes(event)))
                continue
            if isinstance(event, ev.LevelChanged):
                if pending is not None and _mirrors(pending, event):
                    self._apply(event)
                    changed(pending, event)
                    continue
                if pending is not None:
                    changed(pending)
                self._apply(event)
                pending = event
                continue
            if isinstance(event, (ev.OrderRested, ev.OrderEnded)):
                continue  # user-channel matters; the level changes already carry their effect
            if pending is not None:
                changed(pending)
            if isinstance(event, ev.Trade):
                self._traded(event)
                trades.append(event)
            else:
                frames.extend(self._after_trades(trades))
                frames.extend(self._lifecycle(event))
        if pending is not None:
            changed(pending)
        frames.extend(self._after_trades(trades))
        return frames

    def _apply(self, event: ev.LevelChanged) -> None:
        side = self._books[event.token][0 if event.side is Side.BUY else 1]
        if event.size:
            side[event.price] = event.size
        else:
            side.pop(event.price, None)

    def _shown_changes(self, event: ev.LevelChanged) -> list[ev.LevelChanged]:
        """A change of one token's own level, as the two shown levels it changes: the token's at
        ``p`` and the complement's at ``1 - p`` on the other side, both showing the same total."""
        token, side, price = event.token, event.side, event.price
        comp_token = next(t for t in self._infos[event.market].tokens if t != token)
        i = 0 if side is Side.BUY else 1
        own = self._own[token][i]
        if event.size:
            own[price] = event.size
        else:
            own.pop(price, None)
        total = event.size + self._own[comp_token][1 - i].get(ONE - price, 0)
        shown = []
        for tok, j, at in ((token, i, price), (comp_token, 1 - i, ONE - price)):
            bids, asks = self._books[tok]
            levels = bids if j == 0 else asks
            if total:
                levels[at] = total
            else:
                levels.pop(at, None)
            shown.append(ev.LevelChanged(
                market=event.market, token=tok, side=Side.BUY if j == 0 else Side.SELL, price=at, size=total,
                best_bid=max(bids) if bids else None, best_ask=min(asks) if asks else None, ts_ns=event.ts_ns,
            ))
        return shown

    def _traded(self, trade: ev.Trade) -> None:
        self._last_trade[trade.taker_token] = trade.taker_price
        self._last_trade[trade.maker_token] = trade.maker_price

    def _after_trades(self, trades: list[ev.Trade]) -> list[str]:
        """The prints of ``trades``, then a ``book`` of every token they touched (``trades`` empties)."""
        frames = [self._last_trade_price(trade) for trade in trades]
        touched = {token: None for trade in trades for token in (trade.taker_token, trade.maker_token)}
        frames += [self._book(token, trades[-1].ts_ns, subscription=False) for token in touched]
        trades.clear()
        return frames

    def _render_batched(self, events: Iterable[ev.Event]) -> list[str]:
        frames: list[str] = []
        changes: dict[str, list[ev.LevelChanged]] = {}
        trades: list[ev.Trade] = []

        def flush() -> None:
            for market, group in changes.items():
                frames.extend(self._changes(market, group))
            frames.extend(self._after_trades(trades))
            changes.clear()

        for event in events:
            if isinstance(event, ev.LevelChanged) and self.mirrored:
                changes.setdefault(event.market, []).extend(self._shown_changes(event))
            elif isinstance(event, ev.LevelChanged):
                self._apply(event)
                changes.setdefault(event.market, []).append(event)
            elif isinstance(event, ev.Trade):
                self._traded(event)
                trades.append(event)
            elif isinstance(event, (ev.OrderRested, ev.OrderEnded)):
                continue  # user-channel matters; the level changes already carry their effect
            else:
                flush()
                frames.extend(self._lifecycle(event))
        flush()
        return frames

    # ------------------------------------------------------------------ frames

    def _lifecycle(self, event: ev.Event) -> list[str]:
        if isinstance(event, ev.MarketListed):
            info = event.info
            self._infos[info.market] = info
            self._market_ids[info.market] = str(self._next_id)
            self._next_id += 1
            self._ticks[info.market] = info.tick
            for token in info.tokens:
                self._token_market[token] = info.market
                self._books[token] = ({}, {})
                self._tops[token] = (None, None)
                if self.mirrored:
                    self._own[token] = ({}, {})
            return [self._new_market(info, event.ts_ns)] + [
                self._book(token, event.ts_ns, subscription=True) for token in info.tokens
            ]
        if isinstance(event, ev.TickChanged):
            self._ticks[event.market] = event.new_tick
            return [self._tick_size_change(event, token) for token in event.tokens] + [
                self._book(token, event.ts_ns, subscription=True) for token in event.tokens
            ]
        if isinstance(event, ev.Resolved):
            for token in event.tokens:  # empty already (resolution cancels every order): new dicts are smaller
                self._books[token] = ({}, {})
                self._tops[token] = (None, None)
                if self.mirrored:
                    self._own[token] = ({}, {})
            return [self._market_resolved(event)]
        raise TypeError(f"unexpected engine event {event!r}")

    def _levels(self, token: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        bids, asks = self._books[token]
        return (
            [{"price": _level_text(p), "size": _level_text(bids[p])} for p in sorted(bids)],
            [{"price": _level_text(p), "size": _level_text(asks[p])} for p in sorted(asks, reverse=True)],
        )

    def _hash(self, token: str, ts_ms: str) -> str:
        market = self._token_market[token]
        info = self._infos[market]
        bids, asks = self._levels(token)
        last = self._last_trade.get(token)
        summary = {
            "market": market, "asset_id": token, "timestamp": ts_ms, "hash": "", "bids": bids,
            "asks": asks, "min_order_size": format_micro(info.min_size),
            "tick_size": format_micro(self._ticks[market]), "neg_risk": info.neg_risk,
            "last_trade_price": "" if last is None else format_micro(last),
        }
        # msgspec writes the same compact bytes as _dumps for this all-ASCII summary, several times faster
        return hashlib.sha1(msgspec.json.encode(summary)).hexdigest()

    def _book(self, token: str, ts_ns: int, *, subscription: bool) -> str:
        market = self._token_market[token]
        ts = _ms(ts_ns)
        bids, asks = self._levels(token)
        msg: dict[str, Any] = {
            "market": market, "asset_id": token, "timestamp": ts, "hash": self._hash(token, ts),
            "bids": bids, "asks": asks,
        }
        # Key order as captured: tick_size before and last_trade_price after event_type.
        if subscription:
            msg["tick_size"] = format_micro(self._ticks[market])
        msg["event_type"] = "book"
        if subscription:
            last = self._last_trade.get(token)
            msg["last_trade_price"] = "" if last is None else format_micro(last)
        return _dumps(msg)

    def _changes(self, market: str, group: list[ev.LevelChanged]) -> list[str]:
        """The ``price_change`` of ``group``, then a ``best_bid_ask`` for each token whose top it moved."""
        frames = [self._price_change(market, group)]
        if self._best_bid_ask:
            last = {c.token: c for c in group}  # each token's top after the group
            for token, change in last.items():
                top = (change.best_bid, change.best_ask)
                if self._tops.get(token) != top:
                    self._tops[token] = top
                    frames.append(self._best_bid_ask_frame(change))
        return frames

    def _price_change(self, market: str, group: list[ev.LevelChanged]) -> str:
        ts = _ms(group[0].ts_ns)
        hashes = {token: self._hash(token, ts) for token in {c.token: None for c in group}}  # once per token
        entries = [
            {
                "asset_id": c.token, "price": format_micro(c.price), "size": format_micro(c.size),
                "side": c.side.value, "hash": hashes[c.token],
                "best_bid": "0" if c.best_bid is None else format_micro(c.best_bid),
                "best_ask": "1" if c.best_ask is None else format_micro(c.best_ask),
            }
            for c in group
        ]
        return _dumps({"market": market, "price_changes": entries, "event_type": "price_change", "timestamp": ts})

    def _best_bid_ask_frame(self, change: ev.LevelChanged) -> str:
        bid = 0 if change.best_bid is None else change.best_bid
        ask = ONE if change.best_ask is None else change.best_ask
        return _dumps(
            {
                "event_type": "best_bid_ask", "market": change.market, "asset_id": change.token,
                "best_bid": format_micro(bid), "best_ask": format_micro(ask), "spread": format_micro(ask - bid),
                "timestamp": _ms(change.ts_ns),
            }
        )

    def _last_trade_price(self, trade: ev.Trade) -> str:
        return _dumps(
            {
                "event_type": "last_trade_price", "market": trade.market, "asset_id": trade.taker_token,
                "price": format_micro(trade.taker_price), "size": format_micro(trade.size),
                "side": trade.taker_side.value, "fee_rate_bps": "0", "timestamp": _ms(trade.ts_ns),
                "transaction_hash": "0x" + hashlib.sha256(trade.trade_id.encode()).hexdigest(),
            }
        )

    def _tick_size_change(self, event: ev.TickChanged, token: str) -> str:
        return _dumps(
            {
                "event_type": "tick_size_change", "market": event.market, "asset_id": token,
                "old_tick_size": format_micro(event.old_tick), "new_tick_size": format_micro(event.new_tick),
                "timestamp": _ms(event.ts_ns),
            }
        )

    def _new_market(self, info: MarketInfo, ts_ns: int) -> str:
        market_id = self._market_ids[info.market]
        description = (
            f'Simulated market. Resolves to "{info.outcomes[0]}" or "{info.outcomes[1]}" '
            "as the simulator's seeded world decides."
        )
        return _dumps(
            {
                "event_type": "new_market", "id": market_id, "question": info.question,
                "market": info.market, "slug": info.slug, "description": description,
                "assets_ids": list(info.tokens), "outcomes": list(info.outcomes),
                "event_message": {
                    "id": market_id, "ticker": info.slug, "slug": info.slug,
                    "title": info.question, "description": description,
                },
                "timestamp": _ms(ts_ns), "tags": [], "condition_id": info.market, "active": True,
                "clob_token_ids": list(info.tokens), "sports_market_type": "", "line": "",
                "game_start_time": "", "order_price_min_tick_size": format_micro(info.tick),
                "group_item_title": "",
            }
        )

    def _market_resolved(self, event: ev.Resolved) -> str:
        return _dumps(
            {
                "event_type": "market_resolved", "id": self._market_ids[event.market],
                "market": event.market, "assets_ids": list(event.tokens),
                "winning_asset_id": event.winning_token, "winning_outcome": event.winning_outcome,
                "timestamp": _ms(event.ts_ns), "tags": [],
            }
        )
