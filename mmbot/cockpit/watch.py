"""The cockpit's memory of a run, kept from the event log's rows as they are recorded
(``EventLog.observe``): the feed and user-channel states, the last warnings, the recent fills,
PnL over time, counts by kind, rejections by reason, intents by strategy and each market's cash
flows. Sans-IO and bounded: a fixed number of notices, fills and PnL points, one entry per
connection, market and reason. It never writes anything back."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, Callable

import attrs

from mmbot.cockpit.snapshot import FeedRow, FillRow, Notice, PnlPoint
from mmbot.model import ONE, format_micro

Describe = Callable[[str], tuple[str, str, str]]  # token -> (market, label, outcome name)

# Rows told as a notice, with their level; the text is made from the payload (``notice_text``).
NOTICE_LEVELS = {
    "feed_down": "warning", "feed_up": "info", "feed_gap": "warning", "user_gap": "warning",
    "user_catch_up": "info", "restart": "warning", "breaker_trip": "error", "kill_switch": "error",
    "trading_paused": "warning", "trading_resumed": "info", "operator_paused": "warning",
    "operator_resumed": "info", "operator_cancel_all": "warning", "reject": "warning", "error": "error",
    "correction": "warning", "outcome_unknown": "warning", "frame_malformed": "warning",
    "chain_failed": "warning", "chain_unsettled": "error", "merge_failed": "warning", "redeem_failed": "warning",
    "daily_loss_flatten": "error", "flatten_left": "warning", "resolution": "info", "market_selected": "info",
    "market_retired": "info", "cancel_escalated": "warning", "run_failed": "error", "book_mismatch": "warning",
}
COUNTED = frozenset(NOTICE_LEVELS) | {"fill", "intent", "submit", "cancel", "merge", "redeem", "late_fill",
                                      "pnl", "risk_verdict", "unknown_outcome"}


def notice_text(kind: str, p: dict[str, Any]) -> str:
    """The line a person reads for a row of this kind."""
    get = p.get
    if kind in ("feed_down", "feed_up"):
        name = str(get("connection", "?"))
        what = "user channel" if name == "user" else f"market feed {name}"
        if kind == "feed_down":
            return f"{what} down: {get('reason', '?')}"
        gap = get("gap_ms")
        return f"{what} up" + ("" if name == "user" else f" ({get('assets', 0)} assets)") + (
            f" after {gap / 1000:.1f} s down" if gap is not None else "")  # float-ok: seconds for a person
    if kind == "feed_gap":
        tokens = get("tokens", 0)  # a count in feed_gap rows
        return f"{tokens if isinstance(tokens, int) else len(tokens)} books stale: {get('reason', '?')}"
    if kind in ("user_gap", "trading_paused", "trading_resumed", "operator_paused", "operator_resumed"):
        what = {"user_gap": "user channel down", "trading_paused": "trading gate closed",
                "trading_resumed": "trading gate open", "operator_paused": "paused by the operator",
                "operator_resumed": "resumed by the operator"}[kind]
        return f"{what}: {get('reason', '')}".rstrip(": ")
    if kind == "user_catch_up":
        return f"our trades fetched over REST: {get('trades', 0)}, {get('new_legs', 0)} not seen on the user channel"
    if kind == "restart":
        return f"service {get('service', '?')} restarted (attempt {get('attempt', '?')}): {get('error', '?')}"
    if kind == "breaker_trip":
        return f"breaker tripped on {get('service', '?')} after {get('crashes', '?')} crashes: {get('error', '?')}"
    if kind == "reject":
        return f"order {get('order_id', '?')} rejected: {get('reason', '?')}"
    if kind == "error":
        return f"error in {get('where', '?')}: {get('error', '?')}"
    if kind == "correction":
        return f"correction of {get('order_id') or get('fill_id') or '?'}: {get('reason', '?')}"
    if kind == "outcome_unknown":
        return f"order {get('order_id', '?')} outcome unknown: {get('detail', '?')}"
    if kind == "resolution":
        return "market resolved"
    if kind in ("market_selected", "market_retired"):
        return f"{kind.replace('_', ' ')}: {get('slug') or '?'} ({get('reason', '?')})"
    if kind == "daily_loss_flatten":
        return (f"daily loss {format_micro(int(get('daily_pnl', 0)))} reached the limit of"
                f" {format_micro(int(get('limit', 0)))}: cancelling, selling back, then stopping")
    if kind == "flatten_left":
        return f"flatten left {len(get('tokens') or ())} token(s) held (no bid, under the minimum size or unfilled)"
    # the others: their words only (amounts in a payload are micro-units, not for a person as they are)
    details = ", ".join(f"{k} {v}" for k, v in p.items() if isinstance(v, str) and v)
    return f"{kind.replace('_', ' ')}" + (f": {details}" if details else "")


@attrs.define
class _Feed:
    kind: str
    up: bool = False
    since_wall_ns: int = 0
    since_ns: int = 0  # on the run's clock, for durations
    reason: str = "not connected yet"
    sessions: int = 0
    assets: int = 0


class Watch:
    """Feed it every row (``on_row``); read its figures at any time."""

    def __init__(self, *, describe: Describe, notices: int = 50, fills: int = 50, pnl_points: int = 2_000) -> None:
        self._describe = describe
        self.notices: deque[Notice] = deque(maxlen=notices)
        self.recent_fills: deque[FillRow] = deque(maxlen=fills)
        self.pnl_history: deque[PnlPoint] = deque(maxlen=pnl_points)
        self.counts: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.intents: Counter[str] = Counter()
        self.liquidity: Counter[str] = Counter()  # fills by maker / taker
        self.flows: Counter[str] = Counter()  # market -> cash in minus cash out (fees included)
        self.market_fills: Counter[str] = Counter()
        self.feeds: dict[str, _Feed] = {}
        self.started_wall_ns = self.started_ns = 0
        self.last_wall_ns = self.last_ns = 0
        self.start_cash: int | None = None

    # ------------------------------------------------------------------ the rows

    def on_row(self, row: tuple[int, int, int, str, str, str, str, str], payload: dict[str, Any] | None) -> None:
        _, ts_ns, wall_ns, kind, _, market, token, _ = row
        p = payload or {}
        self.last_wall_ns, self.last_ns = wall_ns, ts_ns
        if not self.started_wall_ns:
            self.started_wall_ns, self.started_ns = wall_ns, ts_ns
        if kind in COUNTED:
            self.counts[kind] += 1
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, wall_ns, market, token, p)
        level = NOTICE_LEVELS.get(kind)
        if level is not None and not (kind == "feed_up" and p.get("gap_ms") is None and p.get("session", 1) <= 1):
            self.notices.append(Notice(wall_ns=wall_ns, level=level, kind=kind, text=notice_text(kind, p)))

    def _feed(self, p: dict[str, Any]) -> _Feed:
        """The connection a feed_up / feed_down row names: a market-channel shard, or the user channel."""
        name = str(p.get("connection", "market"))
        return self.feeds.setdefault(name, _Feed(kind="user" if name == "user" else "market"))

    def _on_feed_up(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        feed = self._feed(p)
        feed.up, feed.since_wall_ns, feed.since_ns, feed.reason = True, wall_ns, self.last_ns, ""
        feed.sessions += 1
        feed.assets = int(p.get("assets", feed.assets) or 0)

    def _on_feed_down(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        feed = self._feed(p)
        if feed.up or not feed.sessions:
            feed.since_wall_ns, feed.since_ns = wall_ns, self.last_ns
        feed.up, feed.reason = False, str(p.get("reason", "down"))

    def _on_user(self, wall_ns: int, market: str, token: str, p: dict[str, Any], *, up: bool) -> None:
        feed = self.feeds.setdefault("user", _Feed(kind="user"))
        if feed.up != up or not feed.since_wall_ns:
            feed.since_wall_ns, feed.since_ns = wall_ns, self.last_ns
        if up and not feed.up:
            feed.sessions += 1
        feed.up, feed.reason = up, "" if up else str(p.get("reason", "down"))

    def _on_venue_stats(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        connected = p.get("user_connected")
        if isinstance(connected, bool):
            feed = self.feeds.get("user")
            if feed is None or feed.up != connected:
                self._on_user(wall_ns, market, token, {"reason": "not connected"}, up=connected)

    def _on_fill(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        price, size, fee = int(p.get("price", 0)), int(p.get("size", 0)), int(p.get("fee", 0))
        side = str(p.get("side", ""))
        gross = price * size // ONE
        self.flows[market] += (gross if side == "SELL" else -gross) - fee
        self.market_fills[market] += 1
        liquidity = str(p.get("liquidity", "")).lower()
        self.liquidity[liquidity or "unknown"] += 1
        market_id, label, outcome = self._describe(token) if token else (market, market[:12], "")
        self.recent_fills.append(FillRow(
            wall_ns=wall_ns, fill_id=str(p.get("fill_id", "")), market=market or market_id, label=label,
            outcome=outcome, side=side, price=price, size=size, fee=fee, liquidity=liquidity))

    def _on_correction(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        price, size, fee = int(p.get("price", 0)), int(p.get("size_delta", 0)), int(p.get("fee_delta", 0))
        gross = price * size // ONE
        self.flows[market] += (gross if p.get("side") == "SELL" else -gross) - fee

    def _on_merge(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        self.flows[market] += int(p.get("size", 0))  # 1 pUSD per complete set

    def _on_payout(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        """A redemption, or a resolution the venue paid out itself (paper)."""
        self.flows[market] += int(p.get("payout", 0) or 0)

    def _on_adopted(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        self.flows[market] -= int(p.get("cost", 0))  # taken in at this cost: the market's PnL starts there

    def _on_pnl(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        if self.start_cash is None:
            self.start_cash = int(p.get("cash", 0))
        self.pnl_history.append(PnlPoint(wall_ns=wall_ns, realised=int(p.get("realised", 0)),
                                         unrealised=int(p.get("unrealised", 0)), fees=int(p.get("fees", 0))))

    def _on_run_start(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        if "cash" in p:
            self.start_cash = int(p["cash"])

    def _on_verdict(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        if p.get("accepted") is False:
            self.rejections[str(p.get("reason", "?"))] += 1

    def _on_reject(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        self.rejections[f"venue: {p.get('reason', '?')}"] += 1

    def _on_intent(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        self.intents[str(p.get("strategy", "?"))] += 1

    def _on_pruned(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> None:
        """Markets the engine forgot (over a retention horizon ago, nothing of ours left): their
        flows go too, so a run rolling over Up/Down windows for months keeps a bounded watch."""
        for gone in p.get("markets") or ():
            self.flows.pop(gone, None)
            self.market_fills.pop(gone, None)

    _handlers: dict[str, Callable[..., None]] = {
        "feed_up": _on_feed_up,
        "feed_down": _on_feed_down,
        "user_gap": lambda self, w, m, t, p: self._on_user(w, m, t, p, up=False),
        "venue_stats": _on_venue_stats,
        "fill": _on_fill,
        "correction": _on_correction,
        "merge": _on_merge,
        "redeem": _on_payout,
        "resolution": _on_payout,
        "position_adopted": _on_adopted,
        "pnl": _on_pnl,
        "run_start": _on_run_start,
        "risk_verdict": _on_verdict,
        "reject": _on_reject,
        "intent": _on_intent,
        "pruned": _on_pruned,
    }

    # ------------------------------------------------------------------ figures

    def feed_rows(self) -> tuple[FeedRow, ...]:
        return tuple(FeedRow(name=name, kind=f.kind, up=f.up, since_wall_ns=f.since_wall_ns, reason=f.reason,
                             sessions=f.sessions, assets=f.assets) for name, f in sorted(self.feeds.items()))

    def down_for_ns(self, now_ns: int) -> dict[str, int]:
        """How long, on the run's clock, each connection that is down now has been down (one that
        never connected: since the run started)."""
        return {name: now_ns - (f.since_ns or self.started_ns) for name, f in self.feeds.items() if not f.up}

    def add_expected(self, name: str, kind: str) -> None:
        """A connection the run expects (the user channel of signed trading): shown, and counted as
        down, before its first row."""
        self.feeds.setdefault(name, _Feed(kind=kind))
