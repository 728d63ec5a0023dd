"""The simulator's matching engine: priority, order types, complete-set crossing, events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from hypothesis import strategies as st

from mmbot.model import ONE, MarketInfo, Side, TimeInForce, taker_fee
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.engine import Engine

BUY, SELL = Side.BUY, Side.SELL
GTC, GTD, FOK, FAK = TimeInForce.GTC, TimeInForce.GTD, TimeInForce.FOK, TimeInForce.FAK
YES, NO = "yes-token", "no-token"
MARKET = "0xmarket"


def c(cents: int) -> int:
    """A price in cents as micro-units."""
    return cents * 10_000


def sh(shares: int) -> int:
    return shares * ONE


def new_engine(fee_rate: int = 0, **kwargs: object) -> Engine:
    engine = Engine(**kwargs)  # type: ignore[arg-type]
    engine.add_market(MarketInfo(market=MARKET, tokens=(YES, NO), fee_rate=fee_rate), now_ns=0)
    engine.take_events()
    return engine


def rest(engine: Engine, owner: str, token: str, side: Side, cents: int, shares: int) -> str:
    result = engine.submit(owner, token, side, c(cents), sh(shares), GTC, False, 1)
    assert result.status == "live", result
    return result.order_id


def of_type(events: list[ev.Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


# --------------------------------------------------------------------------- priority and fills


def test_better_price_first_then_earlier_order_at_the_same_price():
    engine = new_engine()
    late_cheap = rest(engine, "a", YES, SELL, 55, 10)
    first = rest(engine, "b", YES, SELL, 56, 10)
    second = rest(engine, "c", YES, SELL, 56, 10)
    engine.take_events()
    result = engine.submit("t", YES, BUY, c(60), sh(25), FAK, False, 2)
    assert [(t.maker_order_id, t.size, t.taker_price) for t in result.trades] == [
        (late_cheap, sh(10), c(55)),
        (first, sh(10), c(56)),
        (second, sh(5), c(56)),
    ]
    assert engine.book_snapshot(YES) == ((), ((c(56), sh(5)),))
    assert engine.order(second).size_matched == sh(5)
    assert engine.order(first) is None


def test_partial_fill_then_the_rest_of_a_gtc_order_rests_at_its_limit():
    engine = new_engine()
    rest(engine, "m", YES, SELL, 50, 7)
    result = engine.submit("t", YES, BUY, c(52), sh(20), GTC, False, 2)
    assert result.status == "live"
    assert result.size_matched == sh(7)
    assert result.trades[0].taker_price == c(50)  # price improvement goes to the taker
    assert engine.book_snapshot(YES) == (((c(52), sh(13)),), ())
    assert engine.order(result.order_id).size_matched == sh(7)


def test_a_gtc_order_filled_on_arrival_is_matched_and_does_not_rest():
    engine = new_engine()
    rest(engine, "m", YES, BUY, 40, 10)
    result = engine.submit("t", YES, SELL, c(40), sh(10), GTC, False, 2)
    assert (result.status, result.size_matched) == ("matched", sh(10))
    assert engine.book_snapshot(YES) == ((), ())
    ended = of_type(engine.take_events(), ev.OrderEnded)
    assert {e.reason for e in ended} == {ev.EndReason.MATCHED}
    assert len(ended) == 2


def test_fok_fills_completely_or_not_at_all():
    engine = new_engine()
    rest(engine, "m", YES, SELL, 50, 5)
    rest(engine, "m", YES, SELL, 51, 5)
    engine.take_events()
    before = engine.book_snapshot(YES)

    short = engine.submit("t", YES, BUY, c(51), sh(11), FOK, False, 2)
    assert (short.status, short.error) == ("rejected", ev.FOK_ORDER_NOT_FILLED_ERROR)
    assert engine.book_snapshot(YES) == before
    assert engine.take_events() == []

    limited = engine.submit("t", YES, BUY, c(50), sh(10), FOK, False, 3)
    assert limited.error == ev.FOK_ORDER_NOT_FILLED_ERROR  # the 0.51 level is beyond its limit

    full = engine.submit("t", YES, BUY, c(51), sh(10), FOK, False, 4)
    assert (full.status, full.size_matched) == ("matched", sh(10))
    assert engine.book_snapshot(YES) == ((), ())


def test_fak_fills_what_is_there_and_kills_the_rest():
    engine = new_engine()
    rest(engine, "m", YES, BUY, 45, 6)
    engine.take_events()
    result = engine.submit("t", YES, SELL, c(44), sh(10), FAK, False, 2)
    assert (result.status, result.size_matched) == ("matched", sh(6))
    assert engine.book_snapshot(YES) == ((), ())
    killed = [e for e in of_type(engine.take_events(), ev.OrderEnded) if e.order.order_id == result.order_id]
    assert [(e.reason, e.order.size_matched) for e in killed] == [(ev.EndReason.KILLED, sh(6))]
    assert engine.open_orders() == []

    nothing = engine.submit("t", YES, SELL, c(44), sh(10), FAK, False, 3)
    assert (nothing.status, nothing.error) == ("rejected", ev.FAK_ORDER_NOT_FILLED)


# --------------------------------------------------------------------------- rejections


def test_post_only_is_rejected_when_it_would_cross_and_rests_otherwise():
    engine = new_engine()
    rest(engine, "m", YES, SELL, 50, 10)
    crossing = engine.submit("mm", YES, BUY, c(50), sh(5), GTC, True, 2)
    assert (crossing.status, crossing.error) == ("rejected", ev.INVALID_POST_ONLY_ORDER)
    passive = engine.submit("mm", YES, BUY, c(49), sh(5), GTC, True, 3)
    assert passive.status == "live"
    wrong_type = engine.submit("mm", YES, BUY, c(49), sh(5), FAK, True, 4)
    assert wrong_type.error == ev.INVALID_POST_ONLY_ORDER_TYPE


def test_prices_must_sit_on_the_tick_grid_inside_the_range_and_sizes_above_the_minimum():
    engine = new_engine()
    for price in (c(50) + 5_000, 0, c(100), c(1) - 10_000):
        assert engine.submit("u", YES, BUY, price, sh(10), GTC, False, 1).error == ev.INVALID_ORDER_MIN_TICK_SIZE
    assert engine.submit("u", YES, BUY, c(50), sh(4), GTC, False, 1).error == ev.INVALID_ORDER_MIN_SIZE
    assert engine.submit("u", YES, BUY, c(1), sh(5), GTC, False, 1).status == "live"

    engine.set_tick(MARKET, 1_000, now_ns=2)
    assert engine.submit("u", YES, BUY, c(50) + 5_000, sh(10), GTC, False, 3).status == "live"
    tick_events = of_type(engine.take_events(), ev.TickChanged)
    assert [(e.old_tick, e.new_tick, e.tokens) for e in tick_events] == [(10_000, 1_000, (YES, NO))]


def test_closed_or_resolved_markets_refuse_orders_and_resolution_cancels_resting_ones():
    engine = new_engine()
    bid = rest(engine, "m", YES, BUY, 40, 10)
    engine.take_events()
    engine.resolve(MARKET, YES, now_ns=5)
    events = engine.take_events()
    assert [(e.order.order_id, e.reason) for e in of_type(events, ev.OrderEnded)] == [
        (bid, ev.EndReason.MARKET_RESOLVED)
    ]
    assert of_type(events, ev.Resolved)[0].winning_outcome == "Yes"
    assert engine.book_snapshot(YES) == ((), ())
    assert engine.submit("m", YES, BUY, c(40), sh(10), GTC, False, 6).error == ev.MARKET_NOT_READY


def test_duplicate_ids_expiry_and_the_admission_hook():
    refused = []

    def admission(request: ev.OrderRequest) -> str | None:
        if request.owner == "broke":
            refused.append(request)
            return "INVALID_ORDER_NOT_ENOUGH_BALANCE"
        return None

    engine = new_engine(admission=admission)
    assert engine.submit("broke", YES, BUY, c(40), sh(10), GTC, False, 1).error == "INVALID_ORDER_NOT_ENOUGH_BALANCE"
    assert refused[0].price == c(40)

    first = engine.submit("u", YES, BUY, c(40), sh(10), GTC, False, 1, order_id="0xabc")
    assert first.order_id == "0xabc"
    assert engine.submit("u", YES, BUY, c(40), sh(10), GTC, False, 1, order_id="0xabc").error == (
        ev.INVALID_ORDER_DUPLICATED
    )

    assert engine.submit("u", YES, BUY, c(41), sh(10), GTD, False, 10, expires_ns=10).error == (
        ev.INVALID_ORDER_EXPIRATION
    )
    gtd = engine.submit("u", YES, BUY, c(41), sh(10), GTD, False, 10, expires_ns=100)
    engine.take_events()
    engine.expire_due(99)
    assert engine.order(gtd.order_id) is not None
    engine.expire_due(100)
    assert engine.order(gtd.order_id) is None
    assert of_type(engine.take_events(), ev.OrderEnded)[0].reason == ev.EndReason.EXPIRED


def test_cancel_and_cancel_all_report_what_they_did():
    engine = new_engine()
    a = rest(engine, "a", YES, BUY, 40, 10)
    b = rest(engine, "a", NO, BUY, 40, 10)
    other = rest(engine, "b", YES, BUY, 41, 10)
    assert engine.cancel(a, 2).canceled == (a,)
    assert engine.cancel(a, 3).not_canceled == ((a, ev.ALREADY_DONE),)
    assert engine.cancel("0xnope", 3).not_canceled == (("0xnope", ev.UNKNOWN_ORDER),)
    assert engine.cancel_all("a", 4).canceled == (b,)
    assert [o.order_id for o in engine.open_orders()] == [other]


# --------------------------------------------------------------------------- complete sets


def test_an_incoming_buy_mints_against_the_complements_bid_at_the_better_price_first():
    engine = new_engine(fee_rate=72_000)
    no_bid = rest(engine, "m1", NO, BUY, 45, 10)  # a YES buyer can pay 1 - 0.45 = 0.55
    yes_ask = rest(engine, "m2", YES, SELL, 56, 10)
    engine.take_events()
    result = engine.submit("t", YES, BUY, c(60), sh(15), FAK, False, 2)
    mint, direct = result.trades
    assert (mint.kind, mint.maker_order_id, mint.maker_token, mint.maker_side) == (ev.MatchKind.MINT, no_bid, NO, BUY)
    assert (mint.taker_price, mint.maker_price, mint.size) == (c(55), c(45), sh(10))
    assert mint.taker_fee == taker_fee(sh(10), c(55), 72_000, 1) > 0
    assert (direct.kind, direct.maker_order_id, direct.taker_price, direct.size) == (
        ev.MatchKind.DIRECT, yes_ask, c(56), sh(5)
    )
    assert engine.book_snapshot(NO) == ((), ())
    assert engine.last_trade_price(NO) == c(45)


def test_an_incoming_sell_merges_against_the_complements_ask():
    engine = new_engine()
    no_ask = rest(engine, "m1", NO, SELL, 40, 10)  # a YES seller can get 1 - 0.40 = 0.60
    rest(engine, "m2", YES, BUY, 58, 10)
    result = engine.submit("t", YES, SELL, c(55), sh(10), FOK, False, 2)
    (merge,) = result.trades
    assert (merge.kind, merge.maker_order_id, merge.taker_price, merge.maker_side) == (
        ev.MatchKind.MERGE, no_ask, c(60), SELL
    )
    assert engine.book_snapshot(YES) == (((c(58), sh(10)),), ())


def test_a_price_tie_between_direct_and_complement_goes_to_the_direct_level():
    engine = new_engine()
    rest(engine, "m1", NO, BUY, 45, 10)
    direct = rest(engine, "m2", YES, SELL, 55, 10)
    result = engine.submit("t", YES, BUY, c(55), sh(5), FAK, False, 2)
    assert [(t.kind, t.maker_order_id) for t in result.trades] == [(ev.MatchKind.DIRECT, direct)]


def test_resting_orders_do_not_cross_with_the_complement_the_documented_simplification():
    engine = new_engine()
    rest(engine, "m1", NO, BUY, 45, 10)
    result = engine.submit("m2", YES, BUY, c(60), sh(10), GTC, False, 2)  # bids now sum to 1.05
    assert (result.status, result.trades) == ("live", ())
    assert engine.best(YES)[0] + engine.best(NO)[0] == c(105)


# --------------------------------------------------------------------------- events


def test_level_changes_carry_the_tokens_top_of_book_after_each_change():
    engine = new_engine()
    rest(engine, "a", YES, BUY, 40, 10)
    rest(engine, "b", YES, SELL, 60, 10)
    engine.take_events()
    rest(engine, "c", YES, BUY, 42, 5)
    engine.submit("t", YES, SELL, c(41), sh(5), FAK, False, 3)
    changes = of_type(engine.take_events(), ev.LevelChanged)
    assert [(e.side, e.price, e.size, e.best_bid, e.best_ask) for e in changes] == [
        (BUY, c(42), sh(5), c(42), c(60)),
        (BUY, c(42), 0, c(40), c(60)),
    ]


# --------------------------------------------------------------------------- random flow


def _rebuild(books: dict, change: ev.LevelChanged) -> None:
    side = books.setdefault(change.token, ({}, {}))[0 if change.side is BUY else 1]
    if change.size:
        side[change.price] = change.size
    else:
        side.pop(change.price, None)


def _as_snapshot(books: dict, token: str) -> tuple:
    bids, asks = books.get(token, ({}, {}))
    return tuple(sorted(bids.items(), reverse=True)), tuple(sorted(asks.items()))


submits = st.tuples(
    st.just("submit"),
    st.sampled_from(["o1", "o2", "o3"]),
    st.sampled_from([YES, NO]),
    st.sampled_from([BUY, SELL]),
    st.integers(30, 70),  # cents
    st.integers(1, 30),  # shares (below 5 gets rejected, which must change nothing)
    st.sampled_from([GTC, GTC, FOK, FAK]),
    st.booleans(),
)
cancels = st.tuples(st.just("cancel"), st.integers(0, 40))
cancel_alls = st.tuples(st.just("cancel_all"), st.sampled_from(["o1", "o2", "o3"]))
fine_ticks = st.tuples(st.just("tick"), st.sampled_from([1_000, 10_000]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(submits, submits, submits, cancels, cancel_alls, fine_ticks), max_size=60))
def test_books_rebuilt_from_events_equal_the_engines_and_are_never_crossed(ops):
    engine = new_engine(fee_rate=40_000)
    books: dict = {}
    submitted: list[str] = []
    for now, op in enumerate(ops, start=1):
        if op[0] == "submit":
            _, owner, token, side, cents, shares, tif, post_only = op
            result = engine.submit(owner, token, side, c(cents), sh(shares), tif, post_only, now)
            submitted.append(result.order_id)
            assert result.size_matched == sum(t.size for t in result.trades)
            for trade in result.trades:
                limit = c(cents)
                assert trade.taker_price <= limit if side is BUY else trade.taker_price >= limit
                direct = trade.kind is ev.MatchKind.DIRECT
                assert trade.taker_price == (trade.maker_price if direct else ONE - trade.maker_price)
        elif op[0] == "cancel" and submitted:
            engine.cancel(submitted[op[1] % len(submitted)], now)
        elif op[0] == "cancel_all":
            engine.cancel_all(op[1], now)
        elif op[0] == "tick":
            engine.set_tick(MARKET, op[1], now)
        for event in engine.take_events():
            if isinstance(event, ev.LevelChanged):
                _rebuild(books, event)
                bids, asks = books[event.token]
                assert event.best_bid == (max(bids) if bids else None)
                assert event.best_ask == (min(asks) if asks else None)
        for token in (YES, NO):
            assert _as_snapshot(books, token) == engine.book_snapshot(token)
            best_bid, best_ask = engine.best(token)
            assert best_bid is None or best_ask is None or best_bid < best_ask
        resting = sum(o.original_size - o.size_matched for o in engine.open_orders())
        on_books = sum(size for token in (YES, NO) for side in engine.book_snapshot(token) for _, size in side)
        assert resting == on_books


# --------------------------------------------------------------------------- what a long run forgets


def test_ended_ids_are_known_until_forgotten_and_the_engines_own_ids_are_never_stored():
    engine = new_engine()
    engine.submit("a", YES, BUY, c(40), sh(10), GTC, False, 1, order_id="0xsigned")
    assert engine.cancel("0xsigned", 2).canceled == ("0xsigned",)
    again = engine.submit("a", YES, BUY, c(40), sh(10), GTC, False, 3, order_id="0xsigned")
    assert again.error == ev.INVALID_ORDER_DUPLICATED
    assert engine.cancel("0xsigned", 3).not_canceled == (("0xsigned", ev.ALREADY_DONE),)
    own = rest(engine, "b", YES, BUY, 30, 10)
    engine.cancel(own, 4)
    rest(engine, "c", YES, BUY, 30, 10)
    assert engine.submit("t", YES, SELL, c(30), sh(5), FAK, False, 5, order_id="0xkilled").status == "matched"
    assert engine.sizes()["ended_ids"] == 2  # the signed ones; the engine's own is known by its number
    assert engine.cancel(own, 6).not_canceled == ((own, ev.ALREADY_DONE),)
    assert engine.cancel(f"0x{10**6:064x}", 6).not_canceled == ((f"0x{10**6:064x}", ev.UNKNOWN_ORDER),)
    assert engine.forget_ended(3) == 1  # ended before 3: the first only
    assert engine.cancel("0xsigned", 7).not_canceled == (("0xsigned", ev.UNKNOWN_ORDER),)
    assert engine.cancel("0xkilled", 7).not_canceled == (("0xkilled", ev.ALREADY_DONE),)
    assert engine.sizes()["owners"] == 1  # only "c" rests: no empty per-owner index is kept


def test_a_resolved_market_can_be_forgotten_and_a_trading_one_cannot():
    engine = new_engine()
    other = MarketInfo(market="0xother", tokens=("o-yes", "o-no"))
    engine.add_market(other, 0)
    rest(engine, "a", YES, BUY, 40, 10)
    try:
        engine.forget_market(MARKET)
        raise AssertionError("an open market was forgotten")
    except ValueError:
        pass
    engine.resolve(MARKET, YES, 10)
    assert engine.resolved_before(10) == [] and engine.resolved_before(11) == [MARKET]
    engine.forget_market(MARKET)
    assert not engine.has_token(YES) and [m.market for m in engine.markets()] == ["0xother"]
    assert engine.listing_number("0xother") == 1  # listing numbers (market ids) do not move
    assert engine.sizes() == {"markets": 1, "books": 2, "resting": 0, "owners": 0, "ended_ids": 0, "expiries": 0}


class OrderRegister(RuleBasedStateMachine):
    """Orders submitted, cancelled, expired and forgotten in any order: the per-owner index always
    equals the resting orders filtered by owner, an owner without resting orders has no entry, and
    an id is refused as a duplicate exactly while it rests or its end is remembered."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = new_engine()
        self.now = 1
        self.ended: dict[str, int] = {}  # signed ids that ended -> when (the model)
        self.signed = 0

    @rule(owner=st.sampled_from("abc"), side=st.sampled_from((BUY, SELL)), cents=st.integers(30, 70),
          signed=st.booleans(), tif=st.sampled_from((GTC, GTD, FAK)))
    def submit(self, owner: str, side: Side, cents: int, signed: bool, tif: TimeInForce) -> None:
        self.now += 1
        self.signed += signed
        order_id = f"signed-{self.signed}" if signed else None
        result = self.engine.submit(owner, YES, side, c(cents), sh(5), tif, False, self.now,
                                    expires_ns=self.now + 3 if tif is GTD else None, order_id=order_id)
        if signed and result.status == "matched":
            self.ended[result.order_id] = self.now

    @precondition(lambda self: self.engine.open_orders())
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.now += 1
        order = data.draw(st.sampled_from(self.engine.open_orders()))
        self.engine.cancel(order.order_id, self.now)
        if order.order_id.startswith("signed-"):
            self.ended[order.order_id] = self.now

    @rule(back=st.integers(0, 5))
    def forget(self, back: int) -> None:
        before = self.now - back
        self.engine.forget_ended(before)
        self.ended = {k: t for k, t in self.ended.items() if t >= before}

    @rule()
    def time_passes(self) -> None:
        self.now += 2
        for event in self.engine.take_events():
            if isinstance(event, ev.OrderEnded) and event.order.order_id.startswith("signed-"):
                self.ended.setdefault(event.order.order_id, event.ts_ns)
        self.engine.expire_due(self.now)

    @invariant()
    def indices_agree(self) -> None:
        everyone = self.engine.open_orders()
        owners = {o.owner for o in everyone}
        for owner in "abc":
            assert self.engine.open_orders(owner=owner) == [o for o in everyone if o.owner == owner]
        assert self.engine.sizes()["owners"] == len(owners)

    @invariant()
    def duplicates_are_refused_while_remembered(self) -> None:
        for event in self.engine.take_events():  # fills of makers end them too
            if isinstance(event, ev.OrderEnded) and event.order.order_id.startswith("signed-"):
                self.ended.setdefault(event.order.order_id, event.ts_ns)
        resting = {o.order_id for o in self.engine.open_orders()}
        for n in range(1, self.signed + 1):
            order_id = f"signed-{n}"
            remembered = order_id in resting or order_id in self.ended
            reason = self.engine.cancel(order_id, self.now).not_canceled if order_id not in resting else ()
            if order_id not in resting:
                assert reason == ((order_id, ev.ALREADY_DONE if remembered else ev.UNKNOWN_ORDER),)


TestOrderRegister = OrderRegister.TestCase
TestOrderRegister.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
