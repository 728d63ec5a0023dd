"""The run's metrics and health wired to one engine (composition level: ``cockpit/`` never imports
the engine). ``EngineFigures`` reads, at scrape or health time, what a ``Snapshot`` does not hold:
frames and messages per channel, malformed frames, books by state and the stalest book's age,
the bus's drops and backlogs, orders sent, every position by slug and outcome, the live gateway's
heartbeats and queues, the supervised services for the breaker gauge. ``cockpit_http`` builds
the whole HTTP service of ``mmbot run --http``: registry, health, app, server.

Everything here runs on the Trio thread, between decision steps (a scrape is a request of the
run's own server), so the figures of one scrape belong to one instant.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Awaitable, Callable

import trio

from mmbot.app_cockpit import Cockpit
from mmbot.app_engine import Engine
from mmbot.cockpit.health import Health, HealthFigures, assess
from mmbot.cockpit.http import Sockets, make_app, serve_http
from mmbot.cockpit.metrics import Connection, Figures, Position, RunMetrics
from mmbot.cockpit.snapshot import Snapshot
from mmbot.config import Secret
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.polymarket.ws import ChannelConnection

DASHBOARD_MARKETS = 200  # market rows the page is sent each second (the busy first): a page, not a database
HEARTBEAT_WINDOW_S = 60  # "recent" heartbeats for health: those of the last minute
SERVICES = ("decisions", "market-feed")  # always supervised; the mode's others are added by name
_NS_PER_S = 1_000_000_000


class EngineFigures:
    """``user``: the live user channel's connection (``VenueSession.user``), when there is one;
    ``services``: the names of the run's supervised services (for ``mmbot_breaker_tripped``);
    ``stale_after_s``: a synced book quiet this long makes the run degraded (None: not judged,
    a quiet market's book may rightly not change for minutes)."""

    def __init__(self, engine: Engine, *, user: ChannelConnection | None = None, services: tuple[str, ...] = (),
                 stale_after_s: int | None = None) -> None:
        self.engine = engine
        self.user = user
        self.services = tuple(dict.fromkeys((*SERVICES, *services)))
        self.stale_after_s = stale_after_s
        self._beats: deque[tuple[int, int, int]] = deque()  # (now_ns, ok, failed) samples, for the window

    # ------------------------------------------------------------------ the figures

    def _books(self) -> tuple[Counter[str], int | None]:
        engine = self.engine
        states: Counter[str] = Counter()
        oldest: int | None = None
        for info in engine.markets:
            for token in info.tokens:
                book = engine.books.get(token)
                if book is None:
                    continue
                states[book.state.value] += 1
                if book.state.value == "synced" and (oldest is None or book.updated_ns < oldest):
                    oldest = book.updated_ns
        age = None if oldest is None else max(0, engine.clock.now_ns() - oldest) // _NS_PER_S
        return states, age

    def _gateway(self) -> dict[str, int]:
        statistics = getattr(self.engine.gateway, "statistics", None)
        if statistics is None:
            return {}
        return {k: v for k, v in statistics().items() if isinstance(v, int) and not isinstance(v, bool)}

    def figures(self) -> Figures:
        engine = self.engine
        executor = engine.executor
        frames, messages, malformed = ({"market": engine.frames.frames}, {"market": engine.frames.messages},
                                       {"market": engine.frames.malformed})
        connections = [Connection(name=c.name, kind="market", up=bool(c.connected), frames=c.frames,
                                  sessions=c.sessions) for c in getattr(engine.channel, "connections", ())]
        if self.user is not None:
            frames["user"] = self.user.frames
            connections.append(Connection(name="user", kind="user", up=bool(self.user.connected),
                                          frames=self.user.frames, sessions=self.user.sessions))
        states, age = self._books()
        slots = engine.slots.statistics()
        inbox = engine.inbox.statistics()
        gateway = self._gateway()
        positions = []
        for token, holding in sorted(executor.ledger.positions().items()):
            if not holding.shares and not holding.cost:
                continue
            info = engine.markets.for_token(token)
            market, slug, outcome = ("", token[:12], "") if info is None else (
                info.market, info.slug or info.market[:12], info.outcomes[info.tokens.index(token)])
            positions.append(Position(token=token, market=market, slug=slug, outcome=outcome, shares=holding.shares,
                                      cost=holding.cost))
        return Figures(
            frames=frames, messages=messages, malformed=malformed, connections=tuple(connections),
            books_by_state=dict(states), stalest_book_s=age, slot_updates=slots.updates, slot_drops=slots.dropped,
            slot_pending=slots.pending, slot_peak=slots.peak_pending,
            streams={"inbox": (inbox.sent, inbox.backlog, inbox.peak_backlog)},
            submitted=executor.counts["orders"], positions=tuple(positions),
            heartbeats=({"ok": gateway.get("heartbeats_ok", 0), "failed": gateway.get("heartbeats_failed", 0)}
                        if "heartbeats_ok" in gateway else {}),
            services=self.services, gateway=gateway)

    # ------------------------------------------------------------------ health

    def health_figures(self) -> HealthFigures:
        gateway = self._gateway()
        now = self.engine.clock.now_ns()
        ok, failed = gateway.get("heartbeats_ok", 0), gateway.get("heartbeats_failed", 0)
        self._beats.append((now, ok, failed))
        while len(self._beats) > 1 and self._beats[1][0] <= now - HEARTBEAT_WINDOW_S * _NS_PER_S:
            self._beats.popleft()
        _, ok0, failed0 = self._beats[0]
        states, age = self._books()
        return HealthFigures(heartbeats_ok=ok - ok0 if len(self._beats) > 1 else 0,
                             heartbeats_failed=max(failed - failed0, gateway.get("heartbeats_failing_in_a_row", 0)),
                             stale_books=states["stale"] + states["crossed"], stalest_book_s=age,
                             stale_after_s=self.stale_after_s)

    def health(self, snap: Snapshot) -> Health:
        return assess(snap, self.health_figures())


def run_metrics(cockpit: Cockpit, figures: EngineFigures) -> RunMetrics:
    """The run's registry, its feed-lag histogram fed by every market message from now on."""
    # no market rows: the figures per market come from the engine (``EngineFigures``), not from rows
    metrics = RunMetrics(snapshot=lambda: cockpit.snapshot(markets=0), figures=figures.figures, health=figures.health)

    def lag(msg: object) -> None:
        venue_ms, recv_ns = getattr(msg, "venue_ts_ms", None), getattr(msg, "recv_ns", None)
        if isinstance(venue_ms, int) and isinstance(recv_ns, int) and venue_ms > 0:
            metrics.observe_feed_lag(recv_ns, venue_ms)

    cockpit.engine.frames.add_observer(lag)
    return metrics


def cockpit_http(
    cockpit: Cockpit, *, host: str, port: int, token: Secret | str, sockets: Sockets | None = None,
    user: ChannelConnection | None = None, rest: ClobRest | None = None, services: tuple[str, ...] = (),
    stop: trio.Event | None = None,
    stream_interval_s: float = 1,  # float-ok: seconds between two states on the stream
    on_started: Callable[[tuple[str, int]], None] | None = None,
) -> tuple[str, Callable[..., Awaitable[None]]]:
    """The ``("http", service)`` pair for ``extra_services``: the dashboard, API, ``/metrics`` and
    ``/healthz`` of this run. ``sockets`` from ``cockpit.http.bind`` (bound before the run, so a
    port in use fails at once); ``rest``: the run's ``ClobRest`` (its requests feed the REST
    histogram); ``on_started((host, port))`` once listening."""
    figures = EngineFigures(cockpit.engine, user=user, services=services)
    metrics = run_metrics(cockpit, figures)
    if rest is not None:
        rest.observe = metrics.observe_rest
    app = make_app(snapshot=lambda: cockpit.snapshot(markets=DASHBOARD_MARKETS), controls=cockpit,
                   health_snapshot=lambda: cockpit.snapshot(markets=0), metrics=metrics.registry, token=token,
                   stream_interval_s=stream_interval_s, health=figures.health)
    app.state.metrics = metrics

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(lambda task_status: serve_http(app, host, port, sockets=sockets, stop=stop,
                                                                      task_status=task_status))
            if on_started is not None:
                on_started(bound)
            task_status.started()

    return "http", run
