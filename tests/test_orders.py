"""Order lifecycle: every table entry, every pair outside it, cancel rejections, fills, and random sequences."""

from __future__ import annotations

import collections
import itertools

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from mmbot.decisions.orders import (
    RETURNS_TO_PREVIOUS,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    Order,
    OrderEvent,
    Orders,
    OrdersStatistics,
    OrderStatus,
    Overfill,
    is_legal,
)
from mmbot.model import ONE, Side, TimeInForce, notional

S, E = OrderStatus, OrderEvent
NOW = 1_700_000_000 * 10**9


def _place(orders: Orders, order_id: str = "o1", **overrides: object) -> Order:
    fields = dict(
        order_id=order_id, cid=f"c-{order_id}", strategy="maker", market="M", token="Y",
        side=Side.BUY, price=400_000, size=10 * ONE, tif=TimeInForce.GTC, post_only=True, created_ns=1,
    )
    fields.update(overrides)
    return orders.new(**fields)  # type: ignore[arg-type]


def _path_to(target: OrderStatus) -> list[OrderEvent]:
    """The shortest list of table events leading from PENDING_SUBMIT to ``target``."""
    paths = {S.PENDING_SUBMIT: []}
    queue = collections.deque([S.PENDING_SUBMIT])
    while queue:
        status = queue.popleft()
        for (source, event), nxt in TRANSITIONS.items():
            if source is status and nxt not in paths:
                paths[nxt] = paths[status] + [event]
                queue.append(nxt)
    return paths[target]


def _order_in(status: OrderStatus) -> tuple[Orders, Order]:
    orders = Orders()
    order = _place(orders)
    for event in _path_to(status):
        orders.transition(order.order_id, event, now_ns=NOW)
    assert order.status is status
    return orders, order


def test_every_status_is_reachable_and_only_terminal_ones_accept_nothing() -> None:
    for status in OrderStatus:
        _path_to(status)
    assert {s for s in OrderStatus if not any(src is s for src, _ in TRANSITIONS)} == TERMINAL


OPEN = frozenset(OrderStatus) - TERMINAL


def test_the_table_read_by_event_says_where_each_event_may_arrive_and_leads() -> None:
    """The same lifecycle written column by column, so a lost, stray or changed row shows up."""
    unchanged = object()
    columns: dict[OrderEvent, dict[OrderStatus, object]] = {
        E.ACCEPTED: {S.PENDING_SUBMIT: S.LIVE, S.UNKNOWN: S.LIVE, S.PARTIALLY_FILLED: unchanged,
                     S.PENDING_CANCEL: unchanged},
        E.REJECTED: dict.fromkeys([S.PENDING_SUBMIT, S.UNKNOWN, S.PENDING_CANCEL], S.REJECTED),
        # a fill may arrive whenever the order could still be at the venue
        E.PARTIAL_FILL: {s: (unchanged if s is S.PENDING_CANCEL else S.PARTIALLY_FILLED) for s in OPEN},
        E.FILLED: dict.fromkeys(OPEN, S.FILLED),
        E.CANCEL_REQUESTED: dict.fromkeys(OPEN, S.PENDING_CANCEL),
        E.CANCEL_CONFIRMED: dict.fromkeys([S.PENDING_CANCEL, S.UNKNOWN], S.CANCELED),
        E.DONE: {s: (S.CANCELED if s is S.PENDING_CANCEL else S.EXPIRED) for s in OPEN},
        E.OUTCOME_UNKNOWN: {S.PENDING_SUBMIT: S.UNKNOWN, S.PENDING_CANCEL: S.UNKNOWN,
                            S.UNKNOWN: unchanged, S.PARTIALLY_FILLED: unchanged},
    }
    rebuilt = {
        (status, event): status if target is unchanged else target
        for event, column in columns.items()
        for status, target in column.items()
    }
    assert rebuilt == TRANSITIONS
    assert {s for s in OrderStatus if is_legal(s, E.CANCEL_REJECTED)} == {S.PENDING_CANCEL}


@pytest.mark.parametrize(("pair", "target"), sorted(TRANSITIONS.items(), key=str), ids=str)
def test_every_listed_transition_works(pair: tuple[OrderStatus, OrderEvent], target: OrderStatus) -> None:
    status, event = pair
    orders, order = _order_in(status)
    assert orders.transition(order.order_id, event, now_ns=NOW) is target
    assert order.status is target
    assert order.is_open is (target not in TERMINAL)
    assert (order in orders.open_orders()) is order.is_open
    assert orders.open_count() == (1 if order.is_open else 0)


@pytest.mark.parametrize(
    ("pair"), [p for p in itertools.product(OrderStatus, OrderEvent) if not is_legal(*p)], ids=str
)
def test_every_unlisted_pair_raises_and_changes_nothing(pair: tuple[OrderStatus, OrderEvent]) -> None:
    status, event = pair
    orders, order = _order_in(status)
    before = attrs.asdict(order)
    with pytest.raises(IllegalTransition):
        orders.transition(order.order_id, event, now_ns=NOW)
    assert attrs.asdict(order) == before


@pytest.mark.parametrize("status", [S.PENDING_SUBMIT, S.LIVE, S.PARTIALLY_FILLED, S.UNKNOWN])
def test_a_refused_cancel_returns_to_the_status_before_it(status: OrderStatus) -> None:
    orders, order = _order_in(status)
    orders.transition(order.order_id, E.CANCEL_REQUESTED, now_ns=NOW)
    orders.transition(order.order_id, E.CANCEL_REQUESTED, now_ns=NOW)  # asked twice: still one way back
    assert orders.transition(order.order_id, E.CANCEL_REJECTED, now_ns=NOW) is status
    assert RETURNS_TO_PREVIOUS == {(S.PENDING_CANCEL, E.CANCEL_REJECTED)}


@pytest.mark.parametrize(
    ("start", "meanwhile", "back_to"),
    [
        (S.PENDING_SUBMIT, [E.ACCEPTED], S.LIVE),
        (S.UNKNOWN, [E.ACCEPTED], S.LIVE),
        (S.LIVE, [E.PARTIAL_FILL], S.PARTIALLY_FILLED),
        (S.PENDING_SUBMIT, [E.PARTIAL_FILL, E.ACCEPTED], S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, [E.ACCEPTED], S.PARTIALLY_FILLED),
    ],
)
def test_a_refused_cancel_returns_to_where_the_order_moved_on_to(
    start: OrderStatus, meanwhile: list[OrderEvent], back_to: OrderStatus
) -> None:
    orders, order = _order_in(start)
    orders.transition(order.order_id, E.CANCEL_REQUESTED, now_ns=NOW)
    for event in meanwhile:
        assert orders.transition(order.order_id, event, now_ns=NOW) is S.PENDING_CANCEL
    assert orders.transition(order.order_id, E.CANCEL_REJECTED, now_ns=NOW) is back_to


def test_record_fill_counts_size_and_completes_the_order() -> None:
    orders = Orders()
    order = _place(orders, size=10 * ONE)
    assert orders.record_fill("o1", 4 * ONE, now_ns=NOW) is S.PARTIALLY_FILLED  # before the acknowledgement
    assert orders.transition("o1", E.ACCEPTED, now_ns=NOW) is S.PARTIALLY_FILLED
    assert order.remaining == 6 * ONE
    before = attrs.asdict(order)
    with pytest.raises(Overfill):
        orders.record_fill("o1", 6 * ONE + 1, now_ns=NOW)
    assert attrs.asdict(order) == before
    assert orders.record_fill("o1", 6 * ONE, now_ns=NOW) is S.FILLED
    assert order.filled == order.size and not order.is_open
    with pytest.raises(IllegalTransition):
        orders.record_fill("o1", 1, now_ns=NOW)
    with pytest.raises(ValueError):
        orders.record_fill("o1", 0, now_ns=NOW)


def test_a_late_fill_for_a_cancelled_order_raises_and_leaves_it_cancelled() -> None:
    orders, order = _order_in(S.LIVE)
    orders.transition(order.order_id, E.CANCEL_REQUESTED, now_ns=NOW)
    assert orders.record_fill(order.order_id, ONE, now_ns=NOW) is S.PENDING_CANCEL  # the fill raced the cancel
    orders.transition(order.order_id, E.CANCEL_CONFIRMED, now_ns=NOW)
    with pytest.raises(IllegalTransition):
        orders.record_fill(order.order_id, ONE, now_ns=NOW)
    assert order.status is S.CANCELED and order.filled == ONE


def test_open_orders_filter_in_creation_order_and_sum_open_buys() -> None:
    orders = Orders()
    _place(orders, "a", token="Y", price=333_333, size=3)
    _place(orders, "b", token="N", strategy="taker", side=Side.SELL)
    _place(orders, "c", token="Y", market="M2", size=5 * ONE)
    _place(orders, "d", token="Y")
    orders.transition("d", E.REJECTED, now_ns=NOW)
    orders.record_fill("c", 2 * ONE, now_ns=NOW)
    assert [o.order_id for o in orders.open_orders()] == ["a", "b", "c"]
    assert [o.order_id for o in orders.open_orders(token="Y")] == ["a", "c"]
    assert [o.order_id for o in orders.open_orders(market="M", strategy="taker")] == ["b"]
    assert orders.open_count() == 3
    assert orders.open_buy_notional() == notional(333_333, 3) + notional(400_000, 3 * ONE) == 1 + 1_200_000
    assert orders.open_shares("Y", Side.BUY) == 3 + 3 * ONE
    assert orders.prune(NOW, 0) == ["d"] and orders.get("d") is None and orders.get("a") is not None
    with pytest.raises(ValueError):
        _place(orders, "a")


# --------------------------------------------------------------------------- ends and pruning


def test_an_order_remembers_when_it_ended_and_is_forgotten_a_horizon_later() -> None:
    orders = Orders()
    for order_id in "abcde":
        _place(orders, order_id)
    orders.transition("b", E.REJECTED, now_ns=10)
    orders.transition("c", E.ACCEPTED, now_ns=12)
    assert orders.get("c").ended_ns is None  # open: no end yet
    orders.transition("c", E.DONE, now_ns=20)
    orders.record_fill("e", 10 * ONE, now_ns=25)  # the fill that completes it ends it
    orders.transition("d", E.CANCEL_REQUESTED, now_ns=26)
    orders.transition("d", E.DONE, now_ns=30)
    assert [orders.get(oid).ended_ns for oid in "bcde"] == [10, 20, 30, 25]

    assert orders.prune(34, 10) == ["b", "c"]  # ended at least 10 ago, in the order they ended
    assert orders.prune(35, 10) == ["e"]  # ended exactly the horizon ago
    assert [oid for oid in "abcde" if orders.get(oid) is not None] == ["a", "d"]
    assert orders.statistics() == OrdersStatistics(orders_remembered=2, orders_open=1, orders_pruned=3)
    assert orders.prune(10**30, 0) == ["d"]  # however late, the open order stays
    assert orders.get("a") is not None and orders.open_count() == 1 and orders.prune(10**30, 0) == []
    orders.check()
    with pytest.raises(ValueError):  # a forgotten order's id is still never reused: ids come from a counter,
        _place(orders, "a")  # and an id in use is refused as before


# --------------------------------------------------------------------------- random sequences

actions = st.lists(
    st.one_of(
        st.sampled_from(OrderEvent).map(lambda e: ("event", e)),
        st.integers(1, 6).map(lambda n: ("fill", n)),  # fill sizes in shares of an order of 10
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_random_sequences_follow_the_table_or_change_nothing(steps: list[tuple[str, object]]) -> None:
    orders = Orders()
    order = _place(orders, size=10)
    before_cancel: OrderStatus | None = None
    filled_while_cancelling = accepted_while_cancelling = False
    for kind, value in steps:
        status, snapshot = order.status, attrs.asdict(order)
        if kind == "fill":
            assert isinstance(value, int)
            event = E.FILLED if order.filled + value == order.size else E.PARTIAL_FILL
            call = lambda: orders.record_fill(order.order_id, value, now_ns=NOW)  # noqa: E731
            legal = order.filled + value <= order.size and is_legal(status, event)
        else:
            assert isinstance(value, OrderEvent)
            event = value
            call = lambda: orders.transition(order.order_id, event, now_ns=NOW)  # noqa: E731
            legal = is_legal(status, event)
        if not legal:
            with pytest.raises(IllegalTransition):
                call()
            assert attrs.asdict(order) == snapshot
            continue
        result = call()
        if (status, event) in RETURNS_TO_PREVIOUS:
            assert before_cancel is not None
            expected = before_cancel
            if filled_while_cancelling:
                expected = S.PARTIALLY_FILLED
            elif accepted_while_cancelling and before_cancel in (S.PENDING_SUBMIT, S.UNKNOWN):
                expected = S.LIVE
        else:
            expected = TRANSITIONS[status, event]
        assert result is expected is order.status
        if status is not S.PENDING_CANCEL and expected is S.PENDING_CANCEL:
            before_cancel, filled_while_cancelling, accepted_while_cancelling = status, False, False
        elif status is S.PENDING_CANCEL:
            filled_while_cancelling |= event is E.PARTIAL_FILL
            accepted_while_cancelling |= event is E.ACCEPTED
        if kind == "fill":
            assert order.filled == snapshot["filled"] + value
        assert 0 <= order.filled <= order.size
        assert order.is_open is (order in orders.open_orders())
        if status in TERMINAL:
            raise AssertionError(f"{status} accepted {event}")


# --------------------------------------------------------------------------- indexes

index_steps = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.sampled_from(["M1", "M2"]), st.sampled_from(["Y", "N"]),
                  st.sampled_from(Side), st.integers(1, 999_999), st.integers(1, 10 * ONE)),
        st.tuples(st.just("event"), st.integers(0, 30), st.sampled_from(OrderEvent)),
        st.tuples(st.just("fill"), st.integers(0, 30), st.integers(1, 5 * ONE)),
        st.tuples(st.just("later"), st.integers(0, 5)),
        st.tuples(st.just("prune"), st.integers(0, 8)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(index_steps)
def test_open_order_indexes_and_buy_notional_always_equal_a_full_scan(steps: list[tuple]) -> None:
    """Pruning at any point forgets exactly the orders ended at least the horizon ago."""
    orders = Orders()
    ids: list[str] = []
    now = NOW
    for step in steps:
        if step[0] == "new":
            _, market, token, side, price, size = step
            ids.append(f"o{len(ids)}")
            _place(orders, ids[-1], market=market, token=f"{market}{token}", side=side, price=price, size=size)
        elif step[0] == "later":
            now += step[1]
        elif step[0] == "prune":
            remembered = {oid: orders.get(oid) for oid in ids if orders.get(oid) is not None}
            open_before = orders.open_orders()
            pruned = orders.prune(now, step[1])
            assert orders.open_orders() == open_before
            assert all(remembered[oid].ended_ns <= now - step[1] for oid in pruned)
            assert sorted(pruned) == sorted(
                oid for oid, order in remembered.items() if not order.is_open and order.ended_ns <= now - step[1]
            )
            assert all(orders.get(oid) is None for oid in pruned)
        elif ids and orders.get(order_id := ids[step[1] % len(ids)]) is not None:
            try:
                if step[0] == "event":
                    orders.transition(order_id, step[2], now_ns=now)
                else:
                    orders.record_fill(order_id, step[2], now_ns=now)
            except IllegalTransition:
                pass
        orders.check()
        for market in ("M1", "M2"):
            scan = [o for o in orders.open_orders() if o.market == market and o.strategy == "maker"]
            assert orders.open_orders(market=market, strategy="maker") == scan
            for token in (f"{market}Y", f"{market}N"):
                assert orders.open_orders(token=token) == [o for o in orders.open_orders() if o.token == token]
                for side in Side:
                    assert orders.open_shares(token, side) == sum(
                        o.remaining for o in orders.open_orders() if o.token == token and o.side is side
                    )
