"""Capital on chain as a rule-based state machine: the executor against a simple model of the chain.

Random fills (buys and sells, each filled at once) in four markets, resolutions, merges (the
strategy's through the sweep, and sent directly), sweeps, time passing, and the chain's answers in
any order: done, failed, repeated, and stray ones (a "done" for a request the chain failed — what a
late answer after a failure and a retry would be). The model chain holds pUSD and token balances;
a fill moves them as the CLOB's settlement would, and a merge or redemption moves them only when
the chain confirms it (the moment its answer is first delivered). After every step: the ledger's
cash and positions equal the chain's, positions are never negative, the shares held equal what
the requests in flight hold (no reservation outlives its request, and nothing else holds any), and
what the executor has in flight is what the chain has not answered. At the end, with every answer
a success, every resolved market's shares are redeemed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mmbot.config import CapitalConfig, Config, MergeConfig, RiskConfig, StrategiesConfig
from mmbot.decisions.book import Books
from mmbot.decisions.executor import Executor
from mmbot.decisions.ledger import Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Orders
from mmbot.decisions.risk import Risk
from mmbot.decisions.strategy import Strategies
from mmbot.decisions.tasks import DecisionLoop
from mmbot.facts.bus import Doorbell, LatestSlots, Stream
from mmbot.model import (
    ONE,
    BookSnapshot,
    ChainActionFailed,
    Fill,
    Ids,
    Liquidity,
    MarketClosing,
    MarketInfo,
    MergeDone,
    MergeRequest,
    MergeSets,
    OrderAccepted,
    PlaceOrder,
    RedeemDone,
    RedeemRequest,
    Side,
    TimeInForce,
    notional,
    notional_down,
)
from tests.test_executor import NOW_NS, CollectingGateway, FakeClock, ListSink

SECOND = 1_000_000_000
MARKETS = tuple(MarketInfo(market=f"m{i}", tokens=(f"y{i}", f"n{i}")) for i in range(3))
MARKET_OF = {token: info for info in MARKETS for token in info.tokens}
TOKENS = tuple(MARKET_OF)
CASH = 5_000 * ONE
CAPITAL = CapitalConfig(retry_after_s=10, retry_max_s=40, max_attempts=2)
RISK = RiskConfig(max_position_per_token=10_000 * ONE, max_position_per_market=20_000 * ONE,
                  max_gross_exposure=100_000 * ONE, max_daily_loss=100_000 * ONE)


@attrs.define
class Sent:
    """A request the executor sent to the chain, and what the chain made of it."""

    request: MergeRequest | RedeemRequest
    answer: Any = None  # the message delivered (None: not answered yet)
    confirmed: bool = False  # the chain did it


class Chain:
    """The chain's balances, moved by the CLOB's settlement of fills and by confirmed requests."""

    def __init__(self) -> None:
        self.pusd = CASH
        self.tokens: Counter[str] = Counter()

    def merge(self, request: MergeRequest) -> None:
        for token in request.tokens:
            assert self.tokens[token] >= request.size, "the chain cannot merge shares it does not hold"
            self.tokens[token] -= request.size
        self.pusd += request.size

    def redeem(self, request: RedeemRequest, haircut: int) -> int:
        """Pulls the entire balance of both outcomes, pays 1 per winning share (less ``haircut``:
        a chain that pays other than the ledger expects)."""
        payout = max(0, self.tokens[request.winning_token] - haircut)
        for token in request.tokens:
            self.tokens[token] = 0
        self.pusd += payout
        return payout


class CapitalMachine(RuleBasedStateMachine):
    @initialize(min_sets=st.sampled_from([5 * ONE, 20 * ONE]),
                held=st.lists(st.integers(0, 30).map(lambda n: n * ONE), min_size=len(TOKENS), max_size=len(TOKENS)))
    def start(self, min_sets: int, held: list[int]) -> None:
        """``held``: shares of each token bought at the start (0 or below 5: none), so that there
        is something to merge and redeem from the first step."""
        self.sink, self.gateway, self.clock = ListSink(), CollectingGateway(), FakeClock()
        books = Books(self.sink)
        for info in MARKETS:
            for token in info.tokens:
                books.apply(BookSnapshot(
                    cid=f"snap-{token}", recv_ns=NOW_NS, market=info.market, token=token,
                    bids=((400_000, 1_000 * ONE),), asks=((600_000, 1_000 * ONE),),
                    venue_ts_ms=NOW_NS // 1_000_000, tick=info.tick,
                ))
        self.executor = Executor(
            ledger=Ledger(cash=CASH), orders=Orders(), risk=Risk(RISK), books=books, markets=Markets(MARKETS),
            gateway=self.gateway, sink=self.sink, clock=self.clock, ids=Ids(), pays_on_resolution=False,
            capital=CAPITAL,
        )
        config = Config(strategies=StrategiesConfig(merge=MergeConfig(min_sets=min_sets)))
        doorbell = Doorbell()
        self.inbox: Stream = Stream(doorbell)
        self.loop = DecisionLoop(inbox=self.inbox, slots=LatestSlots(doorbell), executor=self.executor,
                                 strategies=Strategies(config_for=config.strategies_for, ids=Ids()))
        self.ledger = self.executor.ledger
        self.chain = Chain()
        self.resolved: dict[str, str] = {}
        self.resolved_at: dict[str, int] = {}  # market -> how many requests were sent before its resolution
        self.sent: list[Sent] = []
        self.seen = 0  # requests of the gateway's taken into ``sent``
        self.serial = 0
        self.strays = 0  # stray answers while another request of the market was in flight
        for token, size in zip(TOKENS, held):
            self.trade(token, Side.BUY, 500_000, size)

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def collect(self) -> None:
        """Take in the chain requests the executor sent since last time."""
        for request in self.gateway.sent[self.seen:]:
            if isinstance(request, (MergeRequest, RedeemRequest)):
                self.sent.append(Sent(request))
        self.seen = len(self.gateway.sent)

    def unanswered(self) -> list[Sent]:
        return [s for s in self.sent if s.answer is None]

    # ------------------------------------------------------------------ the CLOB

    def trade(self, token: str, side: Side, price: int, size: int) -> bool:
        """An order filled at once, entirely, as a maker (no fee); False if it was refused."""
        cid = self.next_id("i")
        before = len(self.gateway.sent)
        self.executor.handle(PlaceOrder(cid=cid, cause=cid, strategy="test", market=MARKET_OF[token].market,
                                        token=token, side=side, price=price, size=size, tif=TimeInForce.GTC))
        new = self.gateway.sent[before:]
        self.seen = len(self.gateway.sent)
        if not new:
            return False
        [request] = new
        self.inbox.send(OrderAccepted(cid=cid, order_id=request.order_id))
        self.inbox.send(Fill(
            cid=cid, fill_id=f"f-{cid}", order_id=request.order_id, market=request.market, token=token, side=side,
            price=price, size=size, fee=0, liquidity=Liquidity.MAKER, ts_ns=self.clock.now,
        ))
        if side is Side.BUY:
            self.chain.pusd -= notional(price, size)
            self.chain.tokens[token] += size
        else:
            self.chain.pusd += notional_down(price, size)
            self.chain.tokens[token] -= size
        self.loop.step()  # through the decision loop: the merge strategy sees the fill
        self.collect()
        return True

    @rule(token=st.sampled_from(TOKENS), price=st.integers(30, 60).map(lambda k: k * 10_000),
          size=st.integers(5, 40).map(lambda n: n * ONE))
    def buy(self, token: str, price: int, size: int) -> None:
        if MARKET_OF[token].market not in self.resolved:
            self.trade(token, Side.BUY, price, size)

    @rule(token=st.sampled_from(TOKENS), size=st.integers(5, 40).map(lambda n: n * ONE))
    def sell(self, token: str, size: int) -> None:
        """Shares held by a merge or redemption in flight cannot be sold."""
        if MARKET_OF[token].market in self.resolved:
            return
        available = self.ledger.available_shares(token)
        sold = self.trade(token, Side.SELL, 400_000, size)
        if size > available:
            assert not sold

    @precondition(lambda self: len(self.resolved) < len(MARKETS))
    @rule(data=st.data(), winner=st.integers(0, 1))
    def resolve(self, data: st.DataObject, winner: int) -> None:
        info = data.draw(st.sampled_from([i for i in MARKETS if i.market not in self.resolved]), label="market")
        self.executor.handle(MarketClosing(cid=self.next_id("res"), market=info.market,
                                           winning_token=info.tokens[winner]))
        self.resolved.setdefault(info.market, info.tokens[winner])
        self.collect()
        self.resolved_at.setdefault(info.market, len(self.sent))

    # ------------------------------------------------------------------ capital

    @rule(info=st.sampled_from(MARKETS), data=st.data())
    def merge(self, info: MarketInfo, data: st.DataObject) -> None:
        sets = min(self.ledger.available_shares(t) for t in info.tokens)
        size = data.draw(st.one_of(st.just(sets), st.integers(1, 40).map(lambda n: n * ONE)).filter(bool), label="size")
        cid = self.next_id("g")
        self.executor.handle(MergeSets(cid=cid, cause=cid, strategy="test", market=info.market, size=size))
        self.collect()

    @rule()
    def sweep(self) -> None:
        self.loop.sweep(self.next_id("sweep"))
        self.collect()

    @rule(seconds=st.sampled_from([1, 10, 40]))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += seconds * SECOND

    @precondition(lambda self: self.unanswered())
    @rule(data=st.data(), ok=st.booleans(), haircut=st.sampled_from([0, 0, 0, 1, ONE]))
    def chain_answers(self, data: st.DataObject, ok: bool, haircut: int) -> None:
        sent = data.draw(st.sampled_from(self.unanswered()), label="request")
        self.answer(sent, ok, haircut)

    def answer(self, sent: Sent, ok: bool, haircut: int = 0) -> None:
        request = sent.request
        action = "merge" if isinstance(request, MergeRequest) else "redeem"
        if not ok:
            sent.answer = ChainActionFailed(cid=request.cid, market=request.market, action=action, reason="reverted")
        elif isinstance(request, MergeRequest):
            self.chain.merge(request)
            sent.answer, sent.confirmed = MergeDone(cid=request.cid, market=request.market, size=request.size), True
        else:
            payout = self.chain.redeem(request, haircut)
            sent.answer, sent.confirmed = RedeemDone(cid=request.cid, market=request.market, payout=payout), True
        errors = len(self.sink.of("error"))
        self.executor.handle(sent.answer)
        assert len(self.sink.of("error")) == errors  # the first answer to a request in flight is applied
        self.collect()

    @precondition(lambda self: any(s.answer is not None for s in self.sent))
    @rule(data=st.data())
    def answer_again(self, data: st.DataObject) -> None:
        """The chain lane repeats an answer, or sends a "done" for a request the chain failed."""
        sent = data.draw(st.sampled_from([s for s in self.sent if s.answer is not None]), label="answered")
        if not sent.confirmed and data.draw(st.booleans(), label="stray done"):
            self.stray_done(sent)
        else:
            self.changes_nothing(sent.answer)

    def strays_possible(self) -> list[Sent]:
        """Requests the chain failed whose market has another request in flight (a retry)."""
        busy = {s.request.market for s in self.unanswered()}
        return [s for s in self.sent if s.answer is not None and not s.confirmed and s.request.market in busy]

    @precondition(lambda self: self.strays_possible())
    @rule(data=st.data())
    def late_done_after_a_retry(self, data: st.DataObject) -> None:
        """A "done" for a request that failed, while the market's next request is in flight."""
        self.stray_done(data.draw(st.sampled_from(self.strays_possible()), label="failed"))

    def stray_done(self, sent: Sent) -> None:
        request = sent.request
        self.strays += any(s.answer is None and s.request.market == request.market for s in self.sent)
        self.changes_nothing(
            MergeDone(cid=request.cid, market=request.market, size=request.size)
            if isinstance(request, MergeRequest) else RedeemDone(cid=request.cid, market=request.market, payout=ONE)
        )

    def changes_nothing(self, msg: Any) -> None:
        """An answer for no request in flight: an ``error`` row, nothing applied."""
        state, errors = self.ledger.snapshot(), len(self.sink.of("error"))
        self.executor.handle(msg)
        assert self.ledger.snapshot() == state
        assert len(self.sink.of("error")) == errors + 1

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_ledger_equals_the_chain(self) -> None:
        self.ledger.check()  # positions never negative, reservations add up, books balance
        assert self.ledger.cash == self.chain.pusd
        for token in TOKENS:
            assert self.ledger.position(token) == self.chain.tokens[token]

    @invariant()
    def only_requests_in_flight_hold_shares(self) -> None:
        held: Counter[str] = Counter()
        for sent in self.unanswered():
            request = sent.request
            if isinstance(request, MergeRequest):
                for token in request.tokens:
                    held[token] += request.size
            else:
                for token in request.tokens:
                    held[token] += self.ledger.position(token)  # its entire positions
        snapshot = self.ledger.snapshot()
        assert snapshot["reserved_shares"] == {t: n for t, n in sorted(held.items()) if n}
        assert snapshot["reserved_cash"] == 0  # every order here filled at once

    @invariant()
    def in_flight_is_what_the_chain_has_not_answered(self) -> None:
        capital = self.executor.capital
        merges = {s.request.market: s.request.cid for s in self.unanswered() if isinstance(s.request, MergeRequest)}
        redeems = {s.request.market: s.request.cid for s in self.unanswered() if isinstance(s.request, RedeemRequest)}
        assert capital.merges_pending == merges
        assert {market: r.cid for market, r in capital.redemptions.items()} == redeems
        assert not set(merges) & set(redeems)  # never both for one market
        for market, at in self.resolved_at.items():  # no merge starts once the resolution is known
            assert not any(isinstance(s.request, MergeRequest) and s.request.market == market for s in self.sent[at:])

    # ------------------------------------------------------------------ the end

    def merge_retries(self) -> int:
        failed = {s.request.market for s in self.sent if isinstance(s.request, MergeRequest) and s.answer is not None
                  and not s.confirmed}
        return sum(1 for s in self.sent if isinstance(s.request, MergeRequest) and s.request.market in failed) - len(failed)

    def teardown(self) -> None:
        """Every answer a success from now on: every resolved market's shares get redeemed."""
        if not hasattr(self, "executor"):
            return
        for _ in range(20):
            for sent in self.unanswered():
                self.answer(sent, True)
            self.clock.now += CAPITAL.retry_max_s * SECOND
            self.sweep()
            if not self.unanswered():
                break
        assert not self.unanswered()
        retried = Counter(s.request.market for s in self.sent if isinstance(s.request, RedeemRequest))
        event(f"redemptions of one market at most: {max(retried.values(), default=0)}")
        event(f"stray answers: {self.strays}")
        event(f"merges failed then retried: {self.merge_retries()}")
        for market in self.resolved:
            info = MARKET_OF[f"y{market[1:]}"]
            assert all(self.ledger.position(t) == 0 for t in info.tokens), f"{market} still holds shares"
        self.the_ledger_equals_the_chain()


CapitalMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)
TestCapitalMachine = CapitalMachine.TestCase
