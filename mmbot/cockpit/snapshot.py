"""What the operator sees of a running engine at one instant: plain frozen values, built by the
composition root (``app_cockpit.take_snapshot``) on the Trio thread between decision steps, and
read by the terminal view, the dashboard, ``/metrics`` and ``/healthz``. Money, prices and sizes
are integer micro-units here; ``as_json`` gives the dashboard human decimals beside them."""

from __future__ import annotations

from typing import Any

import attrs

from mmbot.model import format_micro


@attrs.frozen
class Quote:
    order_id: str
    side: str  # "BUY" / "SELL"
    price: int
    size: int
    filled: int
    status: str
    strategy: str
    age_s: int


@attrs.frozen
class TokenRow:
    token: str
    outcome: str
    best_bid: int | None
    best_ask: int | None
    book_state: str  # synced / stale / crossed / none
    position: int  # shares
    cost: int  # cost basis of the shares held
    mark: int | None
    quotes: tuple[Quote, ...]


@attrs.frozen
class MarketRow:
    market: str
    slug: str
    question: str
    end_wall_ns: int | None
    tokens: tuple[TokenRow, TokenRow]
    realised: int  # cash flows of the market's trades plus the cost of what is still held
    unrealised: int  # what is held at its marks, less its cost
    fills: int
    resolved: bool

    @property
    def label(self) -> str:
        return self.slug or self.market[:12]

    @property
    def pnl(self) -> int:
        return self.realised + self.unrealised


@attrs.frozen
class FeedRow:
    name: str  # the connection's name, or "user"
    kind: str  # "market" / "user"
    up: bool
    since_wall_ns: int  # when it last changed state
    reason: str  # why it went down (empty while up)
    sessions: int  # how many times it came up
    assets: int


@attrs.frozen
class Notice:
    """One line of the cockpit's recent warnings (feed down/up, restarts, breaker trips, ...)."""

    wall_ns: int
    level: str  # info / warning / error
    kind: str  # the event-log kind it came from
    text: str


@attrs.frozen
class FillRow:
    wall_ns: int
    fill_id: str
    market: str
    label: str
    outcome: str
    side: str
    price: int
    size: int
    fee: int
    liquidity: str


@attrs.frozen
class PnlPoint:
    wall_ns: int
    realised: int
    unrealised: int
    fees: int

    @property
    def total(self) -> int:
        return self.realised + self.unrealised


@attrs.frozen
class Snapshot:
    mode: str
    started_wall_ns: int
    wall_ns: int
    cash: int
    reserved: int
    realised: int
    unrealised: int
    fees: int
    start_cash: int
    fills: int
    maker_fills: int
    taker_fills: int
    orders_by_state: dict[str, int]
    intents_by_strategy: dict[str, int]
    rejections: dict[str, int]  # reason -> count, risk's and the venue's ("venue: <reason>")
    paused: bool  # by the operator
    halted: bool  # the run stopped quoting for good (breaker trip, flatten, shutdown)
    gate_open: bool  # the venue session's trading gate (always open on paper)
    tripped: tuple[str, ...]  # services whose breaker tripped
    markets: tuple[MarketRow, ...]  # the rows shown: the busy markets first, then the soonest-ending others
    feeds: tuple[FeedRow, ...]
    notices: tuple[Notice, ...]  # newest last
    recent_fills: tuple[FillRow, ...]  # newest last
    pnl_history: tuple[PnlPoint, ...]  # oldest first
    counts: dict[str, int]  # event-log kinds counted by the watch (restarts, corrections, errors, ...)
    markets_total: int = 0  # markets the run follows (``markets`` may show fewer)
    markets_busy: int = 0  # of which with inventory, open orders or fills

    @property
    def pnl(self) -> int:
        return self.realised + self.unrealised


CHART_POINTS = 300  # PnL points a chart is sent: more would not show on a screen, and cost every second


def thinned(points: tuple[PnlPoint, ...], most: int = CHART_POINTS) -> tuple[PnlPoint, ...]:
    """At most ``most`` points, evenly spread over the whole history, the first and the last kept."""
    if len(points) <= most:
        return points
    step = (len(points) - 1) / (most - 1)  # float-ok: picking indexes, not money
    return tuple(points[round(i * step)] for i in range(most))


def _money(value: int | None) -> str | None:
    return None if value is None else format_micro(value)


def as_json(snap: Snapshot) -> dict[str, Any]:
    """The snapshot for the dashboard's JSON and server-sent events: every amount as a decimal
    string (the micro-units' exact value; never a float), times as Unix milliseconds."""

    def ms(ns: int | None) -> int | None:
        return None if ns is None else ns // 1_000_000

    return {
        "mode": snap.mode, "started_ms": ms(snap.started_wall_ns), "now_ms": ms(snap.wall_ns),
        "cash": _money(snap.cash), "reserved": _money(snap.reserved), "realised": _money(snap.realised),
        "unrealised": _money(snap.unrealised), "pnl": _money(snap.pnl), "fees": _money(snap.fees),
        "start_cash": _money(snap.start_cash), "fills": snap.fills, "maker_fills": snap.maker_fills,
        "taker_fills": snap.taker_fills, "orders_by_state": dict(snap.orders_by_state),
        "intents_by_strategy": dict(snap.intents_by_strategy), "rejections": dict(snap.rejections),
        "paused": snap.paused, "halted": snap.halted, "gate_open": snap.gate_open, "tripped": list(snap.tripped),
        "markets_total": snap.markets_total, "markets_busy": snap.markets_busy,
        "markets": [{
            "market": m.market, "slug": m.slug, "label": m.label, "question": m.question,
            "end_ms": ms(m.end_wall_ns), "realised": _money(m.realised), "unrealised": _money(m.unrealised),
            "pnl": _money(m.pnl), "fills": m.fills, "resolved": m.resolved,
            "tokens": [{
                "token": t.token, "outcome": t.outcome, "best_bid": _money(t.best_bid), "best_ask": _money(t.best_ask),
                "book": t.book_state, "position": _money(t.position), "cost": _money(t.cost), "mark": _money(t.mark),
                "quotes": [{"order_id": q.order_id, "side": q.side, "price": _money(q.price), "size": _money(q.size),
                            "filled": _money(q.filled), "status": q.status, "strategy": q.strategy, "age_s": q.age_s}
                           for q in t.quotes],
            } for t in m.tokens],
        } for m in snap.markets],
        "feeds": [{"name": f.name, "kind": f.kind, "up": f.up, "since_ms": ms(f.since_wall_ns), "reason": f.reason,
                   "sessions": f.sessions, "assets": f.assets} for f in snap.feeds],
        "notices": [{"at_ms": ms(n.wall_ns), "level": n.level, "kind": n.kind, "text": n.text} for n in snap.notices],
        "recent_fills": [{"at_ms": ms(f.wall_ns), "fill_id": f.fill_id, "market": f.market, "label": f.label,
                          "outcome": f.outcome, "side": f.side, "price": _money(f.price), "size": _money(f.size),
                          "fee": _money(f.fee), "liquidity": f.liquidity} for f in snap.recent_fills],
        "pnl_history": [{"at_ms": ms(p.wall_ns), "realised": _money(p.realised), "unrealised": _money(p.unrealised),
                         "pnl": _money(p.total), "fees": _money(p.fees)} for p in thinned(snap.pnl_history)],
        "counts": dict(snap.counts),
    }
