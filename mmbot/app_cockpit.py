"""The operator's cockpit wired to one engine (composition level: it reads the engine's objects,
which ``cockpit/`` never imports). ``Cockpit`` follows the run's event log with a ``Watch``,
builds ``Snapshot`` values on demand, and is the ``Controls`` the dashboard and the signals use:
pause, resume and cancel-all go to the decision task as operator messages.

Everything here runs on the Trio thread (the HTTP app and the terminal view are tasks of the same
run), between decision steps, so a snapshot is consistent: never half a fill.
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Callable

from mmbot.app_engine import Engine
from mmbot.cockpit.health import BLIND
from mmbot.cockpit.snapshot import MarketRow, Quote, Snapshot, TokenRow
from mmbot.cockpit.watch import Watch
from mmbot.model import MarketInfo, OperatorCancelAll, OperatorPause

SHOWN_MARKETS = 60  # market rows of a snapshot: the busy ones first (inventory, orders, fills), then the soonest-ending
_NS_PER_S = 1_000_000_000


class Cockpit:
    def __init__(self, engine: Engine, *, mode: str, wall: Callable[[], int]) -> None:
        self.engine = engine
        self.mode = mode
        self._wall = wall
        self._commands = 0
        self.watch = Watch(describe=self.describe)
        engine.log.observe(self.watch.on_row)

    # ------------------------------------------------------------------ controls

    def pause(self, source: str, reason: str = "") -> None:
        self._send("pause", source, reason, lambda cid, why: OperatorPause(cid=cid, paused=True, reason=why))

    def resume(self, source: str, reason: str = "") -> None:
        self._send("resume", source, reason, lambda cid, why: OperatorPause(cid=cid, paused=False, reason=why))

    def cancel_all(self, source: str, reason: str = "") -> None:
        self._send("cancel_all", source, reason, lambda cid, why: OperatorCancelAll(cid=cid, reason=why))

    def _send(self, action: str, source: str, reason: str, make: Callable[[str, str], object]) -> None:
        self._commands += 1
        cid = f"op{self._commands}"
        why = reason or f"{action.replace('_', ' ')} from {source}"
        self.engine.log.record("operator_command", cid, {"action": action, "source": source, "reason": why})
        self.engine.inbox.send(make(cid, why))

    # ------------------------------------------------------------------ what is shown

    def describe(self, token: str) -> tuple[str, str, str]:
        info = self.engine.markets.for_token(token)
        if info is None:
            return "", token[:12], ""
        return info.market, info.slug or info.market[:12], info.outcomes[info.tokens.index(token)]

    def snapshot(self, markets: int = SHOWN_MARKETS) -> Snapshot:
        """What the operator sees now, with at most ``markets`` market rows: those with inventory,
        open orders or fills first (the most active first), then the soonest-ending others. A
        view that shows no market (``/metrics``, ``/healthz``) asks for none: a snapshot's cost
        is in its rows."""
        engine, watch = self.engine, self.watch
        executor = engine.executor
        ledger = executor.ledger
        marks = executor.view.marks()
        open_orders = executor.orders.open_orders()
        by_state = Counter(order.status.value for order in open_orders)
        shown, busy = self._shown_markets(markets)
        rows = [self._market_row(info, marks) for info in shown]
        start_cash = watch.start_cash if watch.start_cash is not None else ledger.cash
        return Snapshot(
            mode=self.mode, started_wall_ns=watch.started_wall_ns, wall_ns=self._wall(),
            cash=ledger.cash, reserved=ledger.reserved_cash, realised=ledger.realised,
            unrealised=ledger.unrealised(marks), fees=ledger.fees_paid, start_cash=start_cash,
            fills=executor.counts["fills"], maker_fills=watch.liquidity["maker"], taker_fills=watch.liquidity["taker"],
            orders_by_state=dict(sorted(by_state.items())), intents_by_strategy=dict(sorted(watch.intents.items())),
            rejections=dict(watch.rejections.most_common()), paused=executor.paused, halted=engine.loop.halted,
            gate_open=executor.gate_open, tripped=tuple(sorted(engine.tripped)), markets=tuple(rows),
            markets_total=len(engine.markets), markets_busy=busy,
            feeds=watch.feed_rows(), notices=tuple(watch.notices), recent_fills=tuple(watch.recent_fills),
            pnl_history=tuple(watch.pnl_history),
            counts=dict(sorted({**watch.counts, BLIND: engine.log.observer_failures}.items())),
        )

    def _shown_markets(self, limit: int) -> tuple[list[MarketInfo], int]:
        """The markets to show (at most ``limit``) and how many are busy. One pass over the ledger's
        tokens, the open orders by market and the markets with fills finds the busy ones; the
        quiet ones are only looked through when there is room for them."""
        engine = self.engine
        registry, ledger = engine.markets, engine.executor.ledger
        activity: Counter[str] = Counter(engine.executor.orders.open_by_market())
        for market, fills in self.watch.market_fills.items():
            activity[market] += fills
        for token in ledger.tokens():
            info = registry.for_token(token)
            if info is not None and ledger.position(token):
                activity[info.market] += 1
        if limit <= 0:  # only the count (``/metrics``, ``/healthz``, the plain lines' summary)
            return [], sum(1 for market in activity if registry.get(market) is not None)
        busy = [info for market, _ in activity.most_common() if (info := registry.get(market)) is not None]
        if len(busy) >= limit:
            return busy[:limit], len(busy)
        resolved = registry.resolved
        quiet = heapq.nsmallest(
            limit - len(busy), (info for info in registry if info.market not in activity and info.market not in resolved),
            key=lambda info: (info.end_ns is None, info.end_ns or 0, info.slug))
        return busy + quiet, len(busy)

    def _market_row(self, info: MarketInfo, marks: dict[str, int]) -> MarketRow:
        engine = self.engine
        executor = engine.executor
        ledger = executor.ledger
        now_ns = engine.clock.now_ns()
        tokens = []
        held_cost = held_value = 0
        for token, outcome in zip(info.tokens, info.outcomes):
            book = engine.books.get(token)
            holding = ledger.holding(token)
            mark = marks.get(token)
            held_cost += holding.cost
            held_value += holding.cost if mark is None else mark * holding.shares // 1_000_000
            quotes = tuple(Quote(order_id=o.order_id, side=o.side.value, price=o.price, size=o.size, filled=o.filled,
                                 status=o.status.value, strategy=o.strategy, age_s=(now_ns - o.created_ns) // _NS_PER_S)
                           for o in executor.orders.open_orders(token=token))
            tokens.append(TokenRow(
                token=token, outcome=outcome, best_bid=None if book is None else book.best_bid,
                best_ask=None if book is None else book.best_ask,
                book_state="none" if book is None else book.state.value, position=holding.shares, cost=holding.cost,
                mark=mark, quotes=quotes))
        flow = self.watch.flows[info.market]
        wall_offset = self._wall() - now_ns  # the engine's clock to wall time, for the market's end
        return MarketRow(
            market=info.market, slug=info.slug, question=info.question,
            end_wall_ns=None if info.end_ns is None else info.end_ns + wall_offset,
            tokens=(tokens[0], tokens[1]), realised=flow + held_cost, unrealised=held_value - held_cost,
            fills=self.watch.market_fills[info.market], resolved=info.market in engine.markets.resolved)
