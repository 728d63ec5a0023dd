"""Market selection in a running engine (composition level): the ``[select]`` rule
(``venues/polymarket/selection.py``) applied to the listing at start-up and kept current while
the run goes on, and the start-up check of ``[[markets]]`` overrides.

The service re-reads the listing every ``refresh_s``, just after the soonest end among the traded
markets (an Up/Down boundary: the next window is taken on at once), and soon after the market
channel announces a new market. Each market it takes on is added to the engine's registry, its
end watched and its tokens subscribed, with a ``market_selected`` row (slug, reason); each traded
market that ended or left the listing gets a ``market_retired`` row — the boundary and resolution
machinery already cancels its orders, and its tokens are let go once it resolves
(``follow_resolutions``), or when the engine forgets it. ``--markets`` runs have no such service.
"""

from __future__ import annotations

import random
from typing import Callable, Iterable

import httpx
import trio

from mmbot.app_engine import Engine
from mmbot.backoff import Backoff
from mmbot.config import Config, ConfigError, SelectConfig
from mmbot.facts.venue_time import VenueTime
from mmbot.model import MarketInfo, MarketResolved, NewMarket
from mmbot.venues.polymarket.listing import Listed, fetch_listing
from mmbot.venues.polymarket.ws import MarketChannel
from mmbot.venues.polymarket.selection import Choice, retire, select, soonest_end

BOUNDARY_DELAY_S = 1  # how long after a traded market's end the listing is read again
LISTED_DELAY_S = 2  # how long after a ``new_market`` announcement (Gamma hydrates it meanwhile)
_NS = 1_000_000_000


async def initial_selection(client: httpx.AsyncClient, select_config: SelectConfig, now_ns: int) -> list[MarketInfo]:
    """The markets to trade at start-up, soonest-ending first (raises ``httpx.HTTPError`` or
    ``ValueError`` when the listing cannot be read)."""
    listing, _ = await fetch_listing(client)
    return [choice.listed.info for choice in select(listing, select_config, now_ns)]


def check_overrides(config: Config, markets: Iterable[MarketInfo]) -> None:
    """Every ``[[markets]]`` override must name a start-up market, by condition id or slug (pattern):
    ``ConfigError`` (one line) naming the first that names none."""
    markets = list(markets)
    for at, override in enumerate(config.markets):
        if not any(override.matches(info.market, info.slug) for info in markets):
            raise ConfigError(f"config field markets[{at}].market: {override.market!r} is neither the condition id"
                              f" nor the slug of a market traded at start-up ({len(markets)} market(s))")


def follow_resolutions(channel: MarketChannel) -> Callable[[object], None]:
    """The market channel's observer when selection chooses what is subscribed: a resolved
    market's tokens are let go (new listings are subscribed only once selected)."""

    def observe(msg: object) -> None:
        if isinstance(msg, MarketResolved):
            channel.unsubscribe(msg.tokens)

    return observe


class Selection:
    """The traded set of a running engine, kept current from the listing (a supervised service)."""

    def __init__(self, *, engine: Engine, client: httpx.AsyncClient, config: SelectConfig,
                 rng: random.Random | None = None) -> None:
        """``engine``: an ``app_engine.Engine`` whose ``channel`` is the live market channel. The
        markets it already trades are taken as selected (``market_selected`` rows at the first read)."""
        self._engine = engine
        self._client = client
        self._config = config
        self._venue_time = VenueTime(engine.clock)
        self._backoff = Backoff(base_s=2, cap_s=max(2, config.refresh_s), rng=rng or random.Random(0x5E1EC7))
        self.traded: dict[str, MarketInfo] = {}
        self.retired: set[str] = set()
        self._adopted_at_start = False
        self._wake = trio.Event()
        self._wake_at_ns: int | None = None  # on our clock: a new_market announcement's read
        engine.frames.add_observer(self.observe)

    # ------------------------------------------------------------------ inputs

    def observe(self, msg: object) -> None:
        self._venue_time.observe(msg)
        if isinstance(msg, NewMarket) and msg.market not in self.traded and msg.market not in self.retired:
            due = self._engine.clock.now_ns() + LISTED_DELAY_S * _NS
            self._wake_at_ns = due if self._wake_at_ns is None else min(self._wake_at_ns, due)
            self._wake.set()

    def venue_now(self) -> int:
        """The venue's time (its frames tell it); our clock's before any frame came."""
        now = self._venue_time.now_ns()
        return self._engine.clock.now_ns() if now is None else now

    # ------------------------------------------------------------------ the service

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            ok = await self.refresh()
            delay_s = self._config.refresh_s if ok else self._backoff.next_s()
            if ok:
                self._backoff.reset()
            await self._sleep(delay_s)

    async def _sleep(self, delay_s: float) -> None:  # float-ok: a trio sleep
        """Until ``delay_s`` passed, the soonest traded end passed (plus a second), or a listing
        was announced a moment ago."""
        clock = self._engine.clock
        deadline = clock.now_ns() + round(delay_s * _NS)
        while True:
            now_venue = self.venue_now()
            end = soonest_end(self.traded.values(), now_venue)
            if end is not None:
                deadline = min(deadline, clock.now_ns() + (end - now_venue) + BOUNDARY_DELAY_S * _NS)
            if self._wake_at_ns is not None:
                deadline = min(deadline, self._wake_at_ns)
            if clock.now_ns() >= deadline:
                self._wake_at_ns = None
                return
            self._wake = trio.Event()
            with trio.move_on_after((deadline - clock.now_ns()) / _NS):
                await self._wake.wait()

    async def refresh(self) -> bool:
        """Read the listing once: retire what ended or left it, take on what newly matches.
        False (with an ``error`` row) when the listing could not be read."""
        log = self._engine.log
        try:
            listing, _ = await fetch_listing(self._client)
        except (httpx.HTTPError, ValueError) as exc:
            log.record("error", "selection", {"where": "selection", "error": f"{type(exc).__name__}: {exc}"[:200]})
            return False
        now = self.venue_now()
        if not self._adopted_at_start:
            self._adopt_start_markets(listing, now)
        for info, reason in retire(self.traded.values(), {listed.info.market for listed in listing}, now):
            del self.traded[info.market]
            self.retired.add(info.market)
            log.record("market_retired", "selection", {"slug": info.slug, "reason": reason, "end_ns": info.end_ns},
                       market=info.market)
        listed_now = {listed.info.market for listed in listing}
        # a retired market is kept out while the listing still shows it, and forgotten once it
        # does not (nothing else could bring it back): bounded by the listing, not by the run's age
        self.retired &= listed_now
        fresh = [listed for listed in listing if listed.info.market not in self.retired]
        for choice in select(fresh, self._config, now, traded=self.traded):
            self._take_on(choice)
        return True

    def _adopt_start_markets(self, listing: list[Listed], now: int) -> None:
        """The engine's start-up markets (chosen by ``initial_selection``) are the traded set."""
        from mmbot.venues.polymarket.selection import why

        self._adopted_at_start = True
        by_id = {listed.info.market: listed for listed in listing}
        for info in list(self._engine.markets):
            listed = by_id.get(info.market)
            reason = (why(listed, self._config, now) if listed is not None else None) or "traded from the start"
            self.traded[info.market] = info
            self._record_selected(info, f"start-up: {reason}")

    def _take_on(self, choice: Choice) -> None:
        engine, info = self._engine, choice.listed.info
        if engine.markets.get(info.market) is None:
            engine.markets.add(info)
        engine.boundaries.watch(info)
        if engine.channel is not None:
            engine.channel.subscribe(info.tokens)
        self.traded[info.market] = info
        self._record_selected(info, choice.reason)

    def _record_selected(self, info: MarketInfo, reason: str) -> None:
        self._engine.log.record("market_selected", "selection", {
            "slug": info.slug, "reason": reason, "question": info.question, "outcomes": list(info.outcomes),
            "tokens": list(info.tokens), "end_ns": info.end_ns, "tick": info.tick, "min_size": info.min_size,
            "fee_rate": info.fee_rate, "neg_risk": info.neg_risk,
        }, market=info.market)


def selection_service(engine: Engine, client: httpx.AsyncClient, config: SelectConfig) -> Selection:
    """The selection of a running engine; start ``("selection", selection.run)`` among its services."""
    return Selection(engine=engine, client=client, config=config)
