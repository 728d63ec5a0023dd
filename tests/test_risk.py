"""Risk: each limit accepts at its bound and rejects one micro-unit (or one order) past it."""

from __future__ import annotations

from typing import Any, Callable

import attrs
import pytest

from mmbot.config import RiskConfig
from mmbot.decisions.risk import Risk, RiskView, Verdict
from mmbot.model import ONE, BookState, MarketInfo, PlaceOrder, Side, TimeInForce

S_NS = 1_000_000_000
END_NS = 10_000 * S_NS
NOW_NS = END_NS - 100 * S_NS
MARKET = MarketInfo(market="M", tokens=("Y", "N"), tick=10_000, min_size=5 * ONE, end_ns=END_NS)
CONFIG = RiskConfig(
    max_position_per_token=100 * ONE,
    max_position_per_market=150 * ONE,
    max_gross_exposure=1_000 * ONE,
    max_open_orders=5,
    max_order_notional=50 * ONE,
    max_daily_loss=20 * ONE,
    min_edge=5_000,
    end_buffer_s=30,
)


@attrs.define
class View:
    positions: dict[str, int] = attrs.Factory(dict)
    open: int = 0
    open_buys: dict[str, int] = attrs.Factory(dict)
    gross: int = 0
    pnl: int = 0
    books: dict[str, BookState] = attrs.Factory(lambda: {"Y": BookState.SYNCED, "N": BookState.SYNCED})
    markets: dict[str, MarketInfo] = attrs.Factory(lambda: {"M": MARKET})

    def position(self, token: str) -> int:
        return self.positions.get(token, 0)

    def open_orders(self) -> int:
        return self.open

    def open_buy_shares(self, token: str) -> int:
        return self.open_buys.get(token, 0)

    def gross_exposure(self) -> int:
        return self.gross

    def daily_pnl(self) -> int:
        return self.pnl

    def book_state(self, token: str) -> BookState | None:
        return self.books.get(token)

    def market(self, market: str) -> MarketInfo | None:
        return self.markets.get(market)


def order(side: Side = Side.BUY, **fields: Any) -> PlaceOrder:
    values: dict[str, Any] = dict(
        cid="c1", cause="f1", strategy="taker", market="M", token="Y", side=side,
        price=500_000, size=10 * ONE, tif=TimeInForce.FAK,
    )
    values.update(fields)
    return PlaceOrder(**values)


def verdict(intent: PlaceOrder, view: RiskView | None = None, now_ns: int = NOW_NS) -> Verdict:
    return Risk(CONFIG).check(intent, view or View(), now_ns)


def reason(intent: PlaceOrder, view: RiskView | None = None, now_ns: int = NOW_NS) -> str:
    return verdict(intent, view, now_ns).reason


def test_an_ordinary_order_is_accepted() -> None:
    assert verdict(order()) == Verdict(accepted=True, reason="ok")
    assert verdict(order(token="N", pair_cost=None)).accepted


def test_the_kill_switch_stops_every_order_until_released() -> None:
    risk = Risk(CONFIG)
    risk.engage("operator")
    held = View(positions={"Y": 50 * ONE})
    assert risk.check(order(), held, NOW_NS) == Verdict(accepted=False, reason="kill_switch")
    assert risk.check(order(Side.SELL), held, NOW_NS).reason == "kill_switch"
    assert risk.kill_reason == "operator"
    risk.release()
    assert risk.check(order(Side.SELL), held, NOW_NS).accepted
    assert risk.rejections == {"kill_switch": 2}


def test_unknown_markets_and_tokens() -> None:
    assert reason(order(market="X")) == "unknown_market"
    assert reason(order(token="Z")) == "unknown_token"


@pytest.mark.parametrize(
    ("state", "code"),
    [(None, "book_empty"), (BookState.EMPTY, "book_empty"), (BookState.STALE, "book_stale"),
     (BookState.CROSSED, "book_crossed")],
)
def test_only_synced_books_are_traded(state: BookState | None, code: str) -> None:
    books = {"N": BookState.SYNCED} | ({} if state is None else {"Y": state})
    held = View(positions={"Y": 50 * ONE}, books=books)
    assert reason(order(), held) == code
    assert reason(order(Side.SELL), held) == code
    assert reason(order(token="N"), held) == "ok"


def test_no_new_orders_from_end_minus_buffer() -> None:
    last_ok = END_NS - 30 * S_NS - 1
    assert reason(order(), now_ns=last_ok) == "ok"
    assert reason(order(), now_ns=last_ok + 1) == "market_ending"
    endless = View(markets={"M": attrs.evolve(MARKET, end_ns=None)})
    assert reason(order(), endless, now_ns=END_NS * 2) == "ok"


@pytest.mark.parametrize(
    ("price", "code"),
    [(10_000, "ok"), (990_000, "ok"), (0, "invalid_tick"), (ONE, "invalid_tick"),
     (505_000, "invalid_tick"), (500_001, "invalid_tick"), (-10_000, "invalid_tick")],
)
def test_prices_must_be_on_the_grid_within_one_tick_of_the_ends(price: int, code: str) -> None:
    assert reason(order(price=price)) == code


def test_min_size_is_allowed_one_micro_less_is_not() -> None:
    assert reason(order(size=5 * ONE)) == "ok"
    assert reason(order(size=5 * ONE - 1)) == "below_min_size"


def test_order_notional_may_reach_the_limit() -> None:
    assert reason(order(size=100 * ONE)) == "ok"  # 0.5 × 100 = 50 pUSD exactly
    assert reason(order(size=100 * ONE + 1)) == "max_order_notional"  # 50.0000005 rounds up past it


def test_min_edge_is_inclusive() -> None:
    assert reason(order(pair_cost=ONE - 5_000)) == "ok"
    assert reason(order(pair_cost=ONE - 4_999)) == "min_edge"


def test_open_orders_may_reach_the_limit() -> None:
    assert reason(order(), View(open=4)) == "ok"
    assert reason(order(), View(open=5)) == "max_open_orders"


def test_a_loss_of_exactly_the_limit_blocks_buys_but_not_reducing_sells() -> None:
    assert reason(order(), View(pnl=-20 * ONE + 1)) == "ok"
    assert reason(order(), View(pnl=-20 * ONE)) == "max_daily_loss"
    assert reason(order(Side.SELL), View(pnl=-20 * ONE, positions={"Y": 10 * ONE})) == "ok"


def test_token_position_may_reach_the_limit_counting_open_buys() -> None:
    view = View(positions={"Y": 60 * ONE}, open_buys={"Y": 30 * ONE})
    assert reason(order(size=10 * ONE), view) == "ok"
    assert reason(order(size=10 * ONE + 1), view) == "max_position_token"


def test_market_position_may_reach_the_limit_over_both_tokens() -> None:
    view = View(positions={"Y": 60 * ONE, "N": 50 * ONE}, open_buys={"N": 30 * ONE})
    assert reason(order(size=10 * ONE), view) == "ok"
    view.open_buys["N"] += 1
    assert reason(order(size=10 * ONE), view) == "max_position_market"


def test_gross_exposure_may_reach_the_limit() -> None:
    assert reason(order(), View(gross=995 * ONE)) == "ok"  # + 0.5 × 10 = 1000 exactly
    assert reason(order(), View(gross=995 * ONE + 1)) == "max_gross_exposure"


def test_sells_that_reduce_a_position_pass_the_position_and_exposure_limits() -> None:
    over_everything = View(positions={"Y": 200 * ONE, "N": 200 * ONE}, gross=5_000 * ONE, pnl=-500 * ONE)
    assert reason(order(), over_everything) == "max_daily_loss"
    assert reason(order(Side.SELL, size=10 * ONE), over_everything) == "ok"
    assert reason(order(Side.SELL, size=10 * ONE), View(positions={"Y": 10 * ONE})) == "ok"
    assert reason(order(Side.SELL, size=10 * ONE), View(positions={"Y": 10 * ONE - 1})) == "sell_exceeds_position"


def test_the_first_failing_rule_decides() -> None:
    """Break every rule at once, then repair them one by one in the documented order."""
    view = View(
        positions={"Y": 100 * ONE, "N": 60 * ONE}, open=5, gross=2_000 * ONE, pnl=-50 * ONE,
        books={"Y": BookState.STALE, "N": BookState.SYNCED},
    )
    risk = Risk(CONFIG)
    risk.engage("test")
    fields: dict[str, Any] = dict(market="X", price=505_000, size=4 * ONE, pair_cost=ONE)
    now = END_NS
    repairs: list[tuple[str, Callable[[], None]]] = [
        ("kill_switch", risk.release),
        ("unknown_market", lambda: fields.update(market="M")),
        ("book_stale", lambda: view.books.update(Y=BookState.SYNCED)),
        ("market_ending", lambda: None),
        ("invalid_tick", lambda: fields.update(price=500_000)),
        ("below_min_size", lambda: fields.update(size=200 * ONE)),
        ("max_order_notional", lambda: fields.update(size=10 * ONE)),
        ("min_edge", lambda: fields.update(pair_cost=None)),
        ("max_open_orders", lambda: setattr(view, "open", 0)),
        ("max_daily_loss", lambda: setattr(view, "pnl", 0)),
        ("max_position_token", lambda: view.positions.update(Y=90 * ONE)),
        ("max_position_market", lambda: view.positions.update(N=0)),
        ("max_gross_exposure", lambda: setattr(view, "gross", 0)),
    ]
    for expected, repair in repairs:
        assert risk.check(order(**fields), view, now).reason == expected
        repair()
        if expected == "market_ending":
            now = NOW_NS
    assert risk.check(order(**fields), view, now).accepted
    assert sum(risk.rejections.values()) == len(repairs)
