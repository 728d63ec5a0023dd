"""The simulator's order entry as the venue's: GTD orders read their expiration, market orders
spend dollars (BUY) or sell shares (SELL) down to a worst price, batches hold at most 15 orders,
an account's checks are atomic with matching, makers must be the signer's own wallets, the order
side of the REST answers has the venue's shapes, and malformed requests are 4xx.

Order-type and account rules run on ``SimTrading`` over a bare engine with one market (``Desk``),
whose events reach the accounts at once as on the server; REST shapes and malformed requests go
through the server's app in process (``tests.test_sim_server.Sim``)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import attrs
import pytest
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder

from mmbot.model import ONE, MarketInfo, Side, TimeInForce, format_micro, notional, parse_micro, taker_fee
from mmbot.venues.polymarket.auth import (
    EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, OrderV2, SigningKey, domain_separator, typed_digest,
)
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator import order_views
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.refusals import VenueRefusal
from mmbot.venues.simulator.trading import SimTrading, credentials_for
from mmbot.venues.simulator.user_frames import UserFeed
from mmbot.venues.simulator.wallets import deposit_wallet
from tests.test_sim_server import KEY_A, KEY_B, Sim, order_body, roomy, signed

SECOND = 1_000_000_000
NOW_NS = 1_786_604_100 * SECOND
YES, NO = "1001", "1002"
INFO = MarketInfo(market="0x" + "11" * 32, tokens=(YES, NO), outcomes=("Up", "Down"))
WORLD = "world"  # an owner that is no account: the simulated world's traders
GTC, GTD, FOK, FAK = TimeInForce.GTC, TimeInForce.GTD, TimeInForce.FOK, TimeInForce.FAK
BUY, SELL = Side.BUY, Side.SELL
SAMPLES = Path(__file__).parent / "fixtures" / "polymarket" / "rest"
_DOMAINS = {False: domain_separator("Polymarket CTF Exchange", "2", 137, EXCHANGE_V2),
            True: domain_separator("Polymarket CTF Exchange", "2", 137, NEG_RISK_EXCHANGE_V2)}


def c(cents: int) -> int:
    return cents * 10_000


def sign_body(key: SigningKey, token: str, side: Side, maker_amount: int, taker_amount: int,
              tif: TimeInForce = GTC, *, expiration: int = 0, maker: str | None = None, signer: str | None = None,
              signature_type: int = 0, salt: int | None = None, neg_risk: bool = False,
              post_only: bool = False) -> dict[str, Any]:
    """A ``POST /order`` body signed by ``key`` with exactly these amounts (the order's EIP-712
    digest signed plainly, whatever the signature type)."""
    order = OrderV2(salt=random.getrandbits(48) if salt is None else salt, maker=maker or key.address,
                    signer=signer or key.address, token_id=int(token), maker_amount=maker_amount,
                    taker_amount=taker_amount, side=side, signature_type=signature_type, timestamp_ms=0)
    wire = order.wire(key.sign(typed_digest(_DOMAINS[neg_risk], order.struct_hash())))
    wire["expiration"] = str(expiration)
    return {"order": wire, "owner": credentials_for(key.address).api_key, "orderType": tif.value,
            "postOnly": post_only}


def market_amounts(side: Side, amount: float, price: float, tick: str = "0.01") -> tuple[int, int]:
    """(makerAmount, takerAmount) of a market order, as the official client's builder makes them."""
    _, maker, taker = OrderBuilder.get_market_order_amounts(
        object.__new__(OrderBuilder), side.value, amount, price, ROUNDING_CONFIG[tick])
    return maker, taker


def limit_amounts(side: Side, price: int, size: int) -> tuple[int, int]:
    collateral = notional(price, size)
    return (collateral, size) if side is BUY else (size, collateral)


class Desk:
    """``SimTrading`` on a bare engine with one market and accounts A and B; every engine event
    reaches the accounts at once (as ``LiveVenue.settle`` does) and is kept in ``events``."""

    def __init__(self, *, fee_rate: int = 0, cash: int = 1_000 * ONE) -> None:
        self.engine = Engine()
        self.engine.add_market(attrs.evolve(INFO, fee_rate=fee_rate), 0)
        self.feed = UserFeed()
        self.events: list[ev.Event] = []
        self.now_ns = NOW_NS
        self.trading = SimTrading(self.engine, self.feed, settle=self.settle, funding=cash)
        for key in (KEY_A, KEY_B):
            self.trading.add_account(key.address, credentials_for(key.address))
        self.settle()

    def settle(self) -> None:
        events = self.engine.take_events()
        self.feed.on_events(events)
        self.events += events

    def account(self, key: SigningKey):
        return self.trading.account(address=key.address)

    def post(self, key: SigningKey, body: dict[str, Any]) -> dict[str, Any]:
        return self.trading.post(self.account(key), body, self.now_ns)

    def refusal(self, key: SigningKey, body: dict[str, Any]) -> str:
        with pytest.raises(VenueRefusal) as refused:
            self.post(key, body)
        return refused.value.error

    def world(self, token: str, side: Side, price: int, size: int) -> None:
        """A resting order of the world's, straight into the engine."""
        assert self.engine.submit(WORLD, token, side, price, size, GTC, True, self.now_ns).status == "live"
        self.settle()

    def give(self, key: SigningKey, **shares: int) -> None:
        self.trading.give(self.account(key).creds.api_key, shares={YES if k == "yes" else NO: v for k, v in shares.items()})

    def cash(self, key: SigningKey) -> int:
        return self.trading.cash(self.account(key))

    def shares(self, key: SigningKey, token: str = YES) -> int:
        return self.trading.shares(self.account(key), token)


# --------------------------------------------------------------------------- GTD


def test_a_gtd_order_needs_its_expiration_over_a_minute_ahead_and_ends_a_minute_before_it():
    desk = Desk()
    now_s = NOW_NS // SECOND
    maker, taker = limit_amounts(BUY, c(40), 10 * ONE)

    def gtd(expiration: int, tif: TimeInForce = GTD) -> dict[str, Any]:
        return sign_body(KEY_A, YES, BUY, maker, taker, tif, expiration=expiration)

    assert desk.refusal(KEY_A, gtd(now_s + 60)) == "INVALID_ORDER_EXPIRATION"  # it would not live at all
    assert desk.refusal(KEY_A, gtd(0)) == "INVALID_ORDER_EXPIRATION"
    assert desk.refusal(KEY_A, gtd(now_s + 600, GTC)) == "INVALID_ORDER_EXPIRATION"  # only GTD carries one
    posted = desk.post(KEY_A, gtd(now_s + 61))
    assert posted["status"] == "live"
    order_id = posted["orderID"]
    assert desk.engine.order(order_id).expires_ns == (now_s + 1) * SECOND
    [item] = desk.trading.open_orders(desk.account(KEY_A))
    assert (item["order_type"], item["expiration"]) == ("GTD", str(now_s + 61))
    desk.engine.expire_due((now_s + 1) * SECOND - 1)
    assert desk.engine.order(order_id) is not None
    desk.engine.expire_due((now_s + 1) * SECOND)
    desk.settle()
    assert desk.engine.order(order_id) is None
    [ended] = [e for e in desk.events if isinstance(e, ev.OrderEnded)]
    assert (ended.order.order_id, ended.reason) == (order_id, ev.EndReason.EXPIRED)
    messages = [json.loads(text) for key, text in desk.feed.take(desk.now_ns) if key == desk.account(KEY_A).creds.api_key]
    assert [(m["type"], m["id"]) for m in messages][-1] == ("CANCELLATION", order_id)
    assert desk.cash(KEY_A) == 1_000 * ONE  # what it held is free again


async def test_a_gtd_order_expires_as_the_world_steps_with_a_cancellation(autojump_clock):
    sim = Sim()
    info, token, bid, _ = roomy(sim.venue)
    expiration = sim.venue.now_ns // SECOND + 200
    maker, taker = limit_amounts(BUY, bid - 3 * info.tick if bid > 3 * info.tick else info.tick, 5 * ONE)
    async with sim.client() as http:
        posted = await signed(http, KEY_A, "POST", "/order",
                              sign_body(KEY_A, token, BUY, maker, taker, GTD, expiration=expiration,
                                        neg_risk=info.neg_risk))
        assert posted.status_code == 200 and posted.json()["status"] == "live", posted.text
        order_id = posted.json()["orderID"]
        sim.venue.step((expiration - 61) * SECOND)
        assert sim.venue.engine.order(order_id) is not None
        sim.venue.step((expiration - 60) * SECOND)
        assert sim.venue.engine.order(order_id) is None
        assert (await signed(http, KEY_A, "GET", f"/data/order/{order_id}")).json() is None
    key = credentials_for(KEY_A.address).api_key
    mine = [json.loads(t) for k, t in sim.venue.user_feed.take(sim.venue.now_ns) if k == key]
    assert ("CANCELLATION", order_id) in [(m.get("type"), m.get("id")) for m in mine]


# --------------------------------------------------------------------------- market orders


def test_a_market_buy_spends_its_dollars_across_levels_up_to_its_worst_price():
    desk = Desk()
    desk.world(YES, SELL, c(50), 10 * ONE)
    desk.world(YES, SELL, c(52), 10 * ONE)
    desk.world(YES, SELL, c(55), 50 * ONE)
    desk.world(YES, SELL, c(56), 50 * ONE)  # beyond the worst price
    maker, taker = market_amounts(BUY, 12, 0.55)
    assert maker == 12_000_000 and taker % 10_000  # not a whole hundredth of a share: not a limit order's amounts
    answer = desk.post(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FOK))
    # $5 for 10 at 0.50, $5.20 for 10 at 0.52, and $1.80 buys 3.27 shares at 0.55 (whole hundredths)
    assert (answer["status"], answer["takingAmount"], answer["makingAmount"]) == ("matched", "23.27", "11.9985")
    assert len(answer["tradeIDs"]) == 3 and len(answer["transactionsHashes"]) == 3
    assert desk.shares(KEY_A) == 23_270_000 and desk.cash(KEY_A) == 1_000 * ONE - 11_998_500
    assert desk.engine.book_snapshot(YES)[1][:2] == ((c(55), 50 * ONE - 3_270_000), (c(56), 50 * ONE))


def test_a_fok_buy_the_book_cannot_fill_is_refused_whole_and_a_fak_takes_what_there_is():
    desk = Desk()
    desk.world(YES, SELL, c(50), 10 * ONE)
    desk.world(YES, SELL, c(60), 10 * ONE)  # beyond the worst price
    maker, taker = market_amounts(BUY, 10, 0.55)
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FOK)) == "FOK_ORDER_NOT_FILLED_ERROR"
    assert desk.shares(KEY_A) == 0 and desk.cash(KEY_A) == 1_000 * ONE
    answer = desk.post(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FAK))
    assert (answer["status"], answer["takingAmount"], answer["makingAmount"]) == ("matched", "10", "5")
    [ended] = [e for e in desk.events if isinstance(e, ev.OrderEnded) and e.order.owner != WORLD]
    assert ended.reason is ev.EndReason.KILLED and ended.order.size_matched == 10 * ONE


def test_a_market_buy_mints_against_the_complements_bid_when_that_is_cheaper():
    desk = Desk()
    desk.world(YES, SELL, c(52), 10 * ONE)
    desk.world(NO, BUY, c(50), 10 * ONE)  # a YES at 0.50 by minting a set with it
    maker, taker = market_amounts(BUY, 5, 0.52)
    answer = desk.post(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FOK))
    assert (answer["takingAmount"], answer["makingAmount"]) == ("10", "5")
    [trade] = [e for e in desk.events if isinstance(e, ev.Trade)]
    assert trade.kind is ev.MatchKind.MINT and trade.taker_price == c(50)


def test_a_market_sell_sells_its_shares_down_to_its_worst_price():
    desk = Desk()
    desk.give(KEY_A, yes=30 * ONE)
    for cents in (48, 46, 40):
        desk.world(YES, BUY, c(cents), 10 * ONE)
    maker, taker = market_amounts(SELL, 25, 0.45)
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, SELL, maker, taker, FOK)) == "FOK_ORDER_NOT_FILLED_ERROR"
    answer = desk.post(KEY_A, sign_body(KEY_A, YES, SELL, maker, taker, FAK))
    assert (answer["makingAmount"], answer["takingAmount"]) == ("20", "9.4")
    assert desk.shares(KEY_A) == 10 * ONE and desk.cash(KEY_A) == 1_000 * ONE + 9_400_000


def test_the_official_builders_market_orders_are_accepted_on_a_cent_grid():
    for amount, price in ((1, 0.33), (7.77, 0.61), (12.34, 0.07), (99.99, 0.93), (3.5, 0.5)):
        desk = Desk()
        desk.give(KEY_A, yes=500 * ONE)
        cents = round(price * 100)
        desk.world(YES, SELL, c(cents), 400 * ONE)
        desk.world(YES, BUY, c(cents - 1), 400 * ONE)
        for side, at in ((BUY, price), (SELL, price - 0.01)):
            maker, taker = market_amounts(side, amount, at)
            answer = desk.post(KEY_A, sign_body(KEY_A, YES, side, maker, taker, FOK))
            assert answer["status"] == "matched", (amount, price, side)
            if side is BUY:  # at most a hundredth of a share's worth of the dollars left unspent
                assert 0 <= maker - parse_micro(answer["makingAmount"]) < notional(c(cents), 10_000)
            else:
                assert parse_micro(answer["makingAmount"]) == maker


def test_amounts_follow_the_venues_precision_and_a_marketable_buy_needs_a_dollar():
    desk = Desk()
    desk.world(YES, SELL, c(50), 100 * ONE)
    market_buy = ("invalid amounts, the market buy orders maker amount supports a max accuracy of 2 decimals,"
                  " taker amount a max of 4 decimals")
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, 10_005_000, 20_000_000, FAK)) == market_buy
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, 10_000_000, 20_000_010, FAK)) == market_buy
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, 990_000, 1_980_000, FOK)) == (
        "invalid amount for a marketable BUY order ($0.99), min size: $1")
    limit_buy = ("invalid amounts, the buy orders maker amount supports a max accuracy of 4 decimals,"
                 " taker amount a max of 2 decimals")
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, 2_001_000, 5_002_500)) == limit_buy  # 5.0025 shares
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, 2_000_000, 5_000_001)) == limit_buy
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, 2_000_000, 6_000_000)) == "INVALID_ORDER_MIN_TICK_SIZE"
    assert desk.post(KEY_A, sign_body(KEY_A, YES, BUY, 1_000_000, 2_000_000, FAK))["takingAmount"] == "2"


# --------------------------------------------------------------------------- accounts


async def test_two_fak_sells_back_to_back_cannot_sell_shares_the_account_no_longer_has(autojump_clock):
    """The balance check sees the first sale at once, not at the world's next step."""
    sim = Sim()
    info, token, bid, _ = roomy(sim.venue)
    key = credentials_for(KEY_A.address).api_key
    sim.server.trading.give(key, shares={token: 5 * ONE})
    maker, taker = limit_amounts(SELL, bid, 5 * ONE)
    async with sim.client() as http:
        answers = [await signed(http, KEY_A, "POST", "/order", sign_body(KEY_A, token, SELL, maker, taker, FAK,
                                                                         neg_risk=info.neg_risk)) for _ in range(2)]
    assert answers[0].json()["status"] == "matched"
    assert (answers[1].status_code, answers[1].json()["error"]) == (400, "not enough balance / allowance")
    assert sim.venue.user_feed.positions.get(key, {}).get(token, 0) == 0


def test_a_buy_needs_its_dollars_and_its_taker_fees_free_of_what_resting_buys_hold():
    rate = 72_000
    fee = taker_fee(10 * ONE, c(50), rate)
    assert fee > 0
    desk = Desk(fee_rate=rate, cash=5 * ONE + fee - 1)
    desk.world(YES, SELL, c(50), 10 * ONE)
    maker, taker = limit_amounts(BUY, c(50), 10 * ONE)
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FAK)) == "not enough balance / allowance"
    desk.trading.give(desk.account(KEY_A).creds.api_key, cash=1)
    desk.post(KEY_A, sign_body(KEY_A, YES, BUY, 2 * ONE, 5 * ONE, GTC))  # rests, holding 2 of the 5.00 + fee
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FAK)) == "not enough balance / allowance"
    desk.trading.cancel_all(desk.account(KEY_A), desk.now_ns)
    assert desk.post(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FAK))["status"] == "matched"
    assert desk.cash(KEY_A) == 0 and desk.shares(KEY_A) == 10 * ONE


def test_a_market_buy_needs_its_whole_amount_and_the_fees_it_would_pay():
    rate = 72_000
    desk = Desk(fee_rate=rate, cash=10 * ONE)
    desk.world(YES, SELL, c(20), 100 * ONE)
    maker, taker = market_amounts(BUY, 10, 0.2)  # $10 at 0.20: 50 shares and a fee on top
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FOK)) == "not enough balance / allowance"
    desk.trading.give(desk.account(KEY_A).creds.api_key, cash=taker_fee(50 * ONE, c(20), rate))
    assert desk.post(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker, FOK))["takingAmount"] == "50"
    assert desk.cash(KEY_A) == 0


def test_a_resting_buy_filled_by_the_world_spends_only_what_it_held():
    desk = Desk(cash=5 * ONE)
    posted = desk.post(KEY_A, sign_body(KEY_A, YES, BUY, 5 * ONE, 10 * ONE))  # all of its cash, at 0.50
    assert desk.refusal(KEY_A, sign_body(KEY_A, NO, BUY, ONE, 5 * ONE)) == "not enough balance / allowance"
    desk.engine.submit(WORLD, YES, SELL, c(40), 10 * ONE, FAK, False, desk.now_ns)  # the world sells into it
    desk.settle()
    assert desk.engine.order(posted["orderID"]) is None
    assert desk.cash(KEY_A) == 0 and desk.shares(KEY_A) == 10 * ONE  # the maker's price, not the taker's


# --------------------------------------------------------------------------- wallets


def test_proxy_and_safe_orders_must_name_the_signers_own_wallet():
    desk = Desk()
    mine, theirs = desk.trading.wallets.of(KEY_A.address), desk.trading.wallets.of(KEY_B.address)
    maker, taker = limit_amounts(BUY, c(30), 5 * ONE)

    def as_(signature_type: int, wallet: str) -> dict[str, Any]:
        return sign_body(KEY_A, YES, BUY, maker, taker, maker=wallet, signature_type=signature_type)

    for signature_type, wallet in ((1, theirs.proxy), (1, KEY_B.address), (1, mine.safe), (2, theirs.safe),
                                   (2, mine.proxy), (0, mine.proxy), (3, mine.proxy), (4, mine.proxy)):
        assert desk.refusal(KEY_A, as_(signature_type, wallet)) == "invalid signature", (signature_type, wallet)
    assert desk.post(KEY_A, as_(1, mine.proxy))["status"] == "live"
    assert desk.post(KEY_A, as_(2, mine.safe.lower()))["status"] == "live"
    makers = [o["maker_address"] for o in desk.trading.open_orders(desk.account(KEY_A))]
    assert makers == [mine.proxy, mine.safe]
    assert desk.cash(KEY_B) == 1_000 * ONE  # nothing was ever charged to another account


def test_a_deposit_wallet_order_names_the_wallet_as_maker_and_signer():
    desk = Desk()
    wallet = desk.trading.wallets.of(KEY_A.address).deposit
    assert wallet == deposit_wallet(KEY_A.address) == "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"  # onchain doc §3.2
    assert deposit_wallet("0x" + "00" * 19 + "01") == "0x94bF330955A0b957662fEaF878dE77bf25f76cD9"
    maker, taker = limit_amounts(SELL, c(70), 5 * ONE)
    desk.give(KEY_A, yes=5 * ONE)
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, SELL, maker, taker, maker=wallet, signer=wallet,
                                         signature_type=3)) == "invalid signature"  # plain: tests/test_sim_poly1271.py
    assert desk.refusal(KEY_A, sign_body(KEY_A, YES, SELL, maker, taker, maker=wallet,
                                         signature_type=3)) == "invalid signature"  # the signer must be the wallet


async def test_the_admin_account_shows_the_wallets_the_venue_made(autojump_clock):
    sim = Sim()
    async with sim.client() as http:
        truth = (await http.get("/admin/account", params={"address": KEY_B.address})).json()
    assert truth["wallets"] == sim.server.trading.wallets.of(KEY_B.address).shown()
    assert truth["wallets"]["deposit_wallet"] == deposit_wallet(KEY_B.address)
    assert len(set(truth["wallets"].values()) | {KEY_B.address}) == 4


# --------------------------------------------------------------------------- REST shapes


async def test_open_orders_carry_every_key_of_the_venues_sample_and_page_by_cursor(autojump_clock, monkeypatch):
    sample = json.loads((SAMPLES / "http_open_orders_page.json").read_text())
    monkeypatch.setattr(order_views, "PAGE_SIZE", 2)
    sim = Sim()
    first, second = sim.venue.markets()[:2]
    async with sim.client() as http:
        ids = []
        for info in (first, second, first):
            body = order_body(sim.venue, KEY_A, info.tokens[0], BUY, info.tick, 5 * ONE + len(ids) * ONE)
            ids.append((await signed(http, KEY_A, "POST", "/order", body)).json()["orderID"])
        one = (await signed(http, KEY_A, "GET", "/data/orders", params={"next_cursor": "MA=="})).json()
        two = (await signed(http, KEY_A, "GET", "/data/orders", params={"next_cursor": one["next_cursor"]})).json()
        bad = await signed(http, KEY_A, "GET", "/data/orders", params={"next_cursor": "%%%"})
        by_market = (await signed(http, KEY_A, "GET", "/data/orders", params={"market": first.market})).json()
        by_id = (await signed(http, KEY_A, "GET", "/data/orders", params={"id": ids[1]})).json()
        single = (await signed(http, KEY_A, "GET", f"/data/order/{ids[0]}")).json()
        others = (await signed(http, KEY_B, "GET", f"/data/order/{ids[0]}")).json()
        await signed(http, KEY_A, "DELETE", "/order", {"orderID": ids[0]})
        gone = await signed(http, KEY_A, "GET", f"/data/order/{ids[0]}")
    assert set(one) == set(sample) and one["next_cursor"] == "Mg==" and two["next_cursor"] == "LTE="
    assert [o["id"] for o in one["data"] + two["data"]] == ids and bad.status_code == 400
    item = one["data"][0]
    assert set(item) == set(sample["data"][0])
    assert {k: type(v) for k, v in item.items() if k != "expiration"} == {
        k: type(v) for k, v in sample["data"][0].items() if k != "expiration"}
    assert (item["status"], item["order_type"], item["expiration"], item["associate_trades"]) == ("LIVE", "GTC", "0", [])
    assert item["outcome"] == first.outcomes[0] and item["maker_address"] == KEY_A.address
    assert item["owner"] == credentials_for(KEY_A.address).api_key
    assert [o["id"] for o in by_market["data"]] == [ids[0], ids[2]] and [o["id"] for o in by_id["data"]] == [ids[1]]
    assert single == item and others is None and (gone.status_code, gone.json()) == (200, None)


async def test_a_matched_post_names_its_amounts_trades_and_transactions(autojump_clock):
    sim = Sim()
    info, token, _, ask = roomy(sim.venue)
    price = ask - info.tick  # B alone at the best ask
    sim.server.trading.give(credentials_for(KEY_B.address).api_key, shares={token: 10 * ONE})
    async with sim.client() as http:
        rest = await signed(http, KEY_B, "POST", "/order", order_body(sim.venue, KEY_B, token, SELL, price, 10 * ONE))
        took = (await signed(http, KEY_A, "POST", "/order",
                             order_body(sim.venue, KEY_A, token, BUY, price, 6 * ONE, FAK))).json()
        [trade_id] = took["tradeIDs"]
        found = (await signed(http, KEY_A, "GET", "/data/trades", params={"id": trade_id})).json()
        none = (await signed(http, KEY_A, "GET", "/data/trades", params={"id": "nope"})).json()
        open_b = (await signed(http, KEY_B, "GET", f"/data/order/{rest.json()['orderID']}")).json()
    assert (took["status"], took["takingAmount"], took["makingAmount"]) == (
        "matched", "6", format_micro(notional(price, 6 * ONE)))
    assert [t["id"] for t in found["data"]] == [trade_id] and none["data"] == []
    assert took["transactionsHashes"] == [found["data"][0]["transaction_hash"]]
    assert (open_b["status"], open_b["size_matched"], open_b["associate_trades"]) == ("LIVE", "6", [trade_id])


async def test_balance_allowance_lists_each_exchanges_allowance_and_update_answers_empty(autojump_clock):
    sim = Sim()
    async with sim.client() as http:
        collateral = await signed(http, KEY_A, "GET", "/balance-allowance",
                                  params={"asset_type": "COLLATERAL", "signature_type": "0"})
        sim.server.trading.allowances[credentials_for(KEY_A.address).api_key] = 50 * ONE
        limited = await signed(http, KEY_A, "GET", "/balance-allowance", params={"asset_type": "COLLATERAL"})
        update = await signed(http, KEY_A, "GET", "/balance-allowance/update", params={"asset_type": "COLLATERAL"})
        wrong = await signed(http, KEY_A, "GET", "/balance-allowance/update", params={"asset_type": "X"})
    body = collateral.json()
    assert set(body) == {"balance", "allowances"} and body["balance"] == str(10_000 * ONE)
    assert set(body["allowances"]) == {EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"}
    assert set(body["allowances"].values()) == {str(2**256 - 1)}
    assert set(limited.json()["allowances"].values()) == {str(50 * ONE)}
    assert (update.status_code, update.content) == (200, b"") and wrong.status_code == 400


async def test_a_batch_holds_at_most_fifteen_orders(autojump_clock):
    sim = Sim()
    info = sim.venue.markets()[0]
    bodies = [order_body(sim.venue, KEY_A, info.tokens[0], BUY, info.tick, (5 + i) * ONE) for i in range(16)]
    async with sim.client() as http:
        too_many = await signed(http, KEY_A, "POST", "/orders", bodies)
        far_too_many = await signed(http, KEY_A, "POST", "/orders", bodies * 13)
        empty = await signed(http, KEY_A, "POST", "/orders", [])
        fifteen = await signed(http, KEY_A, "POST", "/orders", bodies[:14] + [7])
    assert (too_many.status_code, too_many.json()["error"]) == (400, "Too many orders in payload, max allowed: 15")
    assert far_too_many.status_code == 400 and empty.status_code == 400
    legs = fifteen.json()
    assert fifteen.status_code == 200 and len(legs) == 15 and all(leg["success"] for leg in legs[:14])
    assert (legs[14]["success"], legs[14]["orderID"], legs[14]["errorMsg"]) == (False, "", "Invalid payload")
    assert len(sim.venue.engine.open_orders(owner=credentials_for(KEY_A.address).api_key)) == 14


# --------------------------------------------------------------------------- malformed requests


async def test_malformed_order_requests_are_answered_4xx_with_the_venues_message(autojump_clock):
    sim = Sim()
    info = sim.venue.markets()[0]
    good = order_body(sim.venue, KEY_A, info.tokens[0], BUY, info.tick, 5 * ONE)
    non_hex = json.loads(json.dumps(good))
    non_hex["order"]["signature"] = "0x" + "zz" * 65
    not_address = json.loads(json.dumps(good))
    not_address["order"]["maker"] = "0xnot-an-address"
    cases = [
        ("DELETE", "/order", None, None), ("DELETE", "/order", {"orderID": ["0x1"]}, None),
        ("DELETE", "/order", {"orderID": {"a": 1}}, None), ("DELETE", "/orders", 7, None),
        ("DELETE", "/orders", [[1]], None), ("POST", "/orders", 5, None), ("POST", "/v1/heartbeats", None, None),
        ("POST", "/v1/heartbeats", [1], None), ("POST", "/heartbeats", [1], None),
        ("POST", "/order", non_hex, None), ("POST", "/order", not_address, None),
        ("POST", "/order", None, b"[" * 5_000), ("POST", "/orders", None, b"[" * 5_000),
    ]
    async with sim.client() as http:
        for method, path, body, raw in cases:
            answer = await signed(http, KEY_A, method, path, body, raw=raw)
            assert 400 <= answer.status_code < 500 and "error" in answer.json(), (method, path, body, answer.text)
        assert (await signed(http, KEY_A, "POST", "/order", not_address)).json()["error"] == "INVALID_ORDER_ERROR"
        assert (await signed(http, KEY_A, "POST", "/order", non_hex)).json()["error"] == "INVALID_ORDER_ERROR"
        assert (await signed(http, KEY_A, "POST", "/heartbeats")).json() == {"status": "ok"}  # the legacy form
        assert (await signed(http, KEY_A, "POST", "/order", good)).json()["success"] is True  # still serving


async def test_an_accepted_order_is_on_the_rest_book_and_in_a_new_snapshot_before_the_world_steps() -> None:
    sim = Sim()
    info, token, bid, ask = roomy(sim.venue)
    price = bid + info.tick
    async with sim.client() as http:
        before = (await http.get("/book", params={"token_id": token})).json()
        posted = await signed(http, KEY_A, "POST", "/order", order_body(sim.venue, KEY_A, token, BUY, price, 7 * ONE))
        assert posted.json()["status"] == "live"
        book = (await http.get("/book", params={"token_id": token})).json()  # no world step in between
    assert book["bids"][-1] == {"price": format_micro(price), "size": "7"} != before["bids"][-1]
    assert book["hash"] != before["hash"]
    snapshot = json.loads(sim.venue.snapshot([token]))[0]
    assert snapshot["bids"][-1] == book["bids"][-1]
    # the frames still go out with the next step, once, in the order they happened
    frames = [f.text for f in sim.venue.step(sim.venue.now_ns)]
    changes = [json.loads(t) for t in frames if '"price_change"' in t]
    assert any(c["price"] == format_micro(price) and c["size"] == "7" and c["asset_id"] == token
               for m in changes for c in m["price_changes"])
    again = [json.loads(f.text) for f in sim.venue.step(sim.venue.now_ns) if '"price_change"' in f.text]
    assert not any(c["price"] == format_micro(price) and c["asset_id"] == token for m in again for c in m["price_changes"])
