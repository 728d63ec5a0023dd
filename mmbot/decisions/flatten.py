"""The daily-loss kill switch that flattens (``[risk] on_daily_loss = "flatten"``).

With the default ``"halt"`` risk only refuses new BUYs once the day's loss reaches
``max_daily_loss`` (``risk.py``, reason ``max_daily_loss``). With ``"flatten"`` the executor,
the single writer, checks after every message it handles whether the day's PnL (realised plus
marked, ``StateView.daily_pnl``) has reached ``-max_daily_loss``; the first time it has:

1. **start** — a ``daily_loss_flatten`` row (daily PnL, limit, positions, open orders); risk
   refuses from now on every order but the flatten's own (reason ``daily_loss_flatten``), so no
   BUY ever goes out again whatever a strategy still asks; every open order is cancelled and
   quoting is halted (the engine connects ``halt`` to ``DecisionLoop.halt``: no strategy acts,
   no capital sweep).
2. **cancelling** — the sells wait until every cancel is answered (no order open), so that a
   resting buy cannot fill while the inventory is sold and the sells do not meet
   ``max_open_orders`` taken by orders on their way out; or until the phase's deadline.
3. **selling** — per token held, in the ledger's (sorted) order: SELL orders, FAK (taker) at the
   book's best bid, each of at most the shares free to sell (held, less what an in-flight merge
   or redemption holds) rounded down to 0.01 share, at least the market's minimum size, at most
   ``max_order_notional`` at that price — several orders when one would exceed it — with strategy
   name ``flatten``, through the ordinary path (risk's verdict, the reservation, the gateway). When
   every flatten order has ended, another round is tried at the then best bid, up to
   ``ROUNDS`` in all, as long as the last one sold something.
4. **done** — what is still held is recorded (``flatten_left``, per token: shares and why — no
   book, no bid, under the minimum size, reserved on chain, or not filled), then
   ``flatten_done``, and the stop of the run is requested exactly once (a ``stop_requested`` row;
   the engine connects ``stop`` to the run's stop event: it shuts down as on Ctrl-C).

Each phase has a deadline (``PHASE_S``, set by the engine on its scheduler through ``call_at``):
an order whose outcome stays unknown must not keep the run from stopping. At the deadline a
cancelling flatten sells anyway and a selling one is done.

Complete sets are sold, not merged: a merge waits on the chain (minutes through a relayer) and
the stop would wait with it, while a sale at the bid is answered at once. What the sells give up
against a merge is the bid-sum's distance below 1 on the sets held.
"""

from __future__ import annotations

import enum
from typing import Callable

from mmbot.config import RiskConfig
from mmbot.decisions.book import Books
from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Orders
from mmbot.decisions.risk import FLATTEN_STRATEGY, Risk
from mmbot.decisions.view import StateView
from mmbot.model import ONE, SHARE_STEP, BookState, Ids, PlaceOrder, Side, TimeInForce
from mmbot.ports import Clock, EventSink

STRATEGY = FLATTEN_STRATEGY
ROUNDS = 3  # sell rounds at most (each at the best bid of its moment)
PHASE_S = 30  # how long the cancels, then the sells, are waited for
_NS_PER_S = 1_000_000_000


class Phase(enum.Enum):
    IDLE = "idle"
    CANCELLING = "cancelling"
    SELLING = "selling"
    DONE = "done"


class Flatten:
    def __init__(
        self,
        *,
        config: RiskConfig,
        risk: Risk,
        ledger: Ledger,
        orders: Orders,
        books: Books,
        markets: Markets,
        view: StateView,
        sink: EventSink,
        clock: Clock,
        ids: Ids,
        place: Callable[[PlaceOrder], None],
        cancel_all: Callable[[str, str], int],
    ) -> None:
        """``place``: the executor's ordinary intent path; ``cancel_all(cid, reason)``: its safe stop."""
        self._limit = config.max_daily_loss
        self._max_notional = config.max_order_notional
        self._risk = risk
        self._ledger = ledger
        self._orders = orders
        self._books = books
        self._markets = markets
        self._view = view
        self._sink = sink
        self._clock = clock
        self._ids = ids
        self._place = place
        self._cancel_all = cancel_all
        self.phase = Phase.IDLE
        self.rounds = 0
        self._order_ids: list[str] = []  # the flatten's orders, in the order sent
        self._held_before_round = 0
        self._deadline_ns: int | None = None
        self.stop_requested = ""  # why the stop was requested, once it was
        # Set by the composition root (``connect``); unconnected, as a bare executor in a test, none acts.
        self._halt: Callable[[str, str], None] = lambda cid, reason: None
        self._stop: Callable[[str], None] | None = None
        self._call_at: Callable[[int, Callable[[], None]], object] | None = None

    def connect(self, *, halt: Callable[[str, str], None], call_at: Callable[[int, Callable[[], None]], object],
                stop: Callable[[str], None] | None) -> None:
        """``halt(cid, reason)``: quoting stops (``DecisionLoop.halt``); ``call_at(t_ns, callback)``:
        a timer for the phases' deadlines; ``stop(reason)``: the run is asked to stop."""
        self._halt, self._call_at, self._stop = halt, call_at, stop

    @property
    def active(self) -> bool:
        return self.phase is not Phase.IDLE

    # ------------------------------------------------------------------ driven by the executor

    def after(self, cid: str) -> None:
        """After every message the executor handled: start at the limit, then move on."""
        if self.phase is Phase.IDLE:
            if self._view.daily_pnl() > -self._limit:
                return
            self._start(cid)
        if self.phase is Phase.CANCELLING and not self._orders.open_count():
            self._sell(cid)
        if self.phase is Phase.SELLING and not self._orders.open_orders(strategy=STRATEGY):
            if self._worth_another_round():
                self._sell(cid)
            else:
                self._finish(cid, "sold")

    @property
    def sold(self) -> int:
        """Shares sold by the flatten's orders, all tokens together."""
        return sum(order.filled for i in self._order_ids if (order := self._orders.get(i)) is not None)

    def expire(self, cid: str = "flatten-deadline") -> None:
        """The phase's deadline passed (a timer of the engine's): stop waiting."""
        if self._deadline_ns is None or self._clock.now_ns() < self._deadline_ns:
            return  # a deadline of an earlier phase
        if self.phase is Phase.CANCELLING:
            self._sink.record("flatten_timeout", cid, {"phase": "cancelling", "open_orders": self._orders.open_count()})
            self._sell(cid)
            if self.phase is Phase.SELLING and not self._orders.open_orders(strategy=STRATEGY):
                self._finish(cid, "sold")
        elif self.phase is Phase.SELLING:
            still = [o.order_id for o in self._orders.open_orders(strategy=STRATEGY)]
            self._sink.record("flatten_timeout", cid, {"phase": "selling", "open_orders": still})
            self._finish(cid, "deadline")

    # ------------------------------------------------------------------ the phases

    def _start(self, cid: str) -> None:
        self.phase = Phase.CANCELLING
        self._risk.begin_flatten()
        daily = self._view.daily_pnl()
        self._sink.record("daily_loss_flatten", cid, {
            "daily_pnl": daily, "limit": self._limit,
            "positions": {t: self._ledger.position(t) for t in self._ledger.tokens() if self._ledger.position(t)},
            "open_orders": self._orders.open_count(),
        })
        reason = "daily loss limit: flatten"
        self._cancel_all(cid, reason)
        self._halt(cid, reason)
        self._arm()

    def _sell(self, cid: str) -> None:
        """One round: a FAK SELL at the best bid for what each token holds free to sell."""
        if self.phase is not Phase.SELLING:
            self.phase = Phase.SELLING
            self._arm()
        self.rounds += 1
        self._held_before_round = self._held()
        known = {o.order_id for o in self._orders.open_orders(strategy=STRATEGY)}
        for token in self._ledger.tokens():
            for price, size in self._sells_for(token):
                info = self._markets.for_token(token)
                assert info is not None  # _sells_for found it
                self._place(PlaceOrder(
                    cid=self._ids.next("flatten"), cause=cid, strategy=STRATEGY, market=info.market, token=token,
                    side=Side.SELL, price=price, size=size, tif=TimeInForce.FAK,
                    reason=f"daily loss limit: flatten, round {self.rounds}",
                ))
        # an order placed is open (PENDING_SUBMIT) until the venue's answer comes back as input
        self._order_ids.extend(o.order_id for o in self._orders.open_orders(strategy=STRATEGY)
                               if o.order_id not in known)

    def _sells_for(self, token: str) -> list[tuple[int, int]]:
        """(price, size) of the sells of one token this round; none where it cannot be sold."""
        info = self._markets.for_token(token)
        book = self._books.get(token)
        if info is None or book is None or book.state is not BookState.SYNCED or book.best_bid is None:
            return []
        price = book.best_bid
        left = self._ledger.available_shares(token)
        left -= left % SHARE_STEP
        chunk = self._max_notional * ONE // price
        chunk -= chunk % SHARE_STEP
        sells = []
        while left >= info.min_size and chunk >= info.min_size:
            size = min(left, chunk)
            sells.append((price, size))
            left -= size
        return sells

    def _worth_another_round(self) -> bool:
        if self.rounds >= ROUNDS or self._held() >= self._held_before_round:
            return False  # the last round sold nothing: the next would do no better
        return any(self._sells_for(token) for token in self._ledger.tokens())

    def _finish(self, cid: str, how: str) -> None:
        self.phase = Phase.DONE
        self._deadline_ns = None
        left = {}
        for token in self._ledger.tokens():
            shares = self._ledger.position(token)
            if shares:
                left[token] = {"shares": shares, "why": self._why_left(token, shares)}
        if left:
            self._sink.record("flatten_left", cid, {"tokens": left})
        self._sink.record("flatten_done", cid, {"how": how, "rounds": self.rounds, "sold": self.sold,
                                                "left": len(left), "daily_pnl": self._view.daily_pnl()})
        self._request_stop(cid, "daily loss limit reached: flattened")

    def _request_stop(self, cid: str, reason: str) -> None:
        if self.stop_requested:
            return
        self.stop_requested = reason
        self._sink.record("stop_requested", cid, {"reason": reason, "connected": self._stop is not None})
        if self._stop is not None:
            self._stop(reason)

    def _why_left(self, token: str, shares: int) -> str:
        info = self._markets.for_token(token)
        book = self._books.get(token)
        if info is None:
            return "unknown market"
        if book is None or book.state is not BookState.SYNCED:
            return "no book"
        if book.best_bid is None:
            return "no bid"
        if self._ledger.available_shares(token) < shares:
            return "reserved (an order or a chain action in flight)"
        if shares < info.min_size:
            return "under min size"
        return "not filled at the bid"

    def _held(self) -> int:
        return sum(self._ledger.position(t) for t in self._ledger.tokens())

    def _arm(self) -> None:
        self._deadline_ns = self._clock.now_ns() + PHASE_S * _NS_PER_S
        if self._call_at is not None:
            self._call_at(self._deadline_ns, self.expire)
