"""Engine events rendered as Polymarket market-channel frames, in the venue's exact shapes.

Shapes and key order follow the protocol doc §2 and the captured frames: a subscription
snapshot is a JSON array of ``book`` messages (best level last: bids ascending, asks
descending) with ``tick_size`` and ``last_trade_price``; resting and cancelled orders become one
``price_change`` per market with absolute sizes and each token's top after the change ("0"/"1"
for an empty side); a trade prints ``last_trade_price`` and is followed by a fresh ``book`` of
every token it touched, as the venue does; tick changes are followed by a ``book`` too, so a
client that marks its book stale on ``tick_size_change`` can resync at once.

The renderer keeps its own mirror of the books, built from the same events, so every ``book``
it writes shows the state at that point of the event stream, not the engine's later state.
Hashes are SHA-1 over the book summary (the py-clob-client recipe), deterministic like
everything else; timestamps are the events' own times in ms.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from mmbot.model import MarketInfo, Side, format_micro
from mmbot.venues.simulator import events as ev

MS = 1_000_000


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


class FrameRenderer:
    """Turns the engine's event stream into market-channel frame texts."""

    def __init__(self, first_market_id: int = 1_000_001) -> None:
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
            self._last_trade.pop(token, None)

    def render(self, events: Iterable[ev.Event]) -> list[str]:
        frames: list[str] = []
        changes: dict[str, list[ev.LevelChanged]] = {}
        trades: list[ev.Trade] = []

        def flush() -> None:
            for market, group in changes.items():
                frames.append(self._price_change(market, group))
            touched: dict[str, None] = {}
            for trade in trades:
                frames.append(self._last_trade_price(trade))
                touched[trade.taker_token] = None
                touched[trade.maker_token] = None
            for token in touched:
                frames.append(self._book(token, trades[-1].ts_ns, subscription=False))
            changes.clear()
            trades.clear()

        for event in events:
            if isinstance(event, ev.LevelChanged):
                side = self._books[event.token][0 if event.side is Side.BUY else 1]
                if event.size:
                    side[event.price] = event.size
                else:
                    side.pop(event.price, None)
                changes.setdefault(event.market, []).append(event)
            elif isinstance(event, ev.Trade):
                self._last_trade[event.taker_token] = event.taker_price
                self._last_trade[event.maker_token] = event.maker_price
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
            return [self._market_resolved(event)]
        raise TypeError(f"unexpected engine event {event!r}")

    def _levels(self, token: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        bids, asks = self._books[token]
        return (
            [{"price": format_micro(p), "size": format_micro(bids[p])} for p in sorted(bids)],
            [{"price": format_micro(p), "size": format_micro(asks[p])} for p in sorted(asks, reverse=True)],
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
        return hashlib.sha1(_dumps(summary).encode()).hexdigest()

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
