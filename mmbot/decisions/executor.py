"""The executor: the single writer of cash, reservations, positions and open orders.

Everything that changes our state arrives here as a message and is handled by plain synchronous
code (DESIGN §3): intent → risk.check → ledger.reserve → orders.new(PENDING_SUBMIT) → gateway.send;
venue responses come back later as input (acknowledgement-as-input), so a slow round-trip for one
market never stalls the others. Fills update the ledger before they are published.

The two paths live in their own modules, sharing this executor's state: ``intent_path`` (a
strategy's wish to a request at the gateway) and ``answer_path`` (the venue's answers applied);
merges and redemptions on chain, their holds and the redemption sweeper are ``capital``'s. Here
are the dispatch, the operator's and the markets' lifecycle messages, ``sweep``, and ``prune``
and ``forget_markets`` (``forgetting``), which keep a long run's memory bounded.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from mmbot.config import CapitalConfig
from mmbot.decisions.answer_path import AnswerPath
from mmbot.decisions.book import Books
from mmbot.decisions.capital import Capital
from mmbot.decisions.flatten import Flatten
from mmbot.decisions.forgetting import Forgotten, MarketLifecycle
from mmbot.decisions.intent_path import IntentPath
from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Orders, OrderStatus
from mmbot.decisions.risk import Risk
from mmbot.decisions.view import StateView
from mmbot.model import (
    ONE,
    CancelOrder,
    CancelRejected,
    ChainActionFailed,
    Correction,
    Fill,
    Ids,
    KillSwitch,
    OperatorPause,
    MarketClosing,
    MergeDone,
    MergeSets,
    OrderAccepted,
    OrderDone,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceOrder,
    RedeemDone,
    TradingGate,
)
from mmbot.ports import Clock, EventSink, OrderGateway


class Executor:
    def __init__(
        self,
        *,
        ledger: Ledger,
        orders: Orders,
        risk: Risk,
        books: Books,
        markets: Markets,
        gateway: OrderGateway,
        sink: EventSink,
        clock: Clock,
        ids: Ids,
        publish_fill: Callable[[Fill], None] = lambda fill: None,
        pays_on_resolution: bool = True,
        publish_refused: Callable[[Fill], None] = lambda fill: None,
        capital: CapitalConfig = CapitalConfig(),
    ) -> None:
        """``pays_on_resolution``: the venue pays winning shares out when a market resolves (the
        paper venue); otherwise (Polymarket) they stay held, marked at 1 (and losers at 0), until
        redeemed on chain by ``sweep`` (``capital``, configured by ``capital``). ``publish_refused``: a fill the executor would not book because its order
        had ended (a venue race: the fill was reported after the cancel was answered), so that
        reconciliation can adopt it now rather than after its timeout."""
        self.ledger = ledger
        self.orders = orders
        self.risk = risk
        self.books = books
        self.markets = markets
        self._gateway = gateway
        self._sink = sink
        self._clock = clock
        self._pays_on_resolution = pays_on_resolution
        self.capital = Capital(
            ledger=ledger, orders=orders, markets=markets, gateway=gateway, sink=sink, clock=clock, ids=ids,
            config=capital,
        )
        self.view = StateView(
            ledger=ledger, orders=orders, books=books, markets=markets, clock=clock,
            merges_pending=self.capital.merges_pending, max_open_orders=risk.config.max_open_orders,
            max_position_per_token=risk.config.max_position_per_token,
            max_position_per_market=risk.config.max_position_per_market, chain_busy=self.capital.busy,
        )
        self.counts = {"intents": 0, "orders": 0, "fills": 0, "rejections": 0}
        self.paused = False  # by the operator (OperatorPause)
        self.lifecycle = MarketLifecycle(
            markets=markets, books=books, view=self.view, ledger=ledger, orders=orders,
            in_flight=self.capital.in_flight,
        )
        self._intents = IntentPath(
            ledger=ledger, orders=orders, risk=risk, books=books, markets=markets, view=self.view,
            gateway=gateway, sink=sink, clock=clock, ids=ids, capital=self.capital, counts=self.counts,
        )
        self._answers = AnswerPath(
            ledger=ledger, orders=orders, markets=markets, sink=sink, clock=clock, counts=self.counts,
            publish_fill=publish_fill, publish_refused=publish_refused,
        )
        # [risk] on_daily_loss = "flatten": the kill switch that cancels, sells back and stops (flatten.py)
        self.flatten: Flatten | None = None
        if risk.config.on_daily_loss == "flatten":
            self.flatten = Flatten(
                config=risk.config, risk=risk, ledger=ledger, orders=orders, books=books, markets=markets,
                view=self.view, sink=sink, clock=clock, ids=ids, place=self._intents.place, cancel_all=self.cancel_all,
            )
        intents, answers, chain = self._intents, self._answers, self.capital
        self._handlers: dict[type, Callable[[Any], None]] = {
            PlaceOrder: intents.place,
            CancelOrder: intents.cancel,
            MergeSets: intents.merge,
            OrderAccepted: answers.accepted,
            OrderRejected: answers.rejected,
            Fill: answers.fill,
            OrderDone: answers.done,
            CancelRejected: answers.cancel_rejected,
            OrderOutcomeUnknown: answers.unknown,
            MergeDone: chain.merged,
            RedeemDone: chain.redeemed,
            ChainActionFailed: chain.failed,
            Correction: answers.correction,
            KillSwitch: self._on_kill,
            OperatorPause: self._on_pause,
            TradingGate: self._on_gate,
            MarketClosing: self._on_closing,
        }

    def adopt_holdings(self, cid: str, holdings: Mapping[str, tuple[int, int]], *, basis: str) -> None:
        """At start-up, before any strategy acts: positions found at the venue, {token: (shares,
        cost)}, taken into the ledger and recorded."""
        for token, (shares, cost) in holdings.items():
            self.ledger.adopt_position(token, shares, cost)
            info = self.markets.for_token(token)
            self._sink.record("position_adopted", cid, {"shares": shares, "cost": cost, "basis": basis},
                              market=info.market if info else "", token=token)

    def handle(self, msg: Any) -> None:
        handler = self._handlers.get(type(msg))
        if handler is None:
            raise TypeError(f"the executor has no handler for {type(msg).__name__}")
        handler(msg)
        if self.flatten is not None:
            self.flatten.after(getattr(msg, "cid", "flatten"))

    # ------------------------------------------------------------------ bounded memory

    def prune(self, now_ns: int, horizon_ns: int) -> list[str]:
        """Forget the orders that ended at least ``horizon_ns`` ago and the fill ids booked for
        them; returns their ids (for the gateway to forget its own maps). Records nothing: the
        caller records a ``pruned`` row when there were any. Messages naming a forgotten order
        are errors from then on (see ``answer_path``), which is why the horizon must outlast the
        venue's last word on an ended order."""
        pruned = self.orders.prune(now_ns, horizon_ns)
        self._answers.forget_fills(pruned)
        return pruned

    def fill_ids_remembered(self) -> int:
        return self._answers.fill_ids_remembered()

    def forget_markets(self, now_ns: int, horizon_ns: int) -> Forgotten:
        """Forget the markets over for ``horizon_ns`` with nothing of ours left in them (see
        ``forgetting``): their registry entry, books and view entries go here; the caller passes
        what it returns to the strategies, slots, boundaries and venue. Records nothing."""
        gone = self.lifecycle.forget_due(now_ns, horizon_ns)
        self.capital.forget(info.market for info in gone.markets)
        return gone

    # ------------------------------------------------------------------ capital on chain

    def sweep(self, cid: str) -> int:
        """The capital sweep (signed trading, every ``[capital] sweep_interval_s``): a redemption
        for every resolved market due (``capital``), sent together; returns how many. Records only
        what it sends. The merge strategy's offers of held complete sets follow it
        (``tasks.DecisionLoop.sweep``)."""
        return self.capital.sweep(cid)

    # ------------------------------------------------------------------ operator and lifecycle

    def _on_kill(self, msg: KillSwitch) -> None:
        if msg.engaged:
            self.risk.engage(msg.reason)
            self._sink.record("kill_switch", msg.cid, {"reason": msg.reason})
            self.cancel_all(msg.cid, f"kill switch: {msg.reason}")
        else:
            self.risk.release()
            self._sink.record("kill_switch_released", msg.cid, {"reason": msg.reason})

    def _on_pause(self, msg: OperatorPause) -> None:
        """The operator's pause: every open order cancelled and no strategy acts until resumed
        (``tasks.DecisionLoop`` holds the book updates meanwhile). Only a change is recorded."""
        if msg.paused == self.paused:
            return
        self.paused = msg.paused
        self._sink.record("operator_paused" if msg.paused else "operator_resumed", msg.cid, {"reason": msg.reason})
        if msg.paused:
            self.cancel_all(msg.cid, f"paused by the operator: {msg.reason}")

    def _on_gate(self, msg: TradingGate) -> None:
        """Closed: no new order passes risk, and every open order is cancelled (a quote that fills
        unseen would part the ledger from the venue). Open: quoting may resume."""
        if msg.open:
            if self.risk.gate_closed:
                self.risk.open_gate()
                self._sink.record("trading_resumed", msg.cid, {"reason": msg.reason})
            return
        first = not self.risk.gate_closed
        self.risk.close_gate(msg.reason)
        if first:
            self._sink.record("trading_paused", msg.cid, {"reason": msg.reason})
        self.cancel_all(msg.cid, f"venue not ready: {msg.reason}")

    @property
    def gate_open(self) -> bool:
        return not self.risk.gate_closed

    @property
    def quoting(self) -> bool:
        """Whether strategies may act: the venue's gate is open, the operator has not paused and no
        daily-loss flatten began."""
        return not self.risk.gate_closed and not self.paused and not self.risk.flattening

    def _on_closing(self, msg: MarketClosing) -> None:
        self.cancel_all(msg.cid, "market closing" if msg.winning_token is None else "market resolved", msg.market)
        self._settle(msg)
        self.lifecycle.closed(msg.market, resolved=msg.winning_token is not None, now_ns=self._clock.now_ns())

    def _settle(self, msg: MarketClosing) -> None:
        info = self.markets.get(msg.market)
        if msg.winning_token is None or info is None:
            return
        losing = info.tokens[1] if msg.winning_token == info.tokens[0] else info.tokens[0]
        if not self._pays_on_resolution:
            self.capital.resolved(msg.market, msg.winning_token)  # the sweeper redeems what is held
            self.view.settle(msg.winning_token, ONE)
            self.view.settle(losing, 0)
            self._sink.record("resolution", msg.cid, {
                "winning_token": msg.winning_token, "payout": 0, "cash": self.ledger.cash,
                "redeemable": self.ledger.position(msg.winning_token), "worthless": self.ledger.position(losing),
            }, market=msg.market)
            return
        payout = self.ledger.resolve(msg.winning_token, losing)
        self._sink.record(
            "resolution",
            msg.cid,
            {"winning_token": msg.winning_token, "payout": payout, "cash": self.ledger.cash},
            market=msg.market,
        )

    def cancel_all(self, cid: str, reason: str, market: str | None = None) -> int:
        """Ask the venue to cancel every open order (of one market): the safe stop."""
        count = 0
        for order in self.orders.open_orders(market=market):
            if order.status is OrderStatus.PENDING_CANCEL:
                continue  # already asked; an UNKNOWN order may be resting, so it is asked too
            self._intents.cancel(
                CancelOrder(cid=cid, cause=cid, strategy=order.strategy, order_id=order.order_id, reason=reason)
            )
            count += 1
        return count
