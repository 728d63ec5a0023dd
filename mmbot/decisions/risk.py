"""Pre-trade risk: one object shared by every strategy, consulted for every new order (DESIGN §3).

``Risk.check`` looks at an order intent and a read-only view of the executor's state and
returns a ``Verdict`` with a reason code. Rules run cheapest and most fundamental first and the
first failing rule decides:

==========================  ==================================================================
reason                      an order is rejected when
==========================  ==================================================================
``kill_switch``             the kill switch is engaged (every order, sells included)
``daily_loss_flatten``      the daily-loss flatten began (``on_daily_loss = "flatten"``,
                            ``flatten.py``): every order but the flatten's own sells
``venue_not_ready``         the venue session closed the trading gate: the user channel is down
                            or not caught up, so a fill could go unseen (every order)
``unknown_market``          the market is not known
``unknown_token``           the token is not one of the market's two
``book_empty``              the token's book has no snapshot yet (or no book state at all)
``book_stale``              the token's book is STALE
``book_crossed``            the token's book is CROSSED
``market_ending``           ``now_ns >= end_ns - end_buffer_s``: the last accepted instant is one
                            nanosecond before the buffer starts
``invalid_tick``            the price is off the tick grid or outside [tick, 1 - tick]
``below_min_size``          ``size < min_size`` (exactly the minimum is accepted)
``max_order_notional``      ``price × size`` (rounded up) ``> max_order_notional``
``min_edge``                ``pair_cost`` is given and ``1 - pair_cost < min_edge``
``max_open_orders``         the order would make open orders exceed the limit (with
                            ``max_open_orders - 1`` open, one more is accepted)
``sell_exceeds_position``   a SELL larger than the position held (the venue cannot go short);
                            a SELL that passes this has no further rule to pass
``max_daily_loss``          a BUY while ``daily_pnl <= -max_daily_loss`` (a loss of exactly the
                            limit already blocks; one micro-unit less does not)
``max_position_token``      a BUY with position + open buys + size ``>`` the limit (a position may
                            reach the limit, not pass it)
``max_position_market``     the same, summed over both tokens of the market
``max_gross_exposure``      a BUY with gross exposure + its notional ``>`` the limit
==========================  ==================================================================

A SELL of no more than the position only reduces risk, so the daily-loss, position and
exposure rules pass it. Cancels and merges are never checked: they only reduce risk.
Exposure counts order notional without fees.

``on_daily_loss = "flatten"`` changes nothing here but the ``daily_loss_flatten`` rule: the
executor's ``Flatten`` decides when the limit is reached and calls ``begin_flatten``.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol, Sequence

import attrs

from mmbot.config import RiskConfig
from mmbot.model import ONE, BookState, MarketInfo, PlaceOrder, Side, notional

_NS_PER_S = 1_000_000_000
FLATTEN_STRATEGY = "flatten"  # the strategy name of the daily-loss flatten's sells (flatten.py)

_BOOK_REASONS = {
    BookState.EMPTY: "book_empty",
    BookState.STALE: "book_stale",
    BookState.CROSSED: "book_crossed",
}


class RiskView(Protocol):
    """What the executor shows risk; risk never mutates it."""

    def position(self, token: str) -> int: ...

    def open_orders(self) -> int: ...

    def open_buy_shares(self, token: str) -> int:
        """Remaining size of open buys on the token."""

    def gross_exposure(self) -> int:
        """pUSD at cost: Σ cost basis of positions + open buy notional."""

    def daily_pnl(self) -> int:
        """Realised + marked, since the day started (negative = loss)."""

    def book_state(self, token: str) -> BookState | None: ...

    def market(self, market: str) -> MarketInfo | None: ...


@attrs.frozen
class Verdict:
    accepted: bool
    reason: str  # "ok" when accepted


ACCEPTED = Verdict(accepted=True, reason="ok")


class Risk:
    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self.kill_switch = False
        self.kill_reason = ""
        self.rejections: Counter[str] = Counter()  # by reason code, for statistics
        self.gate_closed = ""  # why the venue session closed the trading gate ("" while open)
        self.flattening = False  # the daily-loss flatten began: only its own sells pass, for good

    def engage(self, reason: str) -> None:
        self.kill_switch = True
        self.kill_reason = reason

    def release(self) -> None:
        self.kill_switch = False
        self.kill_reason = ""

    def begin_flatten(self) -> None:
        self.flattening = True

    def close_gate(self, reason: str) -> None:
        self.gate_closed = reason or "closed"

    def open_gate(self) -> None:
        self.gate_closed = ""

    def check(self, intent: PlaceOrder, view: RiskView, now_ns: int) -> Verdict:
        reason = self._first_failure(intent, view, now_ns)
        if reason is None:
            return ACCEPTED
        self.rejections[reason] += 1
        return Verdict(accepted=False, reason=reason)

    def _first_failure(self, intent: PlaceOrder, view: RiskView, now_ns: int) -> str | None:
        if self.kill_switch:
            return "kill_switch"
        if self.flattening and (intent.strategy != FLATTEN_STRATEGY or intent.side is not Side.SELL):
            return "daily_loss_flatten"
        if self.gate_closed:
            return "venue_not_ready"
        info = view.market(intent.market)
        if info is None:
            return "unknown_market"
        if intent.token not in info.tokens:
            return "unknown_token"
        state = view.book_state(intent.token)
        if state is not BookState.SYNCED:
            return "book_empty" if state is None else _BOOK_REASONS[state]
        if info.end_ns is not None and now_ns >= info.end_ns - self.config.end_buffer_s * _NS_PER_S:
            return "market_ending"
        return self._order_failure(intent, info) or self._account_failure(intent, info, view)

    def _order_failure(self, intent: PlaceOrder, info: MarketInfo) -> str | None:
        """Rules that need only the order and its market."""
        cfg = self.config
        if intent.price % info.tick or not info.tick <= intent.price <= ONE - info.tick:
            return "invalid_tick"
        if intent.size < info.min_size:
            return "below_min_size"
        if notional(intent.price, intent.size) > cfg.max_order_notional:  # cost rounds up, as paid
            return "max_order_notional"
        if intent.pair_cost is not None and ONE - intent.pair_cost < cfg.min_edge:
            return "min_edge"
        return None

    def _account_failure(self, intent: PlaceOrder, info: MarketInfo, view: RiskView) -> str | None:
        """Rules that weigh the order against everything already held or working."""
        cfg = self.config
        if view.open_orders() + 1 > cfg.max_open_orders:
            return "max_open_orders"
        if intent.side is Side.SELL:
            if intent.size > view.position(intent.token):
                return "sell_exceeds_position"
            return None
        if view.daily_pnl() <= -cfg.max_daily_loss:
            return "max_daily_loss"
        token_room, market_room = position_room(view, info.tokens, intent.token, cfg.max_position_per_token,
                                                cfg.max_position_per_market)
        if intent.size > token_room:
            return "max_position_token"
        if intent.size > market_room:
            return "max_position_market"
        if view.gross_exposure() + notional(intent.price, intent.size) > cfg.max_gross_exposure:
            return "max_gross_exposure"
        return None


def position_room(view: RiskView, tokens: Sequence[str], token: str, per_token: int, per_market: int) -> tuple[int, int]:
    """The shares a BUY of ``token`` may still bring in under ``max_position_per_token`` and under
    ``max_position_per_market`` (``tokens``: its market's), counting held shares and open buys."""
    position, open_buys = view.position, view.open_buy_shares
    mine = position(token) + open_buys(token)  # shares held plus what open buys may still bring in
    total = 0
    for t in tokens:
        total += mine if t == token else position(t) + open_buys(t)
    return per_token - mine, per_market - total
