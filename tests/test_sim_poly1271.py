"""The simulator accepts a ``POLY_1271`` (deposit-wallet) order only as the venue does: maker and
signer the owner's deposit wallet, the owner's ERC-7739 envelope (``sign_1271.DepositWalletSigner``;
a plain signature is ``invalid signature``), the wallet deployed on the simulated chain and owned
by the API key's address (else ``the order signer address has to be the address of the API
KEY``), and the wallet's approvals to the order's exchange on chain — pUSD for a BUY, the CTF
operator for a SELL (else ``not enough balance / allowance``). The order ID stays the plain order
digest. Rules on ``SimTrading`` over a bare engine and a real ``SimChain`` (``Desk``); once end to
end over loopback: created and approved through the relayer, then posted with L2 headers."""

from __future__ import annotations

import random
from typing import Any

import httpx
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.model import ONE, MarketInfo, Side
from mmbot.venues.polymarket import contracts
from mmbot.venues.polymarket.auth import (
    EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, POLY_1271, OrderSigner, OrderV2, SigningKey, typed_digest,
)
from mmbot.venues.polymarket.deposit_wallet import beacon_address
from mmbot.venues.polymarket.sign_1271 import DepositWalletSigner
from mmbot.venues.polymarket.wallet_batch import batch_body, create_body, sign_batch
from mmbot.venues.simulator.chain_state import SimChain
from mmbot.venues.simulator.refusals import INVALID_SIGNATURE, NOT_ENOUGH_BALANCE, SIGNER_NOT_API_KEY
from mmbot.venues.simulator.trading import credentials_for
from tests.test_sim_orders import _DOMAINS, BUY, NO, SELL, YES, Desk, c, limit_amounts, sign_body
from tests.test_sim_server import KEY_A, KEY_B, Sim, signed

NEG = MarketInfo(market="0x" + "22" * 32, tokens=("2001", "2002"), outcomes=("Yes", "No"), neg_risk=True)
WALLET_A, WALLET_B = beacon_address(KEY_A.address), beacon_address(KEY_B.address)
SECOND = 1_000_000_000


class Chained(Desk):
    """``Desk`` with a neg-risk market too, and the simulated chain the server would give it."""

    def __init__(self) -> None:
        super().__init__()
        self.engine.add_market(NEG, 0)
        self.chain = SimChain(trading=self.trading, engine=self.engine, rng=random.Random(1))
        self.trading.chain = self.chain
        self.chain.advance(self.now_ns)

    def run(self, key: SigningKey, *calls: contracts.Call) -> None:
        wallet = beacon_address(key.address)
        nonce, deadline = self.chain.wallet_nonce(wallet), self.now_ns // SECOND + 240
        assert self.chain.run_wallet_batch(wallet, nonce, deadline, list(calls), self.now_ns) is None


def wallet_order(key: SigningKey, token: str, side: Side, price: int = c(40), size: int = 10 * ONE, *,
                 wallet: str | None = None, signer: SigningKey | None = None, neg_risk: bool = False,
                 plain: bool = False, salt: int = 7) -> tuple[str, dict[str, Any]]:
    """(order ID, ``POST /order`` body) of a deposit-wallet order posted with ``key``'s API key,
    its envelope signed by ``signer`` (``key``) under the exchange of ``neg_risk`` — or, ``plain``,
    the order's EIP-712 digest signed directly."""
    wallet = wallet or beacon_address(key.address)
    maker_amount, taker_amount = limit_amounts(side, price, size)
    order = OrderV2(salt=salt, maker=wallet, signer=wallet, token_id=int(token), maker_amount=maker_amount,
                    taker_amount=taker_amount, side=side, signature_type=POLY_1271, timestamp_ms=0)
    if plain:
        order_id = "0x" + typed_digest(_DOMAINS[neg_risk], order.struct_hash()).hex()
        signature = (signer or key).sign(bytes.fromhex(order_id[2:]))
    else:
        order_id, signature = DepositWalletSigner(signer or key, wallet).sign(order, neg_risk=neg_risk)
    return order_id, {"order": order.wire(signature), "owner": credentials_for(key.address).api_key,
                      "orderType": "GTC", "postOnly": True}


def test_an_order_is_accepted_only_once_the_wallet_is_deployed_and_approved_for_its_side():
    desk = Chained()
    desk.give(KEY_A, yes=20 * ONE)
    order_id, buy = wallet_order(KEY_A, YES, BUY)
    assert desk.refusal(KEY_A, buy) == SIGNER_NOT_API_KEY  # no wallet yet (py-clob-client-v2 #64)
    desk.chain.deploy_wallet(KEY_A.address, desk.now_ns)
    assert desk.refusal(KEY_A, buy) == NOT_ENOUGH_BALANCE  # deployed, nothing approved
    desk.run(KEY_A, contracts.approve_call(EXCHANGE_V2))
    posted = desk.post(KEY_A, buy)
    assert posted["status"] == "live" and posted["orderID"] == order_id
    assert order_id == OrderSigner(KEY_A).order_id(OrderV2(  # the plain digest, whoever signs
        salt=7, maker=WALLET_A, signer=WALLET_A, token_id=int(YES), maker_amount=4 * ONE, taker_amount=10 * ONE,
        side=BUY, signature_type=POLY_1271, timestamp_ms=0))
    _, sell = wallet_order(KEY_A, YES, SELL, c(70))
    assert desk.refusal(KEY_A, sell) == NOT_ENOUGH_BALANCE  # pUSD approved, the CTF operator not
    desk.run(KEY_A, contracts.operator_call(EXCHANGE_V2))
    assert desk.post(KEY_A, sell)["status"] == "live"
    assert desk.cash(KEY_A) == 1_000 * ONE  # the wallet's orders rest on the owner's one balance
    assert len(desk.trading.open_orders(desk.account(KEY_A))) == 2


def test_a_neg_risk_order_needs_the_neg_risk_exchange_approved_and_its_domain_signed():
    desk = Chained()
    desk.chain.deploy_wallet(KEY_A.address, desk.now_ns)
    desk.run(KEY_A, contracts.approve_call(EXCHANGE_V2), contracts.operator_call(EXCHANGE_V2))
    _, buy = wallet_order(KEY_A, NEG.tokens[0], BUY, neg_risk=True)
    assert desk.refusal(KEY_A, buy) == NOT_ENOUGH_BALANCE  # the standard exchange's approval is not enough
    desk.run(KEY_A, contracts.approve_call(NEG_RISK_EXCHANGE_V2))
    _, wrong_domain = wallet_order(KEY_A, NEG.tokens[0], BUY, neg_risk=False, salt=8)
    assert desk.refusal(KEY_A, wrong_domain) == INVALID_SIGNATURE
    assert desk.post(KEY_A, buy)["status"] == "live"


def test_what_is_refused_with_the_venues_strings():
    desk = Chained()
    for key in (KEY_A, KEY_B):
        desk.chain.deploy_wallet(key.address, desk.now_ns)
        desk.run(key, *contracts.trading_approvals())
    _, plain = wallet_order(KEY_A, YES, BUY, plain=True)
    assert desk.refusal(KEY_A, plain) == INVALID_SIGNATURE  # the owner's plain signature: not for type 3
    _, by_b = wallet_order(KEY_A, YES, BUY, signer=KEY_B)
    assert desk.refusal(KEY_A, by_b) == INVALID_SIGNATURE  # B's key signed A's wallet's envelope
    _, as_b = wallet_order(KEY_B, YES, BUY, wallet=WALLET_A, signer=KEY_A)
    assert desk.refusal(KEY_B, as_b) == SIGNER_NOT_API_KEY  # A's wallet on B's API key
    _, good = wallet_order(KEY_A, YES, BUY)
    swapped = {**good, "order": {**good["order"], "maker": KEY_A.address}}
    assert desk.refusal(KEY_A, swapped) == INVALID_SIGNATURE  # maker and signer differ
    other = {**good, "order": {**good["order"], "takerAmount": str(11 * ONE)}}
    assert desk.refusal(KEY_A, other) == INVALID_SIGNATURE  # the envelope is another order's
    short = {**good, "order": {**good["order"], "signature": good["order"]["signature"][:-4]}}
    assert desk.refusal(KEY_A, short) == INVALID_SIGNATURE
    assert desk.post(KEY_A, good)["status"] == "live"
    assert desk.post(KEY_B, wallet_order(KEY_B, NO, BUY)[1])["status"] == "live"


def test_eoa_orders_are_unchanged_by_the_chain():
    desk = Chained()
    maker, taker = limit_amounts(BUY, c(30), 5 * ONE)
    assert desk.post(KEY_A, sign_body(KEY_A, YES, BUY, maker, taker))["status"] == "live"
    assert desk.chain.wallet_owner(WALLET_A) is None


@settings(max_examples=60, deadline=None)
@given(deployed=st.booleans(), pusd=st.booleans(), operator=st.booleans(), side=st.sampled_from((BUY, SELL)),
       how=st.sampled_from(("envelope", "plain", "other key", "other api key")))
def test_the_outcome_is_the_first_rule_an_order_breaks(deployed, pusd, operator, side, how):
    desk = Chained()
    desk.give(KEY_A, yes=20 * ONE)
    if deployed:
        desk.chain.deploy_wallet(KEY_A.address, desk.now_ns)
        calls = ([contracts.approve_call(EXCHANGE_V2)] if pusd else []) + (
            [contracts.operator_call(EXCHANGE_V2)] if operator else [])
        if calls:
            desk.run(KEY_A, *calls)
    poster = KEY_B if how == "other api key" else KEY_A
    _, body = wallet_order(poster, YES, side, c(40) if side is BUY else c(70), wallet=WALLET_A,
                           signer=KEY_B if how == "other key" else KEY_A, plain=how == "plain")
    if how in ("plain",):
        expected = INVALID_SIGNATURE
    elif how == "other api key" or not deployed:
        expected = SIGNER_NOT_API_KEY
    elif how == "other key":
        expected = INVALID_SIGNATURE
    elif not (pusd if side is BUY else operator):
        expected = NOT_ENOUGH_BALANCE
    else:
        expected = ""
    if expected:
        assert desk.refusal(poster, body) == expected
        assert desk.trading.open_orders(desk.account(poster)) == []
    else:
        assert desk.post(poster, body)["status"] == "live"


async def test_over_loopback_a_wallet_made_through_the_relayer_trades(nursery, autojump_clock):
    sim = Sim()
    urls = await nursery.start(sim.server.run)
    info = next(i for i in sim.venue.markets() if not i.neg_risk and sim.venue.best(i.tokens[0])[0] is not None)
    bid, _ = sim.venue.best(info.tokens[0])
    price = bid - 2 * info.tick
    key, address = sim.server.relayer.relayer_key_for(KEY_A.address)
    relayer_headers = {"RELAYER_API_KEY": key, "RELAYER_API_KEY_ADDRESS": address}
    order_id, body = wallet_order(KEY_A, info.tokens[0], BUY, price, 10 * ONE)
    async with httpx.AsyncClient(base_url=urls.rest) as http:
        refused = await signed(http, KEY_A, "POST", "/order", body)
        assert (refused.status_code, refused.json()["error"]) == (400, SIGNER_NOT_API_KEY)

        async def through_relayer(submit: dict[str, Any]) -> None:
            tid = (await http.post("/relayer/submit", json=submit, headers=relayer_headers)).json()["transactionID"]
            for _ in range(60):
                await trio.sleep(1)
                if (await http.get(f"/relayer/v1/account/transactions/{tid}")).json()["state"] == "STATE_CONFIRMED":
                    return
            raise AssertionError("not confirmed in a minute")

        await through_relayer(create_body(owner=KEY_A.address))
        chain = sim.server.chain
        nonce, deadline = chain.wallet_nonce(WALLET_A), chain.block_timestamp + 240
        calls = contracts.trading_approvals()
        await through_relayer(batch_body(owner=KEY_A.address, wallet=WALLET_A, nonce=nonce, deadline=deadline,
                                         calls=calls, signature=sign_batch(KEY_A, wallet=WALLET_A, nonce=nonce,
                                                                           deadline=deadline, calls=calls)))
        posted = await signed(http, KEY_A, "POST", "/order", body)
        assert posted.status_code == 200, posted.text
        assert posted.json()["orderID"] == order_id and posted.json()["success"] is True

