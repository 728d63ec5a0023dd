"""The maker remembers what it read when it last chose to do nothing, and answers "nothing" again
without working it out while that reading is the same. That is only right if the reading holds
everything its decision depends on, so this checks the remembering maker against one that
remembers nothing, after every step of the executor's state machine (``test_executor``): orders
in every status, fills, merges, the kill switch, closings, books moving at the top and below it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, settings, strategies as st
from hypothesis.stateful import initialize, invariant, rule

from mmbot.config import MakerConfig, StrategiesConfig
from mmbot.decisions.strategy import CompleteSetMaker
from mmbot.model import (
    ONE,
    BookSnapshot,
    BookState,
    BookUpdate,
    CancelOrder,
    Ids,
    MarketInfo,
    MergeDone,
    MergeSets,
    OrderAccepted,
    PlaceOrder,
    Side,
    SubmitRequest,
)
from tests.test_executor import MARKETS, NOW_NS, TICK, TIGHT_RISK, ExecutorMachine, build, buy_and_fill

# Small quotes, so that cash and the tight risk limits let some through and refuse others, and a
# skew that positions of a few shares move by ticks.
MAKER = MakerConfig(size=5 * ONE, target_edge=20_000, skew_per_share=2_000, max_skew=30_000, refresh_threshold=10_000)


class MakerIds(Ids):
    """Ids of their own: the machine's intents are numbered "i1", "i2", ... too."""

    def next(self, prefix: str) -> str:
        return "maker-" + super().next(prefix)


def maker() -> CompleteSetMaker:
    return CompleteSetMaker(config_for=lambda market: StrategiesConfig(maker=MAKER), ids=MakerIds())


def what(intent: Any) -> tuple[Any, ...]:
    """An intent without its ids (the two makers count theirs apart)."""
    if isinstance(intent, PlaceOrder):
        return ("place", intent.token, intent.side, intent.price, intent.size, intent.tif, intent.post_only,
                intent.pair_cost, intent.reason)
    assert isinstance(intent, CancelOrder)
    return ("cancel", intent.order_id, intent.reason)


class MakerMemoMachine(ExecutorMachine):
    @initialize()
    def start(self) -> None:
        super().start()
        self.maker = maker()

    @rule(token=st.sampled_from([t for info in MARKETS for t in info.tokens]), extra=st.integers(1, 3))
    def book_changes_below_the_top(self, token: str, extra: int) -> None:
        """Depth changes, the top stays: the common book update, which the maker need not read."""
        book = self.executor.books.get(token)
        if book.best_bid is None or book.best_ask is None or book.best_bid <= extra * TICK:
            return
        info = next(i for i in MARKETS if token in i.tokens)
        self.executor.books.apply(
            BookSnapshot(
                cid=self.next_id("deep"), recv_ns=NOW_NS, market=info.market, token=token,
                bids=((book.best_bid - extra * TICK, 7 * ONE), (book.best_bid, book.size_at(Side.BUY, book.best_bid))),
                asks=((book.best_ask + extra * TICK, 9 * ONE), (book.best_ask, 100 * ONE)),
                venue_ts_ms=NOW_NS // 1_000_000, tick=TICK,
            )
        )

    def both_decide(self, info: MarketInfo) -> list[Any]:
        """The remembering maker's intents, once a maker that remembers nothing agreed."""
        view = self.executor.view
        yes, no = info.tokens
        update = BookUpdate(cid=self.next_id("f"), recv_ns=NOW_NS, market=info.market, token=yes,
                            state=BookState.SYNCED, best_bid=None, best_ask=None)
        counted = CountingView(view)
        remembered = self.maker.decide(update, counted, info, MAKER, view.book(yes), view.book(no))
        fresh = maker().decide(update, view, info, MAKER, view.book(yes), view.book(no))
        assert [what(i) for i in remembered] == [what(i) for i in fresh]
        answered_from_reading = not counted.quote_reads and not counted.busy_reads
        event("maker: " + ("answered from its last reading" if answered_from_reading
                           else "intents" if fresh else "nothing, worked out"))
        return remembered

    @invariant()
    def the_maker_decides_as_if_it_remembered_nothing(self) -> None:
        """After every step, whatever it changed (the intents are not sent: that is the rule below)."""
        for info in MARKETS:
            self.both_decide(info)

    @rule(info=st.sampled_from(MARKETS))
    def maker_decides(self, info: MarketInfo) -> None:
        remembered = self.both_decide(info)
        before = len(self.rig.gateway.sent)
        for intent in remembered:  # its quotes go to the venue like any order: answers and fills follow
            self.executor.handle(intent)
        for request in self.rig.gateway.sent[before:]:
            if isinstance(request, SubmitRequest):
                self.submitted[request.order_id] = request


MakerMemoMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestMakerMemoMachine = MakerMemoMachine.TestCase


class CountingView:
    """A real view that counts the maker's looks at its quotes and at whether it is busy (what the
    remembered reading spares)."""

    def __init__(self, view: Any) -> None:
        self._view = view
        self.quote_reads = self.busy_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def busy(self, market: str, strategy: str) -> bool:
        self.busy_reads += 1
        return self._view.busy(market, strategy)

    def quotes(self, market: str, strategy: str) -> Any:
        self.quote_reads += 1
        return self._view.quotes(market, strategy)


def test_an_update_that_changes_nothing_the_maker_reads_is_answered_from_its_last_reading() -> None:
    rig = build()
    info = MARKETS[1]
    yes, no = info.tokens
    view = CountingView(rig.executor.view)
    the_maker = maker()
    update = BookUpdate(cid="f1", recv_ns=NOW_NS, market=info.market, token=yes, state=BookState.SYNCED,
                        best_bid=None, best_ask=None)
    quotes = the_maker.decide(update, view, info, MAKER, view.book(yes), view.book(no))
    assert [i.token for i in quotes] == [yes, no]  # both bids, nothing rests yet
    for intent in quotes:
        rig.executor.handle(intent)
    assert the_maker.decide(update, view, info, MAKER, view.book(yes), view.book(no)) == []  # they await the venue
    assert the_maker.remembered() == 0  # busy is not among what it reads: never remembered
    for request in rig.gateway.of(SubmitRequest):
        rig.executor.handle(OrderAccepted(cid=request.cid, order_id=request.order_id))
    reads = view.quote_reads
    assert the_maker.decide(update, view, info, MAKER, view.book(yes), view.book(no)) == []
    assert view.quote_reads == reads + 1 and the_maker.remembered() == 1  # worked out, then remembered
    assert the_maker.decide(update, view, info, MAKER, view.book(yes), view.book(no)) == []
    assert view.quote_reads == reads + 1  # answered from the reading
    rig.executor.books.apply(BookSnapshot(  # the top moves: worked out again, and both quotes follow it
        cid="s2", recv_ns=NOW_NS, market=info.market, token=yes, bids=((450_000, 100 * ONE),),
        asks=((500_000, 100 * ONE),), venue_ts_ms=NOW_NS // 1_000_000, tick=TICK))
    moved = the_maker.decide(update, view, info, MAKER, view.book(yes), view.book(no))
    assert view.quote_reads == reads + 2 and moved
    the_maker.forget(info.tokens)
    assert the_maker.remembered() == 0


def test_shares_merged_away_free_position_room_with_no_order_changing() -> None:
    """At the position limits the maker bids nothing and remembers so; a merge then frees room
    without any order changing, and the positions it read tell it to bid again."""
    rig = build(cash=200 * ONE, risk=TIGHT_RISK)
    info = MARKETS[1]
    yes, no = info.tokens
    buy_and_fill(rig, yes, 400_000, 60 * ONE, cid="by")  # the token's limit
    buy_and_fill(rig, no, 400_000, 40 * ONE, cid="bn")  # with it, the market's
    view, the_maker = rig.executor.view, maker()
    update = BookUpdate(cid="f1", recv_ns=NOW_NS, market=info.market, token=yes, state=BookState.SYNCED,
                        best_bid=None, best_ask=None)
    assert the_maker.decide(update, view, info, MAKER, view.book(yes), view.book(no)) == []
    assert the_maker.remembered() == 1
    rig.executor.handle(MergeSets(cid="m", cause="m", strategy="test", market=info.market, size=40 * ONE))
    rig.executor.handle(MergeDone(cid="m", market=info.market, size=40 * ONE))
    assert rig.executor.orders.changed_in(info.market) == 0  # no order, before or after
    bids = the_maker.decide(update, view, info, MAKER, view.book(yes), view.book(no))
    assert [(i.token, i.side) for i in bids] == [(yes, Side.BUY), (no, Side.BUY)]
