"""What is worth waking the operator for (issue 13, item 5), sans-IO: rules over the event log's
rows as they are recorded and over the feeds' states (``Watch.down_for_ns``) give ``Alert``
values; a ``RateLimiter`` lets the same kind through at most once per ``[alerts] min_interval_s``
and all kinds together at most ``max_per_hour`` times in any hour. An alert held back is not
lost: it is counted, and the next one of its kind says "and N more" — or, once the interval has
passed with nothing new, the latest held one goes out then, with the count (``Alerts.tick``).

Times for the limits are the run's clock (``ts_ns`` of a row, ``now_ns`` of a tick); ``at_wall_ns``
is only what the operator reads. ``webhook.py`` turns an ``Alert`` into a request body and sends it.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import attrs

from mmbot.cockpit.watch import Describe
from mmbot.model import format_micro

_NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * _NS_PER_S
HEARTBEAT_FAILURES = 3  # heartbeats failing this many times in a row are told


@attrs.frozen
class Alert:
    kind: str  # the rule: breaker_trip, feed_down, feed_up, user_down, user_up, daily_loss, correction, ...
    level: str  # info / warning / error
    title: str
    text: str
    fields: tuple[tuple[str, str], ...] = ()  # (name, value) pairs, in order; values as a person reads them
    at_wall_ns: int = 0
    more: int = 0  # alerts of this kind held back by the rate limit since the last one sent

    def with_more(self, more: int) -> Alert:
        return attrs.evolve(self, more=more)

    @property
    def full_text(self) -> str:
        return self.text + (f" (and {self.more} more since the last alert of this kind)" if self.more else "")


@attrs.define
class RateLimiter:
    """The same kind at most once per ``min_interval_ns``; all kinds at most ``max_per_hour`` in
    any 3600 s window. ``admit`` says whether one goes out now; what it refuses is counted per
    kind, and that count goes with the next one of the kind let through."""

    min_interval_ns: int
    max_per_hour: int
    last_ns: dict[str, int] = attrs.field(factory=dict)  # kind -> when one was last let through
    held: dict[str, int] = attrs.field(factory=dict)  # kind -> how many held back since then
    sent: deque[int] = attrs.field(factory=deque)  # when each of the last hour's went out

    def allows(self, kind: str, now_ns: int) -> bool:
        while self.sent and self.sent[0] <= now_ns - HOUR_NS:
            self.sent.popleft()
        last = self.last_ns.get(kind)
        return (last is None or now_ns - last >= self.min_interval_ns) and len(self.sent) < self.max_per_hour

    def admit(self, kind: str, now_ns: int) -> int | None:
        """``None``: held back (counted). Else it goes out now, and the number held back before it."""
        if not self.allows(kind, now_ns):
            self.held[kind] = self.held.get(kind, 0) + 1
            return None
        self.last_ns[kind] = now_ns
        self.sent.append(now_ns)
        return self.held.pop(kind, 0)


class Alerts:
    """Feed it every row (``on_row``) and a tick every second or so (``tick``); each returns the
    alerts to send now, rate limit applied."""

    def __init__(self, *, describe: Describe, label_market: Callable[[str], str] = lambda market: market[:12],
                 feed_down_after_s: int = 30, min_interval_s: int = 60, max_per_hour: int = 30) -> None:
        self._describe = describe
        self._label_market = label_market
        self._down_after_ns = feed_down_after_s * _NS_PER_S
        self.limiter = RateLimiter(min_interval_ns=min_interval_s * _NS_PER_S, max_per_hour=max_per_hour)
        self._latest_held: dict[str, Alert] = {}  # kind -> the newest alert held back
        self._alerted_down: dict[str, int] = {}  # connection -> how long it was down when told (ns)
        self._daily_loss_day: int | None = None  # the UTC day whose daily-loss limit was told last
        self._heartbeats_told = False
        self.raised = 0  # alerts the rules made, held back ones included

    # ------------------------------------------------------------------ the rate limit

    def _admit(self, alerts: list[Alert], now_ns: int) -> list[Alert]:
        out = []
        for alert in alerts:
            self.raised += 1
            more = self.limiter.admit(alert.kind, now_ns)
            if more is None:
                self._latest_held[alert.kind] = alert.with_more(0)
            else:
                self._latest_held.pop(alert.kind, None)
                out.append(alert.with_more(more))
        return out

    def _release_held(self, now_ns: int) -> list[Alert]:
        """The newest held-back alert of each kind whose interval has passed, with the count of the
        others; the rules made nothing newer of the kind meanwhile."""
        out = []
        for kind in sorted(self._latest_held):
            if self.limiter.allows(kind, now_ns):
                alert = self._latest_held.pop(kind)
                more = self.limiter.admit(kind, now_ns)
                assert more is not None and more >= 1  # allows() said yes; this alert is among the held
                out.append(alert.with_more(more - 1))
        return out

    # ------------------------------------------------------------------ rows

    def on_row(self, row: tuple[int, int, int, str, str, str, str, str], payload: dict[str, Any] | None) -> list[Alert]:
        _, ts_ns, wall_ns, kind, cid, market, token, _ = row
        rule = _ROW_RULES.get(kind)
        if rule is None:
            return []
        made = rule(self, payload or {}, wall_ns, cid, market, token)
        return self._admit(made, ts_ns) if made else []

    def _where(self, market: str, token: str) -> tuple[tuple[str, str], ...]:
        if token:
            _, label, outcome = self._describe(token)
            return (("market", label), ("outcome", outcome)) if outcome else (("market", label),)
        if market:
            return (("market", self._label_market(market)),)
        return ()

    def _breaker(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        service = str(p.get("service", "?"))
        return [Alert(kind="breaker_trip", level="error", title=f"Breaker tripped: {service}",
                      text=f"{service} crashed {p.get('crashes', '?')} times in a row and is stopped; "
                           f"quoting stopped and the open orders are being cancelled. Last error: {p.get('error', '?')}",
                      fields=(("service", service), ("crashes", str(p.get("crashes", "?")))), at_wall_ns=wall_ns)]

    def _refused(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        if p.get("accepted") is not False or p.get("reason") != "max_daily_loss":
            return []
        return self._daily_loss(p, wall_ns, market, token, flatten=False)

    def _flatten(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        return self._daily_loss(p, wall_ns, market, token, flatten=True)

    def _daily_loss(self, p: dict[str, Any], wall_ns: int, market: str, token: str, *, flatten: bool) -> list[Alert]:
        """Once a UTC day: the first refusal for the daily loss limit, or the kill switch's flatten."""
        day = wall_ns // (86_400 * _NS_PER_S)
        if day == self._daily_loss_day:  # days only move forward: the last one told is all to keep
            return []
        self._daily_loss_day = day
        fields: tuple[tuple[str, str], ...] = ()
        if flatten:
            fields = tuple((name, format_micro(int(p[key]))) for name, key in (("daily PnL", "daily_pnl"),
                                                                              ("limit", "limit"))
                           if isinstance(p.get(key), int))
            text = "The daily loss limit was reached: the run cancels its orders, sells its inventory back and stops."
        else:
            text = ("The daily loss limit was reached: risk refuses new orders "
                    f"(first refused: {p.get('strategy', '?')}).")
        return [Alert(kind="daily_loss", level="error", title="Daily loss limit reached", text=text,
                      fields=fields + self._where(market, token), at_wall_ns=wall_ns)]

    def _correction(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        fields = [("order", str(p.get("order_id") or "?")), ("reason", str(p.get("reason", "?")))]
        for name, key in (("size change", "size_delta"), ("fee change", "fee_delta")):
            if isinstance(p.get(key), int) and not isinstance(p.get(key), bool):
                fields.append((name, format_micro(p[key])))
        return [Alert(kind="correction", level="warning", title="Reconciliation corrected a fill",
                      text=f"The venue's record of order {p.get('order_id') or p.get('fill_id') or '?'} differed "
                           f"from ours ({p.get('reason', '?')}); the ledger follows the venue.",
                      fields=(*self._where(market, token), *fields), at_wall_ns=wall_ns)]

    def _unknown(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        return [Alert(kind="outcome_unknown", level="warning", title="Order outcome unknown",
                      text=f"Order {p.get('order_id', '?')} was sent and no answer came ({p.get('detail', '?')}); "
                           "its capital stays reserved until reconciliation settles it.",
                      fields=(*self._where(market, token), ("order", str(p.get("order_id", "?")))), at_wall_ns=wall_ns)]

    def _error(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        if cid != "heartbeat":
            return []
        failing = p.get("failing_in_a_row")
        if not isinstance(failing, int) or failing < HEARTBEAT_FAILURES:
            self._heartbeats_told = False  # a new streak (the count restarts after a success)
            return []
        if self._heartbeats_told:
            return []
        self._heartbeats_told = True
        return [Alert(kind="heartbeat_failing", level="error", title="Heartbeats failing",
                      text=f"{failing} heartbeats in a row failed; if the venue sees none for its timeout it cancels "
                           f"every open order. Last error: {p.get('error', '?')}",
                      fields=(("failing in a row", str(failing)),), at_wall_ns=wall_ns)]

    def _run_failed(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        return [Alert(kind="run_failed", level="error", title="Run failed",
                      text=f"The run stopped: {p.get('reason', '?')}", at_wall_ns=wall_ns)]

    def _unsettled(self, p: dict[str, Any], wall_ns: int, cid: str, market: str, token: str) -> list[Alert]:
        return [Alert(kind="chain_unsettled", level="error", title="On-chain actions unsettled at exit",
                      text=f"{p.get('pending', '?')} merges or redemptions were still unanswered when the run stopped; "
                           "the next run reads the wallet's balances.",
                      fields=(("pending", str(p.get("pending", "?"))),), at_wall_ns=wall_ns)]

    # ------------------------------------------------------------------ the feeds, every tick

    def tick(self, now_ns: int, wall_ns: int, down_for: dict[str, int]) -> list[Alert]:
        """``down_for``: each connection down now and for how long (``Watch.down_for_ns``; the user
        channel is named "user"). A connection down past ``feed_down_after_s`` is told once per
        outage; its coming back is told if its going down was."""
        made: list[Alert] = []
        gone = sorted(n for n, ns in down_for.items() if ns >= self._down_after_ns and n not in self._alerted_down)
        back = sorted(n for n in self._alerted_down if n not in down_for)
        for name in gone:
            self._alerted_down[name] = down_for[name]
        markets_gone = [n for n in gone if n != "user"]
        if markets_gone:
            longest = max(down_for[n] for n in markets_gone) // _NS_PER_S
            made.append(Alert(kind="feed_down", level="error", title="Market feed down",
                              text=f"Market channel {', '.join(markets_gone)} down for {longest} s: its books are "
                                   "stale and their quotes are withdrawn until it is back.",
                              fields=(("connections", ", ".join(markets_gone)), ("down for", f"{longest} s")),
                              at_wall_ns=wall_ns))
        if "user" in gone:
            made.append(Alert(kind="user_down", level="error", title="User channel down",
                              text=f"The user channel has been down for {down_for['user'] // _NS_PER_S} s: the "
                                   "trading gate is closed and no order goes out until it is back and caught up.",
                              fields=(("down for", f"{down_for['user'] // _NS_PER_S} s"),), at_wall_ns=wall_ns))
        for name in back:
            del self._alerted_down[name]
        markets_back = [n for n in back if n != "user"]
        if markets_back:
            made.append(Alert(kind="feed_up", level="info", title="Market feed back up",
                              text=f"Market channel {', '.join(markets_back)} is connected again.",
                              fields=(("connections", ", ".join(markets_back)),), at_wall_ns=wall_ns))
        if "user" in back:
            made.append(Alert(kind="user_up", level="info", title="User channel back up",
                              text="The user channel is connected again.", at_wall_ns=wall_ns))
        return self._admit(made, now_ns) + self._release_held(now_ns)

    @property
    def held(self) -> int:
        """Alerts held back by the rate limit and not told yet in a later one."""
        return sum(self.limiter.held.values())


_ROW_RULES: dict[str, Callable[..., list[Alert]]] = {
    "breaker_trip": Alerts._breaker,
    "risk_verdict": Alerts._refused,
    "daily_loss_flatten": Alerts._flatten,
    "correction": Alerts._correction,
    "outcome_unknown": Alerts._unknown,
    "error": Alerts._error,
    "run_failed": Alerts._run_failed,
    "chain_unsettled": Alerts._unsettled,
}
