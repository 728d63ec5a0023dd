"""The run's Prometheus metrics (``/metrics``), on a registry of the run's own (never the global
one: two runs in one process, as in tests, do not mix).

Most figures are read at scrape time by a custom collector, from a ``Snapshot`` and the engine's
``Figures`` the composition root reads (``app_metrics``): nothing is copied on the hot path. Two
histograms are observed as things happen: the feed lag (``observe_feed_lag``, one per market
message) and the REST latency (``observe_rest``, the ``ClobRest.observe`` hook), with REST
requests by endpoint and status and the 429s beside them.

Amounts are pUSD (the micro-units divided by 10**6: Prometheus's values are floats), shares are
shares, durations seconds. Every name starts ``mmbot_``; each family's help says what it counts.
"""

from __future__ import annotations

from typing import Callable, Iterator

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mmbot.cockpit.controls import SnapshotSource
from mmbot.cockpit.health import DEGRADED, DOWN, Health
from mmbot.cockpit.snapshot import Snapshot

_MICRO = 1_000_000
_NS = 1e9  # float-ok: nanoseconds to the seconds Prometheus wants
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@attrs.frozen
class Connection:
    name: str
    kind: str  # market / user
    up: bool
    frames: int
    sessions: int


@attrs.frozen
class Position:
    token: str
    market: str
    slug: str
    outcome: str
    shares: int  # micro-shares
    cost: int  # micro-pUSD


@attrs.frozen
class Figures:
    """What the metrics need that a ``Snapshot`` does not hold, read from the engine at once."""

    frames: dict[str, int]  # channel (market / user) -> frames received
    messages: dict[str, int]  # channel -> messages decoded
    malformed: dict[str, int]  # channel -> frames that did not decode
    connections: tuple[Connection, ...]
    books_by_state: dict[str, int]  # synced / stale / crossed / empty
    stalest_book_s: float | None  # float-ok: seconds since the last update of the stalest synced book
    slot_updates: int  # book updates put into the latest-value slots
    slot_drops: int  # replaced before the decision task read them
    slot_pending: int
    slot_peak: int
    streams: dict[str, tuple[int, int, int]]  # stream -> (sent, backlog now, peak backlog)
    submitted: int  # orders the executor sent
    positions: tuple[Position, ...]
    heartbeats: dict[str, int]  # ok / failed (live trading only; empty otherwise)
    services: tuple[str, ...]  # every supervised service, for the breaker's gauge
    gateway: dict[str, int]  # the live gateway's own counters (queues, unknown submits), if any


def _pusd(micro: int) -> float:  # float-ok: Prometheus's values are floats
    return micro / _MICRO


class _Collector(Collector):
    def __init__(self, snapshot: SnapshotSource, figures: Callable[[], Figures] | None,
                 health: Callable[[Snapshot], Health] | None) -> None:
        self._snapshot = snapshot
        self._figures = figures
        self._health = health

    def describe(self) -> list:  # the families vary with the run: no description ahead (prometheus-client)
        return []

    def collect(self) -> Iterator:
        snap = self._snapshot()
        yield from _from_snapshot(snap)
        if self._health is not None:
            verdict = self._health(snap)
            g = GaugeMetricFamily("mmbot_health", "0 ok, 1 degraded, 2 down (as /healthz)")
            g.add_metric([], {DEGRADED: 1, DOWN: 2}.get(verdict.status, 0))
            yield g
        if self._figures is not None:
            yield from _from_figures(self._figures(), snap)


def _counter(name: str, help_: str, labels: list[str], values: dict) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key] if labels else [], value)
    return family


def _gauge(name: str, help_: str, value: float | None = None, labels: list[str] | None = None,  # float-ok
           values: dict | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_, value=value, labels=labels) if labels is None and value is not None \
        else GaugeMetricFamily(name, help_, labels=labels or [])
    for key, v in sorted((values or {}).items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], v)
    return family


def _from_snapshot(snap: Snapshot) -> Iterator:
    yield _gauge("mmbot_cash_pusd", "Cash the run holds, pUSD (reserved included)", _pusd(snap.cash))
    yield _gauge("mmbot_reserved_pusd", "Cash reserved by open buy orders, pUSD", _pusd(snap.reserved))
    yield _gauge("mmbot_fees_pusd", "Fees paid since the run started, pUSD", _pusd(snap.fees))
    yield _gauge("mmbot_pnl_pusd", "Profit and loss, pUSD: realised, unrealised (held shares at their marks) and "
                 "total", labels=["kind"], values={"realised": _pusd(snap.realised),
                                                   "unrealised": _pusd(snap.unrealised), "total": _pusd(snap.pnl)})
    yield _counter("mmbot_fills", "Fills (the ledger's count)", [], {(): snap.fills})
    yield _counter("mmbot_fills_by_liquidity", "Fills by our side of them: maker or taker", ["liquidity"],
                   {"maker": snap.maker_fills, "taker": snap.taker_fills})
    yield _gauge("mmbot_orders", "Open orders by state", labels=["state"], values=dict(snap.orders_by_state))
    yield _counter("mmbot_intents", "Strategy intents, by strategy", ["strategy"], dict(snap.intents_by_strategy))
    yield _counter("mmbot_rejections", "Orders refused, by reason: risk's reasons, and the venue's as 'venue: ...'",
                   ["reason"], dict(snap.rejections))
    counts = snap.counts
    yield _counter("mmbot_corrections", "Reconciliation corrections (our record set right by the venue's)", [],
                   {(): counts.get("correction", 0)})
    yield _counter("mmbot_unknown_outcomes", "Orders whose outcome the venue left unknown (sent, no answer)", [],
                   {(): counts.get("outcome_unknown", 0) + counts.get("unknown_outcome", 0)})
    yield _counter("mmbot_restarts", "Service restarts after a crash", [], {(): counts.get("restart", 0)})
    yield _counter("mmbot_breaker_trips", "Breaker trips (a service crashed too often and was stopped)", [],
                   {(): counts.get("breaker_trip", 0)})
    yield _counter("mmbot_feed_downs", "Market feed connections lost", [], {(): counts.get("feed_down", 0)})
    yield _gauge("mmbot_paused", "1 while the operator has quoting paused", int(snap.paused))
    yield _gauge("mmbot_halted", "1 once the run stopped quoting for good", int(snap.halted))
    yield _gauge("mmbot_gate_open", "1 while the venue session's trading gate is open", int(snap.gate_open))
    yield _gauge("mmbot_feed_up", "1 while the connection is up, by connection and kind (market / user)",
                 labels=["connection", "kind"], values={(f.name, f.kind): int(f.up) for f in snap.feeds})


def _from_figures(fig: Figures, snap: Snapshot) -> Iterator:
    yield _counter("mmbot_frames", "Websocket frames received, by channel", ["channel"], fig.frames)
    yield _counter("mmbot_messages", "Messages decoded from the frames, by channel", ["channel"], fig.messages)
    yield _counter("mmbot_frames_malformed", "Frames that did not decode, by channel", ["channel"], fig.malformed)
    yield _counter("mmbot_connection_frames", "Frames received, by connection", ["connection", "kind"],
                   {(c.name, c.kind): c.frames for c in fig.connections})
    yield _counter("mmbot_connection_sessions", "Times the connection came up", ["connection", "kind"],
                   {(c.name, c.kind): c.sessions for c in fig.connections})
    yield _gauge("mmbot_books", "Books by state (synced / stale / crossed / empty)", labels=["state"],
                 values=dict(fig.books_by_state))
    stale = sum(n for state, n in fig.books_by_state.items() if state in ("stale", "crossed"))
    yield _gauge("mmbot_books_stale", "Books not to be trusted now (stale or crossed)", stale)
    yield _gauge("mmbot_book_staleness_seconds", "Seconds since the last update of the stalest synced book",
                 fig.stalest_book_s if fig.stalest_book_s is not None else 0.0)
    yield _counter("mmbot_bus_slot_updates", "Book updates put into the latest-value slots", [], {(): fig.slot_updates})
    yield _counter("mmbot_bus_slot_drops", "Book updates replaced unread (latest-value slots: by design, counted)", [],
                   {(): fig.slot_drops})
    yield _gauge("mmbot_bus_slot_pending", "Book updates waiting for the decision task", fig.slot_pending)
    yield _gauge("mmbot_bus_slot_peak", "The most book updates ever waiting at once", fig.slot_peak)
    yield _counter("mmbot_bus_stream_sent", "Messages sent on an unbounded stream", ["stream"],
                   {k: v[0] for k, v in fig.streams.items()})
    yield _gauge("mmbot_bus_stream_backlog", "Messages waiting on an unbounded stream", labels=["stream"],
                 values={k: v[1] for k, v in fig.streams.items()})
    yield _gauge("mmbot_bus_stream_peak_backlog", "The longest an unbounded stream's backlog ever was",
                 labels=["stream"], values={k: v[2] for k, v in fig.streams.items()})
    yield _counter("mmbot_orders_submitted", "Orders the executor sent", [], {(): fig.submitted})
    yield _gauge("mmbot_position_shares", "Shares held, by market slug and outcome", labels=["market", "slug", "outcome"],
                 values={(p.market, p.slug, p.outcome): _pusd(p.shares) for p in fig.positions})
    yield _gauge("mmbot_position_cost_pusd", "Cost basis of the shares held, pUSD", labels=["market", "slug", "outcome"],
                 values={(p.market, p.slug, p.outcome): _pusd(p.cost) for p in fig.positions})
    yield _counter("mmbot_heartbeats", "Venue heartbeats by result (live trading)", ["result"],
                   {"ok": fig.heartbeats.get("ok", 0), "failed": fig.heartbeats.get("failed", 0)})
    tripped = set(snap.tripped)
    yield _gauge("mmbot_breaker_tripped", "1 if the service's breaker tripped (it is not restarted)",
                 labels=["service"], values={s: int(s in tripped) for s in {*fig.services, *tripped}})
    yield _gauge("mmbot_gateway", "The live gateway's own figures (queues, unknown submits, ...)", labels=["figure"],
                 values=dict(fig.gateway))


class RunMetrics:
    """The registry of one run, with its live histograms; ``registry`` goes to ``make_app``."""

    def __init__(self, *, snapshot: SnapshotSource, figures: Callable[[], Figures] | None = None,
                 health: Callable[[Snapshot], Health] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.feed_lag = Histogram(
            "mmbot_feed_lag_seconds", "Market messages' delay beyond the fastest one seen: our receive time less "
            "the venue's timestamp, less the least such difference of the run (the clocks' offset cancels out)",
            buckets=LAG_BUCKETS, registry=self.registry)
        self.rest_latency = Histogram("mmbot_rest_request_seconds", "REST request time, by endpoint",
                                      ["endpoint"], buckets=REST_BUCKETS, registry=self.registry)
        self.rest_requests = Counter("mmbot_rest_requests", "REST requests by endpoint and HTTP status "
                                     "(0: no answer)", ["endpoint", "status"], registry=self.registry)
        self.rest_throttled = Counter("mmbot_rest_throttled", "REST answers 429 (rate limited)", ["endpoint"],
                                      registry=self.registry)
        self.registry.register(_Collector(snapshot, figures, health))
        self._least_offset_ns: int | None = None

    def observe_rest(self, endpoint: str, status: int, elapsed_ns: int) -> None:
        """The ``ClobRest.observe`` hook."""
        self.rest_latency.labels(endpoint).observe(max(0, elapsed_ns) / _NS)
        self.rest_requests.labels(endpoint, str(status)).inc()
        if status == 429:
            self.rest_throttled.labels(endpoint).inc()

    def observe_feed_lag(self, recv_ns: int, venue_ts_ms: int) -> None:
        """One market message: its receive time (our clock) and the venue's timestamp (its own)."""
        offset = recv_ns - venue_ts_ms * 1_000_000
        if self._least_offset_ns is None or offset < self._least_offset_ns:
            self._least_offset_ns = offset
        self.feed_lag.observe((offset - self._least_offset_ns) / _NS)
