"""The simulated venue as the server runs it, sans-IO: the seeded world, stepped on times handed in,
its frames addressed to the assets they concern, and the public REST and Gamma views.

``server.py`` owns the sockets and the clock; everything here is plain calls, so tests can drive a
venue without any I/O and compare what a client saw with the engine (the oracle).

A venue that runs for days forgets what is long over (``forget``): resolved markets (their books,
their entries in the listing and the accounts' trade records of them) and the ids of ended
orders. Accounts' cash and shares, resolved markets' included, are never forgotten.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timezone
from typing import Any

import attrs
import msgspec

from mmbot.model import MarketInfo, format_micro
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.flow import MS, FlowParams, World
from mmbot.venues.simulator.frames import FrameRenderer
from mmbot.venues.simulator.generate import plan_markets, plan_windows
from mmbot.venues.simulator.price_history import TradePrints
from mmbot.venues.simulator.prices import SECOND
from mmbot.venues.simulator.user_frames import UserFeed

_ANY = msgspec.json.Decoder()


@attrs.frozen
class OutFrame:
    """One market-channel frame and who gets it: the connections subscribed to any of ``assets``,
    or every connection when ``assets`` is None (``new_market``, ``market_resolved``); a ``custom``
    frame only reaches connections that asked for ``custom_feature_enabled``."""

    text: str
    assets: frozenset[str] | None
    custom: bool = False


CUSTOM_FEATURE_EVENTS = ("best_bid_ask", "new_market", "market_resolved")


def out_frame(text: str) -> OutFrame:
    """A rendered frame addressed: its assets, and whether it is a custom-feature message."""
    decoded = _ANY.decode(text)
    first = decoded[0] if isinstance(decoded, list) and decoded else decoded
    custom = isinstance(first, dict) and first.get("event_type") in CUSTOM_FEATURE_EVENTS
    return OutFrame(text, _assets(decoded), custom)


def frame_assets(text: str) -> frozenset[str] | None:
    """The asset ids a rendered frame concerns; None for market-wide lifecycle messages."""
    return _assets(_ANY.decode(text))


def _assets(decoded: Any) -> frozenset[str] | None:
    messages = decoded if isinstance(decoded, list) else [decoded]
    assets: set[str] = set()
    for msg in messages:
        if msg.get("event_type") in ("new_market", "market_resolved"):
            return None
        if "price_changes" in msg:
            assets.update(entry["asset_id"] for entry in msg["price_changes"])
        elif "asset_id" in msg:
            assets.add(msg["asset_id"])
    return frozenset(assets)


class LiveVenue:
    """A seeded world that keeps going: markets listed ``horizon_s`` ahead, stepped on demand.

    The Up/Down windows are planned a horizon at a time: when less than half a horizon of them
    is left, the next horizon's are planned, with ids from their own generator (seeded by the
    seed and the horizon's number), so the world before that is the same whether or not the
    plan was ever extended.
    """

    def __init__(
        self, *, seed: int, markets: int, start_ns: int, interval_s: int = 300, warmup_s: int = 30,
        horizon_s: int = 86_400, params: FlowParams = FlowParams(),
    ) -> None:
        if markets <= 0 or interval_s < 10 or warmup_s < 0 or horizon_s <= 0:
            raise ValueError("markets must be positive, the interval >= 10 s, warm-up and horizon not negative")
        self.rng = random.Random(seed)
        self.engine = Engine()
        self.plan = plan_markets(
            self.rng, start_ns=start_ns, end_ns=start_ns + horizon_s * SECOND, markets=markets, interval_s=interval_s
        )
        self._seed = seed
        self._series = len(self.plan.underlyings)
        self._interval_s = interval_s
        self._horizon_ns = horizon_s * SECOND
        self._planned_ns = start_ns + self._horizon_ns  # windows listed before this are planned
        self._next_start_ns = max((w.end_ns for w in self.plan.windows), default=start_ns)
        self._horizons = 1
        self._renderer = FrameRenderer(best_bid_ask=True)  # sent to connections that ask for it
        self.user_feed = UserFeed()  # the accounts' order and trade messages
        self.prints = TradePrints()  # last trades and price history, for the public REST
        self._settled: list[ev.Event] = []  # applied to the accounts, not yet rendered (batched shape)
        self._rendered: list[str] = []  # frames of settled events, to go out at the next step
        begin = start_ns - warmup_s * SECOND
        self._world = World(self.engine, self.rng, self.plan, begin, params)
        self.plan = attrs.evolve(self.plan, windows=())  # the world has them; later ones are planned as it goes
        self.now_ns = begin
        self.frames_rendered = 0
        self.forgotten = {"markets": 0, "order_ids": 0, "trade_records": 0}
        while self.now_ns < start_ns:  # warm-up: the books fill; its frames reach nobody
            self.step(min(self.now_ns + self.rng.randint(20, 400) * MS, start_ns))
        self.warmup_frames = self.frames_rendered

    # ------------------------------------------------------------------ the market channel

    def step(self, now_ns: int) -> list[OutFrame]:
        """Advance the world to ``now_ns`` and return the frames it produced, in order."""
        self.now_ns = max(self.now_ns, now_ns)
        if self._planned_ns - self.now_ns < self._horizon_ns // 2:
            self._plan_next_horizon()
        self._world.step(self.now_ns)
        self.engine.expire_due(self.now_ns)  # GTD orders end at their time, not at the next order
        self._world.take_underlying_ticks()
        texts = self._take_rendered()
        self.frames_rendered += len(texts)
        return [out_frame(text) for text in texts]

    def settle(self) -> None:
        """Apply what the engine did since the last step (an order, a cancel) to the accounts now:
        the next request's balance check must see it. Its market frames are rendered now too, so
        ``/book`` and a new subscription's snapshot show it at once, and go out at the next step
        (in the batched shape, one message per market and step, they are rendered then)."""
        events = self.engine.take_events()
        if events:
            self.user_feed.on_events(events)
            self.prints.on_events(events)
            if self._renderer.batched:
                self._settled += events
            else:
                self._rendered += self._renderer.render(events)

    def _take_rendered(self) -> list[str]:
        self.settle()
        events, self._settled = self._settled, []
        texts, self._rendered = self._rendered, []
        return texts + self._renderer.render(events) if events else texts

    def batch_price_changes(self, batched: bool) -> None:
        """``price_change`` as one message per market and step (``mmbot sim --batched-price-changes``)
        instead of the venue's one or two entries a message."""
        self._renderer.batched = batched

    def _plan_next_horizon(self) -> None:
        rng = random.Random(f"{self._seed}/horizon/{self._horizons}")
        end_ns = self._planned_ns + self._horizon_ns
        windows = plan_windows(rng, series=self._series, first_start_ns=self._next_start_ns, end_ns=end_ns,
                               interval_s=self._interval_s)
        self._world.extend(windows)
        self._next_start_ns = max((w.end_ns for w in windows), default=self._next_start_ns)
        self._planned_ns = end_ns
        self._horizons += 1

    def snapshot(self, assets: list[str]) -> str | None:
        """The subscription snapshot for the known ones among ``assets`` (None if none is known)."""
        known = [a for a in assets if self.engine.has_token(a)]
        return self._renderer.snapshot(self.now_ns, known) if known else None

    def set_tick(self, market: str, tick: int) -> list[OutFrame]:
        """A tick size change now (fault injection): its frames, to be sent like any others."""
        self.engine.set_tick(market, tick, self.now_ns)
        texts = self._take_rendered()
        return [out_frame(text) for text in texts]

    def forget(self, before_ns: int) -> list[str]:
        """Forget markets resolved before ``before_ns`` (world time) and ids of orders ended before it;
        returns the tokens forgotten."""
        tokens: list[str] = []
        for market in self.engine.resolved_before(before_ns):
            tokens += self.engine.market_of_id(market).tokens
            self.prints.forget(self.engine.market_of_id(market).tokens)
            self.engine.forget_market(market)
            self._renderer.forget_market(market)
            self.forgotten["trade_records"] += self.user_feed.forget_market(market)
            self.forgotten["markets"] += 1
        self.forgotten["order_ids"] += self.engine.forget_ended(before_ns)
        return tokens

    def sizes(self) -> dict[str, int]:
        """What the venue holds now (the admin statistics show it, to see nothing grows for ever)."""
        return {**self.engine.sizes(), **self.user_feed.sizes(), "flows": len(self._world.flows)}

    # ------------------------------------------------------------------ public REST

    def markets(self) -> tuple[MarketInfo, ...]:
        return self.engine.markets()

    def book(self, token: str) -> dict[str, Any] | None:
        """``GET /book``: the subscription ``book`` plus the REST-only fields, or None if unknown."""
        if not self.engine.has_token(token):
            return None
        info = self.engine.market_of(token)
        book = json.loads(self._renderer.snapshot(self.now_ns, [token]))[0]
        del book["event_type"]
        book["min_order_size"] = format_micro(info.min_size)
        book["neg_risk"] = info.neg_risk
        book["tick_size"] = format_micro(self.engine.tick(info.market))
        return book

    def best(self, token: str) -> tuple[int | None, int | None]:
        return self.engine.best(token)

    def tick(self, token: str) -> int:
        return self.engine.tick(self.engine.market_of(token).market)

    def gamma_market(self, info: MarketInfo) -> dict[str, Any]:
        """A Gamma ``/markets`` entry with the fields the protocol doc lists (§7)."""
        state = self.engine.market_state(info.market)
        closed = state is not ev.MarketState.OPEN
        return {
            "id": str(1_000_001 + self.engine.listing_number(info.market)),
            "question": info.question,
            "conditionId": info.market,
            "questionID": "0x" + hashlib.sha256(info.market.encode()).hexdigest(),
            "slug": info.slug,
            "clobTokenIds": json.dumps(list(info.tokens)),  # a JSON-encoded string, as Gamma sends it
            "outcomes": json.dumps(list(info.outcomes)),
            "outcomePrices": json.dumps(self._outcome_prices(info)),
            "active": True,
            "closed": closed,
            "archived": False,
            "enableOrderBook": True,
            "acceptingOrders": not closed,
            "negRisk": info.neg_risk,
            "orderPriceMinTickSize": int(self.engine.tick(info.market)) / 1e6,  # float-ok: Gamma sends a number
            "orderMinSize": info.min_size // 1_000_000,
            "endDate": _iso(info.end_ns),
            "feesEnabled": info.fee_rate > 0,
            "feeSchedule": {"rate": format_micro(info.fee_rate), "exponent": info.fee_exponent, "takerOnly": True},
        }

    def _outcome_prices(self, info: MarketInfo) -> list[str]:
        winner = self.engine.winner(info.market)
        if winner is not None:  # as Gamma shows a resolved market
            return ["1" if token == winner else "0" for token in info.tokens]
        prices = []
        for token in info.tokens:
            bid, ask = self.engine.best(token)
            prices.append(format_micro((bid + ask) // 2) if bid is not None and ask is not None else "0")
        return prices


def _iso(end_ns: int | None) -> str | None:
    if end_ns is None:
        return None
    return datetime.fromtimestamp(end_ns // SECOND, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
