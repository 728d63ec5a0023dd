"""Polymarket's official Python client (py-clob-client-v2) as the oracle: every method of it that
the venue serves, called against ``mmbot sim`` on loopback sockets, each answer's shape compared
key for key with the real captured samples (tests/fixtures/polymarket/, provenance in its README)
where one exists, else with the protocol doc (§4) and what the client itself reads.

One simulator serves the module (tests/official_client_sim.py): a quiet world, so the books hold
only what the tests rest there. Account B makes the liquidity, A takes it; C beats heartbeats and
D tries API keys, so neither disturbs the others. Every test leaves A and B without open orders.
The methods the simulator does not serve are listed, with the reason, in docs/simulator.md ("The
official client").
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import trio
import trio_websocket
from eth_account.messages import encode_typed_data
from py_clob_client_v2 import (
    AssetType,
    BalanceAllowanceParams,
    BookParams,
    BuilderTradeParams,
    ClobClient,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderScoringParams,
    OrdersScoringParams,
    OrderType,
    PostOrdersV2Args,
    PricesHistoryParams,
    TradeParams,
)
from py_clob_client_v2 import client as client_module
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.exceptions import PolyApiException
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import (
    ExchangeOrderBuilderV2,
    _hash_message,
)

from mmbot.model import ONE, format_micro, taker_fee
from tests.official_client_sim import (
    CHAIN_ID,
    KEY_A,
    KEY_B,
    KEY_C,
    KEY_D,
    SPLIT,
    D,
    RunningSim,
    refusal,
    rest_order,
    sample,
    status_of,
    trader,
)
from tests.shapes import assert_shape

BUY, SELL = "BUY", "SELL"
POST_ANSWER = {"success", "errorMsg", "orderID", "status", "makingAmount", "takingAmount", "transactionsHashes",
               "tradeIDs"}  # protocol doc §4
BOOK_KEYS = {"market", "asset_id", "timestamp", "hash", "bids", "asks", "min_order_size", "tick_size", "neg_risk",
             "last_trade_price"}  # protocol doc §4; the captured REST book (2024) predates the last four
HEX64 = r"0x[0-9a-f]{64}"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    running = RunningSim().start()
    # The venue answers a match's transaction hash at once; a client left polling /data/trades for
    # want of one should fail fast, not after the client's 30 s.
    saved = client_module.RESOLVE_TRADES_TIMEOUT_SECONDS
    client_module.RESOLVE_TRADES_TIMEOUT_SECONDS = 2.0
    running.a, running.b = trader(running.rest, KEY_A), trader(running.rest, KEY_B)
    running.split(running.a)
    running.split(running.b)
    try:
        yield running
    finally:
        client_module.RESOLVE_TRADES_TIMEOUT_SECONDS = saved
        running.stop()


@pytest.fixture(autouse=True)
def no_orders_left(sim: RunningSim) -> Iterator[None]:
    yield
    for client in (sim.a, sim.b):
        try:
            client.cancel_all()
        except PolyApiException:
            pass


def public(sim: RunningSim) -> ClobClient:
    """A client with no key and empty caches."""
    return ClobClient(sim.rest, chain_id=CHAIN_ID)


def cash(sim: RunningSim, client: ClobClient) -> Decimal:
    """pUSD held, once the world has taken the last trade into the accounts (at its next step)."""
    answer = client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    return D(answer["balance"]) / ONE


def shares(sim: RunningSim, client: ClobClient, token: str) -> Decimal:
    answer = client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=token))
    return D(answer["balance"]) / ONE


def fee(size: str | Decimal, price: str | Decimal, rate: int) -> Decimal:
    return D(format_micro(taker_fee(int(D(size) * ONE), int(D(price) * ONE), rate)))


def assert_posted(answer: dict[str, Any], status: str) -> None:
    assert set(answer) == POST_ANSWER and set(sample("rest/http_order_response_ok.json")) <= set(answer), answer
    assert answer["success"] is True and answer["errorMsg"] == "" and answer["status"] == status, answer
    assert re.fullmatch(HEX64, answer["orderID"]), answer
    if status == "matched":
        assert D(answer["makingAmount"]) > 0 and D(answer["takingAmount"]) > 0, answer
        assert answer["tradeIDs"] and len(answer["transactionsHashes"]) == len(answer["tradeIDs"]), answer


def answers_nothing(call: Any) -> bool:
    """An empty answer (or a 404): what the venue says of an order that is not, or no longer, there."""
    try:
        return not call()
    except PolyApiException as exc:
        return exc.status_code == 404


def digest(client: ClobClient, order: Any) -> str:
    """The order id as the venue computes it: the EIP-712 digest of the signed order (§6.1)."""
    builder = ExchangeOrderBuilderV2(get_contract_config(CHAIN_ID).exchange_v2, CHAIN_ID, client.signer)
    return "0x" + _hash_message(encode_typed_data(full_message=builder.build_order_typed_data(order))).hex()


# --------------------------------------------------------------------------- keys, health


def test_keys_are_created_derived_listed_and_deleted(sim: RunningSim) -> None:
    d = ClobClient(sim.rest, chain_id=CHAIN_ID, key=KEY_D)
    created = d.create_api_key()
    assert len(created.api_key) == 36 and created.api_key.count("-") == 4, created.api_key
    assert created.api_secret and created.api_passphrase
    assert d.derive_api_key() == created and d.create_or_derive_api_key() == created
    d.set_api_creds(created)
    assert isinstance(listed := d.get_api_keys(), dict) and set(listed) == {"apiKeys"}, listed
    assert created.api_key in _key_names(listed)

    second = d.create_api_key(nonce=7)
    assert second.api_key != created.api_key and d.derive_api_key(nonce=7) == second
    other = ClobClient(sim.rest, chain_id=CHAIN_ID, key=KEY_D, creds=second)
    assert {created.api_key, second.api_key} <= _key_names(other.get_api_keys())
    other.delete_api_key()  # deletes the key that signs the request
    assert status_of(other.get_api_keys) == 401
    assert _key_names(d.get_api_keys()) == {created.api_key}
    as_a = ClobClient(sim.rest, chain_id=CHAIN_ID, key=KEY_A, creds=created)  # A signs, D's credentials
    refusal(lambda: as_a.create_and_post_order(OrderArgsV2(token_id=sim.plain[0].tokens[0], price=0.2, size=5,
                                                           side=BUY)))
    assert sim.a.get_open_orders() == []


def _key_names(listed: dict[str, Any]) -> set[str]:
    return {k if isinstance(k, str) else k.get("apiKey", k.get("key")) for k in listed["apiKeys"]}


def test_ok_time_and_version(sim: RunningSim) -> None:
    pub = public(sim)
    assert pub.get_ok() == "OK"
    assert abs(int(pub.get_server_time()) - time.time()) < 5
    assert pub.get_version() == 2


# --------------------------------------------------------------------------- books and prices


def _quote(sim: RunningSim, token: str) -> None:
    """B's book on ``token``: bids 20 @ 0.38, 10 @ 0.40; asks 10 @ 0.60, 30 @ 0.62."""
    for side, price, size in ((BUY, 0.38, 20), (BUY, 0.40, 10), (SELL, 0.60, 10), (SELL, 0.62, 30)):
        rest_order(sim.b, token, side, price, size)


def test_order_book_books_and_book_hash(sim: RunningSim) -> None:
    info = sim.plain[0]
    yes, no = info.tokens
    _quote(sim, yes)
    pub = public(sim)
    book = pub.get_order_book(yes)
    assert set(book) == BOOK_KEYS, sorted(book)
    assert_shape({k: book[k] for k in sample("rest/book.json")}, sample("rest/book.json"))
    assert (book["market"], book["asset_id"], book["tick_size"], book["neg_risk"]) == (info.market, yes, "0.01", False)
    assert D(book["min_order_size"]) == 5 and book["timestamp"].isdigit()
    assert [(D(x["price"]), D(x["size"])) for x in book["bids"]] == [(D("0.38"), 20), (D("0.40"), 10)]  # best last
    assert [(D(x["price"]), D(x["size"])) for x in book["asks"]] == [(D("0.62"), 30), (D("0.60"), 10)]

    books = pub.get_order_books([BookParams(token_id=yes), BookParams(token_id=no), BookParams(token_id="12345")])
    assert sorted(b["asset_id"] for b in books) == sorted([yes, no])  # an unknown token is left out
    assert all(set(b) == BOOK_KEYS for b in books)
    assert status_of(lambda: pub.get_order_book("12345")) == 404

    hashed = pub.get_order_book_hash(dict(book))
    assert len(hashed) == 40 and hashed == pub.get_order_book_hash(dict(book))
    rest_order(sim.b, yes, BUY, 0.39, 5)
    assert pub.get_order_book_hash(pub.get_order_book(yes)) != hashed


def test_prices_midpoints_and_spreads(sim: RunningSim) -> None:
    yes = sim.plain[0].tokens[0]
    _quote(sim, yes)
    pub = public(sim)
    assert D(pub.get_price(yes, BUY)["price"]) == D("0.40")  # BUY: the best bid, as the venue answers
    assert D(pub.get_price(yes, SELL)["price"]) == D("0.60")
    assert set(pub.get_price(yes, BUY)) == {"price"}
    prices = pub.get_prices([BookParams(token_id=yes, side=BUY), BookParams(token_id=yes, side=SELL)])
    assert {k: {s: D(p) for s, p in v.items()} for k, v in prices.items()} == {yes: {BUY: D("0.4"), SELL: D("0.6")}}
    assert pub.get_midpoint(yes).keys() == {"mid"} and D(pub.get_midpoint(yes)["mid"]) == D("0.5")
    assert {k: D(v) for k, v in pub.get_midpoints([BookParams(token_id=yes)]).items()} == {yes: D("0.5")}
    assert pub.get_spread(yes).keys() == {"spread"} and D(pub.get_spread(yes)["spread"]) == D("0.2")
    assert {k: D(v) for k, v in pub.get_spreads([BookParams(token_id=yes)]).items()} == {yes: D("0.2")}
    assert status_of(lambda: pub.get_price("12345", BUY)) == 404


def test_last_trade_prices_and_price_history(sim: RunningSim) -> None:
    yes = sim.plain[0].tokens[0]
    _quote(sim, yes)
    start = int(time.time())
    taken = sim.a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.60, size=5, side=BUY),
                                        order_type=OrderType.FOK)
    assert_posted(taken, "matched")
    pub = public(sim)
    last = pub.get_last_trade_price(yes)
    assert set(last) == {"price", "side"} and (D(last["price"]), last["side"]) == (D("0.6"), BUY), last
    assert [{**x, "price": D(x["price"])} for x in pub.get_last_trades_prices([BookParams(token_id=yes)])] == [
        {"token_id": yes, "price": D("0.6"), "side": BUY}]

    history = pub.get_prices_history(PricesHistoryParams(market=yes, start_ts=start - 600, end_ts=start + 600,
                                                         fidelity=1))
    assert set(history) == {"history"} and history["history"], history
    for point in history["history"]:
        assert set(point) == {"t", "p"} and isinstance(point["t"], int) and isinstance(point["p"], (int, float))
        assert start - 600 <= point["t"] <= start + 600 and 0 <= point["p"] <= 1
    assert set(pub.get_prices_history(PricesHistoryParams(market=yes, interval="1d"))) == {"history"}


# --------------------------------------------------------------------------- market parameters and markets


def test_tick_size_neg_risk_and_fees(sim: RunningSim) -> None:
    info = sim.plain[0]
    yes = info.tokens[0]
    assert public(sim).get_tick_size(yes) == "0.01"
    assert public(sim).get_neg_risk(yes) is False
    assert isinstance(public(sim).get_fee_rate_bps(yes), int)
    assert public(sim).get_fee_exponent(yes) == 1  # through /markets-by-token and /clob-markets
    compact = public(sim).get_clob_market_info(info.market)
    assert compact["c"] == info.market and "nr" not in compact  # nr: absent when false (§4)
    assert [(t["t"], t["o"]) for t in compact["t"]] == list(zip(info.tokens, info.outcomes))
    assert (D(compact["mts"]), D(compact["mos"]), compact["ao"]) == (D("0.01"), 5, True)
    assert (D(compact["fd"]["r"]) * ONE, compact["fd"]["e"], compact["fd"]["to"]) == (info.fee_rate, 1, True)
    assert status_of(lambda: public(sim).get_clob_market_info("0x" + "00" * 32)) == 404


def test_markets_page_and_one_market(sim: RunningSim) -> None:
    pub = public(sim)
    page = pub.get_markets()
    captured = sample("rest/markets.json")
    assert set(page) == set(captured) and page["count"] == len(page["data"]), sorted(page)
    seen, cursor = [], "MA=="
    while cursor != "LTE=":
        page = pub.get_markets(cursor)
        assert_shape(page, captured)
        seen += [m["condition_id"] for m in page["data"]]
        cursor = page["next_cursor"]
    assert {info.market for info in sim.venue.markets()} <= set(seen) and len(seen) == len(set(seen))

    info = sim.plain[1]
    market = pub.get_market(info.market)
    assert_shape(market, sample("rest/market.json"))
    assert (market["condition_id"], market["question"], market["market_slug"]) == (info.market, info.question,
                                                                                     info.slug)
    assert [(t["token_id"], t["outcome"], t["winner"]) for t in market["tokens"]] == [
        (info.tokens[0], info.outcomes[0], False), (info.tokens[1], info.outcomes[1], False)]
    assert (market["minimum_tick_size"], market["minimum_order_size"], market["neg_risk"]) == (0.01, 5, False)
    assert (market["active"], market["closed"], market["accepting_orders"]) == (True, False, True)
    assert status_of(lambda: pub.get_market("0x" + "00" * 32)) == 404


def test_simplified_and_sampling_markets(sim: RunningSim) -> None:
    pub = public(sim)
    simplified = pub.get_simplified_markets()
    assert set(simplified) == {"limit", "count", "next_cursor", "data"} and simplified["data"], simplified
    for market in simplified["data"]:
        assert {"condition_id", "tokens", "rewards", "active", "closed", "archived", "accepting_orders"} <= set(market)
    assert sim.plain[0].market in {m["condition_id"] for m in simplified["data"]}
    for page in (pub.get_sampling_markets(), pub.get_sampling_simplified_markets()):
        assert set(page) == {"limit", "count", "next_cursor", "data"} and page["count"] == len(page["data"]), page


# --------------------------------------------------------------------------- balance


def test_balance_allowance_and_update(sim: RunningSim) -> None:
    a = sim.a
    collateral = a.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    assert set(collateral) == {"balance", "allowances"}, collateral  # §4: the current allowances map
    assert collateral["balance"].isdigit()
    assert collateral["allowances"] and all(addr.startswith("0x") and value.isdigit()
                                            for addr, value in collateral["allowances"].items())
    assert get_contract_config(CHAIN_ID).exchange_v2.lower() in {addr.lower() for addr in collateral["allowances"]}
    held = shares(sim, a, sim.plain[5].tokens[1])
    assert held == SPLIT
    a.update_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    a.update_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL,
                                                      token_id=sim.plain[5].tokens[1]))
    assert a.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)) == collateral


# --------------------------------------------------------------------------- limit orders


def test_gtc_orders_both_sides_rest_and_read_back_with_filters(sim: RunningSim) -> None:
    a, info, other = sim.a, sim.plain[1], sim.plain[2]
    yes, no = info.tokens
    order = a.create_order(OrderArgsV2(token_id=yes, price=0.30, size=10, side=BUY))
    bought = a.post_order(order, OrderType.GTC)
    assert_posted(bought, "live")
    assert bought["orderID"] == digest(a, order)
    sold = rest_order(a, no, SELL, 0.75, 12)
    elsewhere = rest_order(a, other.tokens[0], BUY, 0.20, 5)

    mine = a.get_open_orders()
    assert {o["id"] for o in mine} == {bought["orderID"], sold, elsewhere}
    like = sample("rest/http_open_orders_page.json")["data"][0]
    for o in mine:
        assert_shape(o, like)
    [o] = a.get_open_orders(OpenOrderParams(id=sold))
    assert (o["market"], o["asset_id"], o["side"], D(o["price"]), D(o["original_size"]), D(o["size_matched"])) == (
        info.market, no, SELL, D("0.75"), 12, 0)
    assert (o["status"], o["outcome"], o["order_type"], o["owner"]) == ("LIVE", info.outcomes[1], "GTC",
                                                                      a.creds.api_key)
    assert o["maker_address"].lower() == a.get_address().lower()
    assert {o["id"] for o in a.get_open_orders(OpenOrderParams(market=info.market))} == {bought["orderID"], sold}
    assert {o["id"] for o in a.get_open_orders(OpenOrderParams(asset_id=yes))} == {bought["orderID"]}
    assert a.get_open_orders(OpenOrderParams(market=sim.plain[3].market)) == []
    assert sim.b.get_open_orders(OpenOrderParams(id=sold)) == []  # another account's order is not B's

    one = a.get_order(bought["orderID"])
    assert_shape(one, like)
    assert (one["id"], one["side"], one["status"]) == (bought["orderID"], BUY, "LIVE")
    assert answers_nothing(lambda: sim.b.get_order(bought["orderID"]))  # nothing of another account's


def test_post_only_rests_or_is_refused_when_it_would_cross(sim: RunningSim) -> None:
    yes = sim.plain[1].tokens[0]
    rest_order(sim.b, yes, SELL, 0.60, 10)
    a = sim.a
    crossing = refusal(lambda: a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.60, size=5, side=BUY),
                                                       order_type=OrderType.GTC, post_only=True))
    assert "INVALID_POST_ONLY_ORDER" in crossing, crossing
    resting = a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.59, size=5, side=BUY),
                                      order_type=OrderType.GTC, post_only=True)
    assert_posted(resting, "live")
    assert D(public(sim).get_order_book(yes)["asks"][-1]["size"]) == 10  # nothing crossed


def test_gtd_rests_until_its_expiration_and_a_too_short_one_is_refused(sim: RunningSim) -> None:
    """The venue's 60 s security margin: an order sent with ``now + 60 + N`` lives N seconds of
    the venue's clock, which the test moves on instead of waiting (the signed requests stay on
    the wall clock the client signs with)."""
    a, yes = sim.a, sim.plain[1].tokens[0]
    now = int(time.time())
    short = refusal(lambda: a.create_and_post_order(
        OrderArgsV2(token_id=yes, price=0.25, size=5, side=BUY, expiration=now + 30), order_type=OrderType.GTD))
    assert "INVALID_ORDER_EXPIRATION" in short, short
    expiration = now + 62
    posted = a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.25, size=5, side=BUY, expiration=expiration),
                                     order_type=OrderType.GTD)
    assert_posted(posted, "live")
    order = a.get_order(posted["orderID"])
    assert (order["order_type"], str(order["expiration"])) == ("GTD", str(expiration)), order
    ends_ns = (expiration - 60) * 1_000_000_000
    sim.call(lambda: sim.venue.step(ends_ns - 1))
    assert len(a.get_open_orders(OpenOrderParams(id=posted["orderID"]))) == 1, "expired early"
    sim.call(lambda: sim.venue.step(ends_ns))
    assert a.get_open_orders(OpenOrderParams(id=posted["orderID"])) == [], "still resting after its expiration"
    assert answers_nothing(lambda: a.get_order(posted["orderID"]))  # finished orders come back empty (§4)


def test_fok_and_fak_limit_orders_on_both_sides(sim: RunningSim) -> None:
    a, info = sim.a, sim.plain[2]
    yes = info.tokens[0]
    rest_order(sim.b, yes, SELL, 0.60, 10)
    rest_order(sim.b, yes, BUY, 0.40, 10)
    cash0, held0 = cash(sim, a), shares(sim, a, yes)

    bought = a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.60, size=5, side=BUY), order_type=OrderType.FOK)
    assert_posted(bought, "matched")
    assert (D(bought["makingAmount"]), D(bought["takingAmount"])) == (3, 5)  # pUSD given, shares got
    assert cash(sim, a) == cash0 - 3 - fee(5, "0.6", info.fee_rate) and shares(sim, a, yes) == held0 + 5

    too_big = refusal(lambda: a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.60, size=20, side=BUY),
                                                      order_type=OrderType.FOK))
    assert "FOK_ORDER_NOT_FILLED_ERROR" in too_big, too_big
    assert shares(sim, a, yes) == held0 + 5 and D(public(sim).get_order_book(yes)["asks"][-1]["size"]) == 5

    rest = a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.60, size=20, side=BUY), order_type=OrderType.FAK)
    assert_posted(rest, "matched")
    assert D(rest["takingAmount"]) == 5 and shares(sim, a, yes) == held0 + 10  # what was there; the rest is killed
    assert a.get_open_orders(OpenOrderParams(asset_id=yes)) == []

    cash1 = cash(sim, a)
    sold = a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=5, side=SELL), order_type=OrderType.FOK)
    assert_posted(sold, "matched")
    assert (D(sold["makingAmount"]), D(sold["takingAmount"])) == (5, 2)  # shares given, pUSD got
    assert cash(sim, a) == cash1 + 2 - fee(5, "0.4", info.fee_rate) and shares(sim, a, yes) == held0 + 5
    sold = a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=8, side=SELL), order_type=OrderType.FAK)
    assert_posted(sold, "matched")
    assert D(sold["makingAmount"]) == 5 and shares(sim, a, yes) == held0


# --------------------------------------------------------------------------- market orders


def test_market_buy_spends_the_amount_across_levels_and_market_sell_sells_shares(sim: RunningSim) -> None:
    a, info = sim.a, sim.plain[3]
    yes = info.tokens[0]
    for side, price, size in ((SELL, 0.60, 5), (SELL, 0.62, 50), (BUY, 0.40, 5), (BUY, 0.38, 50)):
        rest_order(sim.b, yes, side, price, size)
    cash0, held0 = cash(sim, a), shares(sim, a, yes)

    bought = a.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side=BUY),
                                            order_type=OrderType.FOK)  # priced by the client from the book: 0.62
    assert_posted(bought, "matched")
    making, got = D(bought["makingAmount"]), D(bought["takingAmount"])
    # to within the venue's share step (0.01) at either level: 5 @ 0.60, then $2 worth @ 0.62
    assert abs(making - 5) < D("0.01") and abs(got - (5 + D(2) / D("0.62"))) < D("0.01"), bought
    spent = cash0 - cash(sim, a)
    assert shares(sim, a, yes) == held0 + got
    fees = fee(5, "0.6", info.fee_rate) + fee(got - 5, "0.62", info.fee_rate)
    assert making <= spent <= making + fees + D("0.00002"), (spent, making, fees)

    cash1 = cash(sim, a)
    sold = a.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=8, side=SELL),
                                          order_type=OrderType.FOK)  # 5 @ 0.40, then 3 @ 0.38
    assert_posted(sold, "matched")
    assert (D(sold["makingAmount"]), D(sold["takingAmount"])) == (8, D("3.14")), sold
    assert shares(sim, a, yes) == held0 + got - 8
    assert cash(sim, a) == cash1 + D("3.14") - fee(5, "0.4", info.fee_rate) - fee(3, "0.38", info.fee_rate)

    left = 50 - (got - 5)  # shares still offered at 0.62
    partial = a.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=100, side=BUY, price=0.62),
                                             order_type=OrderType.FAK)
    assert_posted(partial, "matched")
    assert abs(D(partial["takingAmount"]) - left) < D("0.01") and D(partial["makingAmount"]) < 100, partial
    assert public(sim).get_order_book(yes)["asks"] == []

    rest_order(sim.b, yes, SELL, 0.62, 10)
    unfilled = refusal(lambda: a.create_and_post_market_order(
        MarketOrderArgsV2(token_id=yes, amount=100, side=BUY, price=0.62), order_type=OrderType.FOK))
    assert "FOK_ORDER_NOT_FILLED_ERROR" in unfilled, unfilled
    small = refusal(lambda: a.create_and_post_market_order(
        MarketOrderArgsV2(token_id=yes, amount=0.5, side=BUY, price=0.62), order_type=OrderType.FOK))
    assert "min size" in small, small


# --------------------------------------------------------------------------- batches


def test_a_batch_of_orders_and_a_batch_of_sixteen_refused(sim: RunningSim) -> None:
    a, yes = sim.a, sim.plain[4].tokens[0]

    def leg(price: float, size: float = 5) -> PostOrdersV2Args:
        return PostOrdersV2Args(order=a.create_order(OrderArgsV2(token_id=yes, price=price, size=size, side=BUY)),
                                orderType=OrderType.GTC)

    answers = a.post_orders([leg(0.10), leg(0.11), leg(0.12, size=1)])  # the last is below the minimum size
    assert len(answers) == 3 and all(set(x) <= POST_ANSWER for x in answers)
    for answer in answers[:2]:
        assert_posted(answer, "live")
    assert not answers[2]["orderID"] and "INVALID_ORDER_MIN_SIZE" in answers[2]["errorMsg"], answers[2]
    assert {o["id"] for o in a.get_open_orders()} == {x["orderID"] for x in answers[:2]}

    fifteen = a.post_orders([leg(0.20 + i / 100) for i in range(15)])
    assert [x["status"] for x in fifteen] == ["live"] * 15
    sixteen = [leg(0.05) for _ in range(16)]
    with pytest.raises(PolyApiException) as refused:
        a.post_orders(sixteen)
    assert refused.value.status_code == 400
    assert len(a.get_open_orders()) == 17  # none of the sixteen rests


# --------------------------------------------------------------------------- trades and cancels


def test_trades_with_filters_seen_by_taker_and_maker(sim: RunningSim) -> None:
    a, b = sim.a, sim.b
    since = int(time.time()) - 1
    ids = {}
    for info in (sim.plain[2], sim.plain[3]):
        yes = info.tokens[0]
        maker = rest_order(b, yes, SELL, 0.55, 5)
        taken = a.create_and_post_order(OrderArgsV2(token_id=yes, price=0.55, size=5, side=BUY),
                                        order_type=OrderType.FOK)
        assert_posted(taken, "matched")
        [ids[info.market]] = taken["tradeIDs"]
        [trade] = a.get_trades(TradeParams(id=ids[info.market]))
        assert_shape(trade, sample("ws-user/trades.json"), extra=frozenset({"side"}))  # maker_orders[].side (§3)
        assert (trade["trader_side"], trade["taker_order_id"], trade["market"], trade["asset_id"]) == (
            "TAKER", taken["orderID"], info.market, yes)
        assert (trade["side"], D(trade["size"]), D(trade["price"]), trade["outcome"]) == (BUY, 5, D("0.55"),
                                                                                           info.outcomes[0])
        assert trade["transaction_hash"] in taken["transactionsHashes"]
        [made] = trade["maker_orders"]
        assert (made["order_id"], made["owner"], D(made["matched_amount"])) == (maker, b.creds.api_key, 5)
        [theirs] = b.get_trades(TradeParams(id=ids[info.market]))
        assert theirs["trader_side"] == "MAKER" and theirs["id"] == trade["id"]

    first, second = sim.plain[2], sim.plain[3]
    assert set(ids.values()) <= {t["id"] for t in a.get_trades()}
    by_market = a.get_trades(TradeParams(market=first.market))
    assert ids[first.market] in {t["id"] for t in by_market} and {t["market"] for t in by_market} == {first.market}
    by_token = a.get_trades(TradeParams(asset_id=second.tokens[0]))
    assert ids[second.market] in {t["id"] for t in by_token} and {t["asset_id"] for t in by_token} == {
        second.tokens[0]}
    assert set(ids.values()) <= {t["id"] for t in a.get_trades(TradeParams(after=since))}
    assert a.get_trades(TradeParams(after=int(time.time()) + 3600)) == []
    assert a.get_trades(TradeParams(before=since - 3600)) == []
    page = a.get_trades_paginated(TradeParams(market=second.market))
    assert ids[second.market] in {t["id"] for t in page["trades"]} and page["next_cursor"] == "LTE="


def test_every_cancel(sim: RunningSim) -> None:
    a, b, info = sim.a, sim.b, sim.plain[1]
    yes, no = info.tokens
    ids = [rest_order(a, yes, BUY, 0.10 + i / 100, 5) for i in range(4)]
    on_no = rest_order(a, no, BUY, 0.10, 5)
    elsewhere = rest_order(a, sim.plain[0].tokens[0], BUY, 0.10, 5)
    theirs = rest_order(b, yes, BUY, 0.30, 5)

    one = a.cancel_order(OrderPayload(orderID=ids[0]))
    assert set(one) == set(sample("rest/http_cancel_response_ok.json"))
    assert one == {"canceled": [ids[0]], "not_canceled": {}}
    again = a.cancel_order(OrderPayload(orderID=ids[0]))
    [reason] = sample("rest/http_cancel_response_failed.json")["not_canceled"].values()
    assert again == {"canceled": [], "not_canceled": {ids[0]: reason}}
    not_mine = a.cancel_order(OrderPayload(orderID=theirs))
    assert not_mine["canceled"] == [] and theirs in not_mine["not_canceled"]

    two = a.cancel_orders([ids[1], ids[2]])
    assert sorted(two["canceled"]) == sorted(ids[1:3]) and two["not_canceled"] == {}
    by_token = a.cancel_market_orders(OrderMarketCancelParams(asset_id=no))
    assert by_token == {"canceled": [on_no], "not_canceled": {}}
    by_market = a.cancel_market_orders(OrderMarketCancelParams(market=info.market))
    assert by_market == {"canceled": [ids[3]], "not_canceled": {}}
    everything = a.cancel_all()
    assert everything == {"canceled": [elsewhere], "not_canceled": {}}
    assert a.get_open_orders() == [] and [o["id"] for o in b.get_open_orders()] == [theirs]


# --------------------------------------------------------------------------- heartbeats


def test_heartbeats_chain_and_a_stale_id_gets_the_current_one(sim: RunningSim) -> None:
    c = trader(sim.rest, KEY_C)  # its own account: a lapsed chain cancels every order of the account
    first = c.post_heartbeat("")
    assert set(first) == {"heartbeat_id"} and first["heartbeat_id"], first
    second = c.post_heartbeat(first["heartbeat_id"])
    assert second["heartbeat_id"] not in ("", first["heartbeat_id"])
    with pytest.raises(PolyApiException) as stale:
        c.post_heartbeat("not-the-latest")
    assert stale.value.status_code == 400 and stale.value.error_msg["heartbeat_id"] == second["heartbeat_id"]


# --------------------------------------------------------------------------- what is not served


def test_the_methods_the_simulator_does_not_serve_answer_404(sim: RunningSim) -> None:
    """The list in docs/simulator.md ("The official client"): each is a clean 404, never a 500."""
    a, market = sim.a, sim.plain[0].market
    unserved = {
        "get_current_rewards": a.get_current_rewards,
        "get_raw_rewards_for_market": lambda: a.get_raw_rewards_for_market(market),
        "get_earnings_for_user_for_day": lambda: a.get_earnings_for_user_for_day("2026-01-01"),
        "get_total_earnings_for_user_for_day": lambda: a.get_total_earnings_for_user_for_day("2026-01-01"),
        "get_user_earnings_and_markets_config": lambda: a.get_user_earnings_and_markets_config("2026-01-01"),
        "get_reward_percentages": a.get_reward_percentages,
        "is_order_scoring": lambda: a.is_order_scoring(OrderScoringParams(orderId="0x" + "00" * 32)),
        "are_orders_scoring": lambda: a.are_orders_scoring(OrdersScoringParams(orderIds=["0x" + "00" * 32])),
        "create_builder_api_key": a.create_builder_api_key,
        "get_builder_api_keys": a.get_builder_api_keys,
        "revoke_builder_api_key": a.revoke_builder_api_key,
        "get_builder_trades": lambda: a.get_builder_trades(BuilderTradeParams(builder_code="0x" + "11" * 32)),
        "create_readonly_api_key": a.create_readonly_api_key,
        "get_readonly_api_keys": a.get_readonly_api_keys,
        "delete_readonly_api_key": lambda: a.delete_readonly_api_key("none"),
        "get_notifications": a.get_notifications,
        "drop_notifications": a.drop_notifications,
        "get_pre_migration_orders": a.get_pre_migration_orders,
        "get_closed_only_mode": a.get_closed_only_mode,
        "get_market_trades_events": lambda: a.get_market_trades_events(market),
        "rfq.get_rfq_requests": a.rfq.get_rfq_requests,
        "rfq.rfq_config": a.rfq.rfq_config,
    }
    answers = {name: status_of(call) for name, call in unserved.items()}
    assert answers == dict.fromkeys(unserved, 404)
    assert public(sim).get_ok() == "OK"


# --------------------------------------------------------------------------- the user channel


def test_user_channel_with_the_clients_credentials(sim: RunningSim) -> None:
    """PLACEMENT, the taker's MATCHED trade and CANCELLATION reach A's user connection, key for key
    as captured; a trade in a market A did not subscribe to does not."""
    a, info, other = sim.a, sim.plain[5], sim.plain[0]
    yes = info.tokens[0]
    rest_order(sim.b, yes, SELL, 0.60, 5)
    rest_order(sim.b, other.tokens[0], SELL, 0.60, 5)
    messages: list[dict[str, Any]] = []

    async def listen() -> dict[str, str]:
        async with trio_websocket.open_websocket_url(sim.ws_user) as ws:
            creds = a.creds
            await ws.send_message(json.dumps({"auth": {"apiKey": creds.api_key, "secret": creds.api_secret,
                                                       "passphrase": creds.api_passphrase},
                                              "markets": [info.market], "type": "user"}))
            await ws.send_message("PING")  # answered in order: once PONG is back, A is subscribed
            assert await ws.get_message() == "PONG"
            resting = await trio.to_thread.run_sync(rest_order, a, yes, BUY, 0.30, 5)
            taken = await trio.to_thread.run_sync(lambda: a.create_and_post_order(
                OrderArgsV2(token_id=yes, price=0.60, size=5, side=BUY), order_type=OrderType.FOK))
            await trio.to_thread.run_sync(lambda: a.create_and_post_order(
                OrderArgsV2(token_id=other.tokens[0], price=0.60, size=5, side=BUY), order_type=OrderType.FOK))
            await trio.to_thread.run_sync(a.cancel_order, OrderPayload(orderID=resting))
            with trio.move_on_after(10):
                while not any(m.get("type") == "CANCELLATION" for m in messages):
                    text = await ws.get_message()
                    if text.startswith(("[", "{")):
                        decoded = json.loads(text)
                        messages.extend(decoded if isinstance(decoded, list) else [decoded])
            return {"resting": resting, "taken": taken["orderID"]}

    ids = trio.run(listen)
    placed = [m for m in messages if m.get("type") == "PLACEMENT" and m["id"] == ids["resting"]]
    canceled = [m for m in messages if m.get("type") == "CANCELLATION" and m["id"] == ids["resting"]]
    trades = [m for m in messages if m.get("event_type") == "trade" and m["taker_order_id"] == ids["taken"]]
    assert placed and canceled and trades, messages
    assert_shape(placed[0], sample("ws-user/order_placement.json"))
    assert_shape(canceled[0], sample("ws-user/order_cancel.json"))
    assert_shape(trades[0], sample("ws-user/user_trade2.json"), extra=frozenset({"side"}))
    assert (placed[0]["status"], placed[0]["outcome"], canceled[0]["status"]) == ("LIVE", info.outcomes[0], "CANCELED")
    assert (trades[0]["status"], trades[0]["trader_side"]) == ("MATCHED", "TAKER")
    assert {m.get("market") for m in messages} == {info.market}, "a market A did not subscribe to"
