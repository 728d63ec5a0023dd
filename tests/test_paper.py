"""The paper gateway against the real ``Books``: queue position, taking, mirrors, latency."""

from __future__ import annotations

import random

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.clock import Scheduler, TrioClock
from mmbot.decisions.book import Books
from mmbot.model import (
    ONE,
    BookSnapshot,
    CancelRejected,
    CancelRequest,
    Fill,
    LastTrade,
    LevelChange,
    Liquidity,
    MarketInfo,
    MarketResolved,
    MergeDone,
    MergeRequest,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    PriceChange,
    Side,
    SubmitRequest,
    TickSizeChange,
    TimeInForce,
    VenueResponse,
    parse_micro,
)
from mmbot.venues.paper import PaperGateway

BUY, SELL = Side.BUY, Side.SELL
GTC, FOK, FAK = TimeInForce.GTC, TimeInForce.FOK, TimeInForce.FAK
YES, NO = "yes-token", "no-token"
T0 = 1_700_000_000_000_000_000
LATENCY = 40_000_000
MARKET = MarketInfo(market="0xcond", tokens=(YES, NO), tick=10_000, min_size=5 * ONE, fee_rate=72_000)


def m(text: str) -> int:
    return parse_micro(text)


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def now_ns(self) -> int:
        return self.now


class NullSink:
    def record(self, kind, cid, payload=None, *, market="", token=""):  # noqa: ANN001, ANN201
        pass


class Venue:
    """A paper gateway over real books, driven by hand: feed frames, send requests, settle."""

    def __init__(self, *, market: MarketInfo = MARKET, seed: int = 1, jitter_ns: int = 0) -> None:
        self.clock = FakeClock(T0)
        self.scheduler = Scheduler(self.clock)  # type: ignore[arg-type]  # only fire_due is used
        self.books = Books(NullSink())
        self.responses: list = []
        self.gateway = PaperGateway(
            books=self.books,
            markets={YES: market, NO: market}.get,
            scheduler=self.scheduler,
            clock=self.clock,
            respond=self.responses.append,
            rng=random.Random(seed),
            ack_latency_ns=LATENCY,
            jitter_ns=jitter_ns,
        )
        self._ids = 0

    def _next(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def feed(self, msg) -> list:  # noqa: ANN001
        before = len(self.responses)
        self.books.apply(msg)
        self.gateway.on_market(msg)
        return self.responses[before:]

    def snapshot(self, token: str, bids=(), asks=()) -> list:  # noqa: ANN001
        return self.feed(
            BookSnapshot(
                cid=self._next("book"),
                recv_ns=self.clock.now,
                market=MARKET.market,
                token=token,
                bids=tuple((m(p), m(s)) for p, s in bids),
                asks=tuple((m(p), m(s)) for p, s in asks),
                venue_ts_ms=0,
            )
        )

    def level(self, token: str, side: Side, price: str, size: str) -> list:
        change = LevelChange(token=token, side=side, price=m(price), size=m(size))
        return self.feed(
            PriceChange(
                cid=self._next("pc"), recv_ns=self.clock.now, market=MARKET.market, venue_ts_ms=0, changes=(change,)
            )
        )

    def trade(self, token: str, taker: Side, price: str, size: str) -> list:
        return self.feed(
            LastTrade(
                cid=self._next("trade"),
                recv_ns=self.clock.now,
                market=MARKET.market,
                token=token,
                price=m(price),
                size=m(size),
                side=taker,
                venue_ts_ms=0,
            )
        )

    def submit(self, side: Side, price: str, size: str, tif: TimeInForce = GTC, *, token: str = YES,
               post_only: bool = False, order_id: str | None = None) -> str:
        order_id = order_id or self._next("o")
        self.gateway.send(
            SubmitRequest(cid="c-" + order_id, order_id=order_id, market=MARKET.market, token=token,
                          side=side, price=m(price), size=m(size), tif=tif, post_only=post_only)
        )
        return order_id

    def settle(self) -> list:
        """Let the latency pass and return what the venue answered."""
        before = len(self.responses)
        self.clock.now += LATENCY
        self.scheduler.fire_due(self.clock.now)
        return self.responses[before:]

    def place(self, *args, **kwargs) -> tuple[str, list]:  # noqa: ANN002, ANN003
        order_id = self.submit(*args, **kwargs)
        return order_id, self.settle()


def fills(responses: list) -> list[tuple[str, int, int, int, Liquidity]]:
    return [(r.fill_id, r.price, r.size, r.fee, r.liquidity) for r in responses if isinstance(r, Fill)]


def maker(order_id: str, k: int, price: str, size: str) -> tuple:
    return (f"{order_id}.{k}", m(price), m(size), 0, Liquidity.MAKER)


def taker(order_id: str, k: int, price: str, size: str, fee: int) -> tuple:
    return (f"{order_id}.{k}", m(price), m(size), fee, Liquidity.TAKER)


def queued_buy(venue: Venue, size: str = "40") -> str:
    """A BUY resting at 0.50 behind 100 visible shares."""
    venue.snapshot(YES, bids=[("0.50", "100"), ("0.48", "300")], asks=[("0.53", "50")])
    order_id, answers = venue.place(BUY, "0.50", size)
    assert answers == [OrderAccepted(cid="c-" + order_id, order_id=order_id)]
    assert venue.gateway.open_orders()[0].queue_ahead == m("100")
    return order_id


# --------------------------------------------------------------------------- resting orders


def test_resting_buy_fills_only_after_the_queue_ahead_has_traded() -> None:
    venue = Venue()
    order_id = queued_buy(venue)
    assert venue.trade(YES, SELL, "0.50", "60") == []
    assert venue.trade(YES, SELL, "0.50", "30") == []
    assert venue.gateway.open_orders()[0].queue_ahead == m("10")
    assert venue.trade(YES, BUY, "0.50", "500") == []  # a taker on our side never fills us
    assert fills(venue.trade(YES, SELL, "0.50", "25")) == [maker(order_id, 1, "0.50", "15")]
    assert fills(venue.trade(YES, SELL, "0.50", "20")) == [maker(order_id, 2, "0.50", "20")]
    assert fills(venue.trade(YES, SELL, "0.50", "30")) == [maker(order_id, 3, "0.50", "5")]
    assert venue.gateway.open_orders() == []
    assert venue.trade(YES, SELL, "0.50", "30") == []
    fill = venue.responses[-1]
    expected = ("c-" + order_id, MARKET.market, YES, BUY, T0 + LATENCY)
    assert (fill.cid, fill.market, fill.token, fill.side, fill.ts_ns) == expected


def test_a_trade_through_our_price_fills_the_whole_remainder() -> None:
    venue = Venue()
    order_id = queued_buy(venue)
    assert venue.trade(YES, SELL, "0.51", "1000") == []  # above our bid: not through us
    assert fills(venue.trade(YES, SELL, "0.49", "1")) == [maker(order_id, 1, "0.50", "40")]
    assert venue.gateway.open_orders() == []


def test_the_opposite_side_crossing_us_fills_at_our_price_once() -> None:
    venue = Venue()
    order_id = queued_buy(venue)
    assert fills(venue.level(YES, SELL, "0.50", "25")) == [maker(order_id, 1, "0.50", "25")]
    assert venue.level(YES, SELL, "0.56", "10") == []  # the crossing ask we took is not there twice
    assert fills(venue.level(YES, SELL, "0.49", "30")) == [maker(order_id, 2, "0.50", "15")]
    assert venue.gateway.open_orders() == []


def test_cancellations_ahead_shrink_the_queue_and_new_orders_queue_behind() -> None:
    venue = Venue()
    order_id = queued_buy(venue)
    venue.level(YES, BUY, "0.50", "30")
    assert venue.gateway.open_orders()[0].queue_ahead == m("30")
    venue.level(YES, BUY, "0.50", "80")
    venue.snapshot(YES, bids=[("0.50", "90")], asks=[("0.53", "50")])
    assert venue.gateway.open_orders()[0].queue_ahead == m("30")
    assert fills(venue.trade(YES, SELL, "0.50", "35")) == [maker(order_id, 1, "0.50", "5")]


def test_a_resting_sell_mirrors_the_buy_rules() -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.40", "10")], asks=[("0.60", "20")])
    order_id, _ = venue.place(SELL, "0.60", "10")
    assert venue.trade(YES, SELL, "0.60", "100") == []
    assert fills(venue.trade(YES, BUY, "0.60", "25")) == [maker(order_id, 1, "0.60", "5")]
    assert fills(venue.trade(YES, BUY, "0.61", "1")) == [maker(order_id, 2, "0.60", "5")]


def test_trades_on_the_complement_count_through_the_mirror() -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.40", "10")], asks=[("0.60", "10")])
    venue.snapshot(NO, bids=[("0.40", "10")], asks=[("0.60", "10")])
    order_id, _ = venue.place(BUY, "0.50", "10")  # queue 0: the level is empty
    assert venue.trade(NO, SELL, "0.50", "5") == []  # a taker SELL NO is a taker BUY YES
    assert fills(venue.trade(NO, BUY, "0.50", "4")) == [maker(order_id, 1, "0.50", "4")]
    assert fills(venue.trade(NO, BUY, "0.52", "1")) == [maker(order_id, 2, "0.50", "6")]  # YES at 0.48: through


def test_market_resolution_ends_resting_orders_and_refuses_new_ones() -> None:
    venue = Venue()
    order_id = queued_buy(venue)
    done = venue.feed(MarketResolved(cid="r", recv_ns=venue.clock.now, market=MARKET.market, market_id="1",
                                     tokens=(YES, NO), winning_token=YES, winning_outcome="Yes", venue_ts_ms=0))
    assert done == [OrderDone(cid="c-" + order_id, order_id=order_id, reason="market_resolved")]
    late_id, answers = venue.place(BUY, "0.50", "10")
    assert answers == [OrderRejected(cid="c-" + late_id, order_id=late_id, reason="MARKET_NOT_READY")]


def test_orders_after_the_market_end_are_refused() -> None:
    venue = Venue(market=MarketInfo(market=MARKET.market, tokens=(YES, NO), end_ns=T0 + LATENCY))
    venue.snapshot(YES, bids=[("0.50", "10")], asks=[("0.52", "10")])
    order_id, answers = venue.place(BUY, "0.50", "10")
    assert answers == [OrderRejected(cid="c-" + order_id, order_id=order_id, reason="MARKET_NOT_READY")]


# --------------------------------------------------------------------------- taking


def ladder(venue: Venue) -> None:
    venue.snapshot(YES, bids=[("0.50", "100")], asks=[("0.52", "10"), ("0.53", "20"), ("0.55", "100")])


def test_marketable_buy_walks_levels_with_taker_fees_and_rests_the_remainder() -> None:
    venue = Venue()
    ladder(venue)
    order_id, answers = venue.place(BUY, "0.53", "40")
    # fee = shares x 0.072 x p(1 - p), rounded to 5 dp: 10 x 0.072 x 0.2496 = 0.179712 -> 0.17971;
    # 20 x 0.072 x 0.2491 = 0.358704 -> 0.35870
    assert answers[0] == OrderAccepted(cid="c-" + order_id, order_id=order_id)
    assert fills(answers) == [taker(order_id, 1, "0.52", "10", 179_710), taker(order_id, 2, "0.53", "20", 358_700)]
    assert len(answers) == 3
    [rest] = venue.gateway.open_orders()
    assert (rest.order_id, rest.price, rest.remaining, rest.queue_ahead) == (order_id, m("0.53"), m("10"), 0)
    assert fills(venue.trade(YES, SELL, "0.53", "4")) == [maker(order_id, 3, "0.53", "4")]


def test_fok_fills_completely_or_not_at_all() -> None:
    venue = Venue()
    ladder(venue)
    order_id, answers = venue.place(BUY, "0.53", "31", FOK)
    assert answers == [OrderRejected(cid="c-" + order_id, order_id=order_id, reason="FOK_ORDER_NOT_FILLED_ERROR")]
    order_id, answers = venue.place(BUY, "0.53", "30", FOK)  # the refused one took nothing
    assert [type(r) for r in answers] == [OrderAccepted, Fill, Fill]
    assert [f[2] for f in fills(answers)] == [m("10"), m("20")]
    assert venue.gateway.open_orders() == []


def test_fak_takes_what_is_there_and_cancels_the_rest() -> None:
    venue = Venue()
    ladder(venue)
    order_id, answers = venue.place(BUY, "0.52", "15", FAK)
    assert fills(answers) == [taker(order_id, 1, "0.52", "10", 179_710)]
    assert answers[-1] == OrderDone(cid="c-" + order_id, order_id=order_id, reason="fak_remainder_canceled")
    assert venue.gateway.open_orders() == []


def test_marketable_sell_walks_bids_down_to_its_limit() -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.50", "10"), ("0.49", "10"), ("0.40", "10")], asks=[("0.55", "10")])
    order_id, answers = venue.place(SELL, "0.49", "25", FAK)
    # 10 x 0.072 x 0.25 = 0.18; 10 x 0.072 x 0.2499 = 0.179928 -> 0.17993
    assert fills(answers) == [taker(order_id, 1, "0.50", "10", 180_000), taker(order_id, 2, "0.49", "10", 179_930)]


def test_post_only_that_would_cross_is_rejected() -> None:
    venue = Venue()
    ladder(venue)
    order_id, answers = venue.place(BUY, "0.52", "10", post_only=True)
    assert answers == [OrderRejected(cid="c-" + order_id, order_id=order_id, reason="INVALID_POST_ONLY_ORDER")]
    order_id, answers = venue.place(BUY, "0.50", "10", FAK, post_only=True)
    assert answers == [OrderRejected(cid="c-" + order_id, order_id=order_id, reason="INVALID_POST_ONLY_ORDER_TYPE")]
    venue.snapshot(NO, bids=[("0.49", "5")], asks=[("0.70", "5")])  # mirrors a YES ask at 0.51
    order_id, answers = venue.place(BUY, "0.51", "10", post_only=True)
    assert answers == [OrderRejected(cid="c-" + order_id, order_id=order_id, reason="INVALID_POST_ONLY_ORDER")]
    order_id, answers = venue.place(BUY, "0.505", "10", post_only=True)
    assert answers[0].reason == "INVALID_ORDER_MIN_TICK_SIZE"
    order_id, answers = venue.place(BUY, "0.50", "10", post_only=True)
    assert answers == [OrderAccepted(cid="c-" + order_id, order_id=order_id)]


def test_tick_grid_range_and_min_size_rejects_follow_tick_changes() -> None:
    venue = Venue()
    ladder(venue)
    for price, size, reason in [
        ("0.505", "10", "INVALID_ORDER_MIN_TICK_SIZE"),
        ("0", "10", "INVALID_ORDER_MIN_TICK_SIZE"),
        ("0.995", "10", "INVALID_ORDER_MIN_TICK_SIZE"),
        ("1", "10", "INVALID_ORDER_MIN_TICK_SIZE"),
        ("0.50", "4.99", "INVALID_ORDER_MIN_SIZE"),
    ]:
        order_id, answers = venue.place(BUY, price, size)
        assert answers == [OrderRejected(cid="c-" + order_id, order_id=order_id, reason=reason)], price
    venue.feed(TickSizeChange(cid="t", recv_ns=venue.clock.now, market=MARKET.market, token=YES,
                              old_tick=10_000, new_tick=1_000, venue_ts_ms=0))
    order_id, answers = venue.place(BUY, "0.525", "10")
    # Accepted on the new grid; the book is STALE until its next snapshot, so nothing is taken.
    assert answers == [OrderAccepted(cid="c-" + order_id, order_id=order_id)]
    ladder(venue)
    assert fills(venue.responses[-1:]) == [maker(order_id, 1, "0.525", "10")]


def test_duplicate_order_ids_are_rejected() -> None:
    venue = Venue()
    ladder(venue)
    venue.place(BUY, "0.45", "10", order_id="dup")
    _, answers = venue.place(BUY, "0.45", "10", order_id="dup")
    assert answers == [OrderRejected(cid="c-dup", order_id="dup", reason="INVALID_ORDER_DUPLICATED")]


def test_consumed_liquidity_is_not_reused_until_the_feed_restates_the_level() -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.50", "10")], asks=[("0.52", "10"), ("0.60", "10")])
    first, answers = venue.place(BUY, "0.52", "8", FAK)
    assert [f[2] for f in fills(answers)] == [m("8")]
    second, answers = venue.place(BUY, "0.52", "8", FAK)
    assert [f[2] for f in fills(answers)] == [m("2")]
    third, answers = venue.place(BUY, "0.52", "8", FAK)
    assert fills(answers) == [] and isinstance(answers[-1], OrderDone)
    venue.level(YES, SELL, "0.60", "5")  # another level changing forgets nothing at 0.52
    _, answers = venue.place(BUY, "0.52", "8", FAK)
    assert fills(answers) == []
    venue.level(YES, SELL, "0.52", "10")
    _, answers = venue.place(BUY, "0.52", "8", FAK)
    assert [f[2] for f in fills(answers)] == [m("8")]
    venue.snapshot(YES, bids=[("0.50", "10")], asks=[("0.52", "10")])
    _, answers = venue.place(BUY, "0.52", "10", FAK)
    assert [f[2] for f in fills(answers)] == [m("10")]


# --------------------------------------------------------------------------- complete-set crossing


def test_buy_takes_the_complement_bids_through_the_mirror_level_by_level() -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.40", "10")], asks=[("0.56", "50")])
    venue.snapshot(NO, bids=[("0.45", "20"), ("0.43", "30")], asks=[("0.70", "10")])
    order_id, answers = venue.place(BUY, "0.57", "100")
    # 20 x 0.072 x 0.55 x 0.45 = 0.3564; 50 x 0.072 x 0.2464 = 0.887040; 30 x 0.072 x 0.2451 = 0.529416
    assert fills(answers) == [
        taker(order_id, 1, "0.55", "20", 356_400),
        taker(order_id, 2, "0.56", "50", 887_040),
        taker(order_id, 3, "0.57", "30", 529_420),
    ]
    assert venue.gateway.open_orders() == []


def test_sell_takes_the_complement_asks_through_the_mirror() -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.55", "5")], asks=[("0.70", "10")])
    venue.snapshot(NO, bids=[("0.20", "10")], asks=[("0.40", "10")])  # a SELL YES at 0.60
    order_id, answers = venue.place(SELL, "0.55", "20", FAK)
    assert [(f[1], f[2]) for f in fills(answers)] == [(m("0.60"), m("10")), (m("0.55"), m("5"))]


def test_a_level_shown_in_both_books_is_taken_once() -> None:
    venue = Venue()
    # The venue's books mirror: this NO bid at 0.45 is the same liquidity as the YES ask at 0.55.
    venue.snapshot(YES, bids=[("0.40", "10")], asks=[("0.55", "10")])
    venue.snapshot(NO, bids=[("0.45", "10")], asks=[("0.60", "10")])
    _, answers = venue.place(BUY, "0.55", "20", FAK)
    assert [(f[1], f[2]) for f in fills(answers)] == [(m("0.55"), m("10"))]
    _, answers = venue.place(SELL, "0.45", "20", FAK, token=NO)  # hits the same NO bid: gone
    assert fills(answers) == []


def test_a_resting_order_is_crossed_through_the_complement_book() -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.40", "10")], asks=[("0.60", "10")])
    venue.snapshot(NO, bids=[("0.30", "10")], asks=[("0.70", "10")])
    order_id, _ = venue.place(BUY, "0.50", "10")
    assert fills(venue.level(NO, BUY, "0.50", "4")) == [maker(order_id, 1, "0.50", "4")]


# --------------------------------------------------------------------------- latency, cancel, merge


def test_no_answer_before_the_latency_has_passed() -> None:
    venue = Venue()
    ladder(venue)
    venue.submit(BUY, "0.52", "5")
    venue.scheduler.fire_due(T0 + LATENCY - 1)
    assert venue.responses == []
    venue.scheduler.fire_due(T0 + LATENCY)
    assert [type(r) for r in venue.responses] == [OrderAccepted, Fill]
    assert venue.responses[1].ts_ns == T0 + LATENCY


class RecordingScheduler:
    def __init__(self) -> None:
        self.instants: list[int] = []

    def call_at(self, t_ns, callback):  # noqa: ANN001, ANN201
        self.instants.append(t_ns)


def test_jitter_comes_from_the_seeded_rng() -> None:
    def instants(seed: int) -> list[int]:
        scheduler = RecordingScheduler()
        no_markets: dict[str, MarketInfo] = {}
        gateway = PaperGateway(books=Books(NullSink()), markets=no_markets.get, scheduler=scheduler,
                               clock=FakeClock(T0), respond=lambda r: None, rng=random.Random(seed),
                               ack_latency_ns=LATENCY, jitter_ns=1_000_000)
        for k in range(20):
            gateway.send(CancelRequest(cid=f"c{k}", order_id=f"o{k}"))
        return scheduler.instants

    draws = random.Random(5)
    assert instants(5) == [T0 + LATENCY + draws.randrange(1_000_001) for _ in range(20)]
    assert instants(5) == instants(5)
    assert instants(5) != instants(6)


async def test_answers_arrive_on_the_trio_clock_after_the_latency(autojump_clock) -> None:  # noqa: ANN001
    clock = TrioClock(anchor_ns=T0)
    scheduler = Scheduler(clock)
    seen: list[tuple[int, VenueResponse]] = []
    gateway = PaperGateway(books=Books(NullSink()), markets={YES: MARKET, NO: MARKET}.get, scheduler=scheduler,
                           clock=clock, respond=lambda r: seen.append((clock.now_ns(), r)),
                           rng=random.Random(3), ack_latency_ns=LATENCY, jitter_ns=5_000_000)
    gateway.send(MergeRequest(cid="merge", market=MARKET.market, tokens=(YES, NO), size=m("7")))
    await trio.sleep(0.001)  # float-ok: a delay
    gateway.send(CancelRequest(cid="cancel", order_id="nope"))
    await scheduler.fire_until(T0 + 2 * LATENCY)
    draws = random.Random(3)
    merge_at = T0 + LATENCY + draws.randrange(5_000_001)
    cancel_at = T0 + 1_000_000 + LATENCY + draws.randrange(5_000_001)
    assert sorted(seen, key=lambda pair: pair[0]) == seen
    assert dict((r.cid, t) for t, r in seen) == {"merge": merge_at, "cancel": cancel_at}
    assert MergeDone(cid="merge", market=MARKET.market, size=m("7")) in [r for _, r in seen]


def test_cancel_of_a_resting_order_and_of_a_finished_one() -> None:
    venue = Venue()
    ladder(venue)
    resting, _ = venue.place(BUY, "0.45", "10")
    filled, _ = venue.place(BUY, "0.52", "10")
    venue.gateway.send(CancelRequest(cid="x1", order_id=resting))
    venue.gateway.send(CancelRequest(cid="x2", order_id=filled))
    venue.gateway.send(CancelRequest(cid="x3", order_id=resting))
    venue.clock.now += LATENCY - 1
    assert venue.scheduler.fire_due(venue.clock.now) == 0
    assert venue.settle() == [
        OrderDone(cid="x1", order_id=resting, reason="canceled"),
        CancelRejected(cid="x2", order_id=filled, reason="already canceled or matched"),
        CancelRejected(cid="x3", order_id=resting, reason="already canceled or matched"),
    ]
    assert venue.gateway.open_orders() == []
    assert venue.trade(YES, SELL, "0.40", "100") == []  # a cancelled order never fills


# --------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    queue=st.integers(0, 200),
    size=st.integers(5, 100),
    trades=st.lists(st.integers(1, 80), max_size=12),
)
def test_queue_fills_are_exactly_the_volume_past_the_queue(queue: int, size: int, trades: list[int]) -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.50", str(queue))] if queue else [], asks=[("0.60", "10")])
    order_id, _ = venue.place(BUY, "0.50", str(size))
    got = []
    for volume in trades:
        got += fills(venue.trade(YES, SELL, "0.50", str(volume)))
    assert sum(f[2] for f in got) == min(m(str(size)), max(0, m(str(sum(trades))) - m(str(queue))))
    assert [f[0] for f in got] == [f"{order_id}.{k}" for k in range(1, len(got) + 1)]
    assert all(f[2] > 0 for f in got)


@settings(max_examples=40, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.sampled_from([YES, NO]), st.sampled_from([BUY, SELL]), st.integers(30, 70), st.integers(5, 40)),
        max_size=10,
    )
)
def test_taking_never_uses_more_than_the_books_show(orders: list[tuple[str, Side, int, int]]) -> None:
    venue = Venue()
    venue.snapshot(YES, bids=[("0.45", "10"), ("0.40", "10")], asks=[("0.55", "10"), ("0.60", "10")])
    venue.snapshot(NO, bids=[("0.45", "10"), ("0.40", "10")], asks=[("0.55", "10"), ("0.60", "10")])
    for token, side, cents, size in orders:
        venue.place(side, f"0.{cents:02d}", str(size), FAK, token=token)
    # The two books mirror each other exactly (a NO bid at q is the YES ask at 1 - q), so they
    # hold four pools of 10 shares. Charge each fill to the YES-book level it stands for.
    taken: dict[tuple[Side, int], int] = {}
    for r in venue.responses:
        if isinstance(r, Fill):
            assert r.liquidity is Liquidity.TAKER and r.size > 0
            key = (r.side.opposite, r.price) if r.token == YES else (r.side, ONE - r.price)
            taken[key] = taken.get(key, 0) + r.size
    assert all(size <= m("10") for size in taken.values())
