"""Seeded background flow: the traders, prices and market schedule that make the simulator live.

Everything here draws from one ``random.Random`` handed in by the caller and moves only when
``World.step(now_ns)`` is called with a later virtual time, so a seed fixes the whole history.
All prices are integer micro-units, fair values included (``prices.py``).

What trades:
- **Plain binary markets** whose fair probability drifts (a bounded random walk, slower near
  0 and 1). One of them is a long shot near 0.96, so tick size changes happen.
- **Interval Up/Down markets** per simulated underlying (an integer random walk ticking each
  second): listed ahead of their window, fair value = P(end >= start) given the move so far and
  the time left, closed at the window's end and resolved Up if the end price >= the start price.
- **Makers** (several per market) quote both tokens, a few levels each, around their own noisy
  and lagged view of fair value, post-only, with cancel/replace churn.
- **Takers** now and then send FAK orders that sweep a level or several.
- **Dislocations**: from time to time, for tens of seconds, every maker of a market shifts both
  tokens' quotes the same way, so the two asks sum below 1 (by 0.02-0.05) or the two bids sum
  above 1 - the complete-set mispricings mmbot hunts. Background takers arbitrage part of them
  away through the engine's mint/merge matching, as on the venue.
- **Tick changes**: 0.01 -> 0.001 when the fair value passes 0.96 or 0.04, back inside
  0.94/0.06, never twice within ``tick_dwell_s``.
"""

from __future__ import annotations

import collections
import random

import attrs

from mmbot.model import ONE, SHARE_STEP, MarketInfo, Side, TimeInForce
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.events import MarketState
from mmbot.venues.simulator.prices import SECOND, DriftingFair, FairModel, IntervalFair, Underlying

MS = 1_000_000
COARSE_TICK = 10_000
FINE_TICK = 1_000


def on_grid(price: int, tick: int, *, round_up: bool) -> int:
    """``price`` moved onto the tick grid (up or down) and clamped into [tick, 1 - tick]."""
    snapped = -(-price // tick) * tick if round_up else price // tick * tick
    return min(max(snapped, tick), ONE - tick)


# --------------------------------------------------------------------------- the plan


@attrs.frozen(kw_only=True)
class FlowParams:
    """How busy the background is. Times in ms or s as named; depths in micro-units."""

    makers_per_market: int = 8
    requote_ms: tuple[int, int] = (600, 3_000)
    look_percent: int = 50  # chance a maker refreshes its view of fair value when it requotes
    churn_percent: int = 4  # chance a kept quote is cancelled and replaced anyway
    taker_ms: tuple[int, int] = (2_000, 9_000)
    sweep_percent: int = 15
    first_dislocation_s: tuple[int, int] = (20, 120)
    dislocation_gap_s: tuple[int, int] = (60, 180)
    dislocation_s: tuple[int, int] = (15, 45)
    dislocation_depth: tuple[int, int] = (20_000, 50_000)
    tick_dwell_s: int = 20  # a tick size stays at least this long, so a price near 0.96 cannot flap it


@attrs.frozen(kw_only=True)
class PlainSpec:
    info: MarketInfo
    fair: int
    max_step: int


@attrs.frozen(kw_only=True)
class WindowSpec:
    """One interval market of a recurring series and the instants of its life."""

    info: MarketInfo
    symbol: str
    list_ns: int
    start_ns: int
    end_ns: int
    resolve_ns: int


@attrs.frozen(kw_only=True)
class MarketPlan:
    underlyings: tuple[tuple[str, int, int], ...]  # (symbol, starting price, max step per second)
    plain: tuple[PlainSpec, ...]
    windows: tuple[WindowSpec, ...]

    def infos(self) -> tuple[MarketInfo, ...]:
        return tuple(p.info for p in self.plain) + tuple(w.info for w in self.windows)


# --------------------------------------------------------------------------- traders


@attrs.define(eq=False)
class Maker:
    owner: str
    half_spread: int  # in ticks
    levels: int
    level_gap: int  # in ticks
    bias: int  # in ticks: its private error about fair value
    view: int  # its last look at fair value
    next_ns: int
    quotes: dict[tuple[str, Side, int], str] = attrs.Factory(dict)  # (token, side, price) -> order id


@attrs.define(eq=False)
class Dislocation:
    kind: str  # "ask": asks sum below 1; "bid": bids sum above 1
    shift: int  # added to both tokens' quote centres
    until_ns: int


class MarketFlow:
    """The background traders of one market."""

    def __init__(
        self, info: MarketInfo, fair: FairModel, engine: Engine, rng: random.Random,
        params: FlowParams, index: int, now_ns: int,
    ) -> None:
        self.info = info
        self.fair = fair
        self.engine = engine
        self.rng = rng
        self.params = params
        self.active = True
        self.taker = f"taker-{index}"
        view = fair.fair(now_ns)
        self.makers = [
            Maker(
                owner=f"maker-{index}-{i}", half_spread=rng.randint(2, 3), levels=rng.randint(2, 4),
                level_gap=rng.randint(1, 2), bias=rng.randint(-1, 1), view=view,
                next_ns=now_ns + rng.randint(0, params.requote_ms[0]) * MS,
            )
            for i in range(params.makers_per_market)
        ]
        self.next_taker_ns = now_ns + rng.randint(*params.taker_ms) * MS
        self.next_dislocation_ns = now_ns + rng.randint(*params.first_dislocation_s) * SECOND
        self.dislocation: Dislocation | None = None
        self.tick_changed_ns = now_ns

    def step(self, now_ns: int) -> None:
        if not self.active:
            return
        self._update_dislocation(now_ns)
        self._update_tick(now_ns)
        for maker in self.makers:
            if now_ns >= maker.next_ns:
                self._requote(maker, now_ns)
                maker.next_ns = now_ns + self.rng.randint(*self.params.requote_ms) * MS
        if now_ns >= self.next_taker_ns:
            self._take(now_ns)
            self.next_taker_ns = now_ns + self.rng.randint(*self.params.taker_ms) * MS

    def _update_dislocation(self, now_ns: int) -> None:
        rng, params = self.rng, self.params
        if self.dislocation is not None and now_ns >= self.dislocation.until_ns:
            self.dislocation = None
            self.next_dislocation_ns = now_ns + rng.randint(*params.dislocation_gap_s) * SECOND
        elif self.dislocation is None and now_ns >= self.next_dislocation_ns:
            kind = rng.choice(("ask", "bid"))
            # Normal quoting leaves the best asks about two ticks above 1 in sum; shift past that.
            depth = rng.randint(*params.dislocation_depth) // 2 + self.engine.tick(self.info.market)
            until = now_ns + rng.randint(*params.dislocation_s) * SECOND
            self.dislocation = Dislocation(kind=kind, shift=-depth if kind == "ask" else depth, until_ns=until)

    def _update_tick(self, now_ns: int) -> None:
        if now_ns - self.tick_changed_ns < self.params.tick_dwell_s * SECOND:
            return
        market = self.info.market
        fair = self.fair.fair(now_ns)
        tick = self.engine.tick(market)
        if tick == COARSE_TICK and not 40_000 < fair < 960_000:
            self.engine.set_tick(market, FINE_TICK, now_ns)
            self.tick_changed_ns = now_ns
        elif tick == FINE_TICK and 60_000 <= fair <= 940_000:
            self.engine.set_tick(market, COARSE_TICK, now_ns)
            self.tick_changed_ns = now_ns
            # The engine keeps off-grid orders; the makers withdraw theirs so the book is on one grid.
            for maker in self.makers:
                for key, order_id in list(maker.quotes.items()):
                    if key[2] % COARSE_TICK:
                        self.engine.cancel(order_id, now_ns)
                        del maker.quotes[key]

    def _desired_quotes(self, maker: Maker) -> list[tuple[str, Side, int]]:
        tick = self.engine.tick(self.info.market)
        view = maker.view + maker.bias * tick
        shift = self.dislocation.shift if self.dislocation else 0
        yes, no = self.info.tokens
        wanted = []
        for token, centre in ((yes, view + shift), (no, ONE - view + shift)):
            for level in range(maker.levels):
                offset = (maker.half_spread + level * maker.level_gap) * tick
                bid = on_grid(centre - offset, tick, round_up=False)
                ask = on_grid(centre + offset, tick, round_up=True)
                if bid < ask:
                    wanted.append((token, Side.BUY, bid))
                    wanted.append((token, Side.SELL, ask))
        return wanted

    def _requote(self, maker: Maker, now_ns: int) -> None:
        rng, engine = self.rng, self.engine
        maker.quotes = {k: oid for k, oid in maker.quotes.items() if engine.order(oid) is not None}
        if rng.randrange(100) < self.params.look_percent:
            maker.view = self.fair.fair(now_ns)
        if rng.randrange(10) == 0:
            maker.bias = min(max(maker.bias + rng.choice((-1, 1)), -1), 1)
        wanted = self._desired_quotes(maker)
        for key, order_id in list(maker.quotes.items()):
            if key not in wanted or rng.randrange(100) < self.params.churn_percent:
                engine.cancel(order_id, now_ns)
                del maker.quotes[key]
        for key in wanted:
            if key in maker.quotes:
                continue
            token, side, price = key
            size = rng.randint(500, 30_000) * SHARE_STEP
            # Post-only: a quote that would cross a laggard's quote is refused and retried later.
            result = engine.submit(maker.owner, token, side, price, size, TimeInForce.GTC, True, now_ns)
            if result.status == "live":
                maker.quotes[key] = result.order_id

    def _take(self, now_ns: int) -> None:
        rng = self.rng
        token = rng.choice(self.info.tokens)
        side = rng.choice((Side.BUY, Side.SELL))
        best_bid, best_ask = self.engine.best(token)
        reference = best_ask if side is Side.BUY else best_bid
        if reference is None:
            return
        tick = self.engine.tick(self.info.market)
        sweep = rng.randrange(100) < self.params.sweep_percent
        reach = rng.randint(2, 6) if sweep else rng.randint(0, 1)
        size = rng.randint(500, 6_000) * SHARE_STEP * (4 if sweep else 1)
        if side is Side.BUY:
            limit = on_grid(reference + reach * tick, tick, round_up=True)
        else:
            limit = on_grid(reference - reach * tick, tick, round_up=False)
        self.engine.submit(self.taker, token, side, limit, size, TimeInForce.FAK, False, now_ns)


# --------------------------------------------------------------------------- the world


class World:
    """Every market, trader and underlying of one simulation, advanced by ``step(now_ns)``.

    Once a second (on whole seconds) the underlyings and plain fair values move, interval
    windows are listed, opened, closed and resolved; then every market's traders act.
    """

    def __init__(
        self, engine: Engine, rng: random.Random, plan: MarketPlan, begin_ns: int,
        params: FlowParams = FlowParams(),
    ) -> None:
        self.engine = engine
        self.rng = rng
        self.plan = plan
        self.params = params
        self.underlyings = {s: Underlying(symbol=s, price=p, max_step=m) for s, p, m in plan.underlyings}
        self.flows: list[MarketFlow] = []  # of markets still trading or waiting to resolve
        self._listed = 0
        self._drifts: list[DriftingFair] = []
        self._windows: list[tuple[WindowSpec, IntervalFair, MarketFlow]] = []
        self._pending = collections.deque(sorted(plan.windows, key=lambda w: w.list_ns))
        self._next_second_ns = -(-begin_ns // SECOND) * SECOND
        self._ticks: list[tuple[str, int, int]] = []
        for spec in plan.plain:
            fair = DriftingFair(value=spec.fair, max_step=spec.max_step)
            self._drifts.append(fair)
            self._list(spec.info, fair, begin_ns)

    def _list(self, info: MarketInfo, fair: FairModel, now_ns: int) -> MarketFlow:
        self.engine.add_market(info, now_ns)
        flow = MarketFlow(info, fair, self.engine, self.rng, self.params, self._listed, now_ns)
        self._listed += 1
        self.flows.append(flow)
        return flow

    def extend(self, windows: tuple[WindowSpec, ...]) -> None:
        """More interval windows to list when their time comes (a plan that keeps going)."""
        self._pending = collections.deque(sorted([*self._pending, *windows], key=lambda w: w.list_ns))

    def step(self, now_ns: int) -> None:
        while self._next_second_ns <= now_ns:
            self._second(self._next_second_ns)
            self._next_second_ns += SECOND
        for flow in self.flows:
            flow.step(now_ns)

    def take_underlying_ticks(self) -> list[tuple[str, int, int]]:
        """(symbol, price, time) of every underlying move since the last call."""
        taken, self._ticks = self._ticks, []
        return taken

    def _second(self, t_ns: int) -> None:
        for underlying in self.underlyings.values():
            underlying.tick_second(self.rng)
            self._ticks.append((underlying.symbol, underlying.price, t_ns))
        for drift in self._drifts:
            drift.tick_second(self.rng)
        while self._pending and self._pending[0].list_ns <= t_ns:
            spec = self._pending.popleft()
            fair = IntervalFair(underlying=self.underlyings[spec.symbol], start_ns=spec.start_ns, end_ns=spec.end_ns)
            self._windows.append((spec, fair, self._list(spec.info, fair, t_ns)))
        resolved = False
        for spec, fair, flow in self._windows:
            fair.observe(t_ns)
            if flow.active and t_ns >= spec.end_ns:
                flow.active = False
                self.engine.close_market(spec.info.market, t_ns)
            if t_ns >= spec.resolve_ns and self.engine.market_state(spec.info.market) is not MarketState.RESOLVED:
                up, down = spec.info.tokens
                self.engine.resolve(spec.info.market, up if fair.up_won() else down, t_ns)
                resolved = True
        if resolved:  # a resolved window's traders and fair value have nothing left to do
            self._windows = [w for w in self._windows if t_ns < w[0].resolve_ns]
            live = {id(w[2]) for w in self._windows}
            self.flows = [f for f in self.flows if f.active or id(f) in live]
