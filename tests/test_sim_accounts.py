"""The simulator's account rules under random interleavings: limit and market orders of every
type on both sides from several accounts, cancels, GTD expiries, and the world's own orders
resting and taking (maker fills the accounts did not ask for) never make an account's pUSD or
shares negative, nor let its resting orders hold more than it has; and each account always equals
its funding plus the sum of its trades, as the engine's events tell them."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mmbot.config import Secret
from mmbot.model import ONE, Side, TimeInForce, notional, notional_down
from mmbot.venues.polymarket.auth import SigningKey
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.refusals import VenueRefusal
from tests.test_sim_orders import (
    KEY_A, KEY_B, NO, SECOND, WORLD, YES, Desk, c, credentials_for, limit_amounts, market_amounts, sign_body,
)

KEY_C = SigningKey(Secret(value="0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"))
KEYS = (KEY_A, KEY_B, KEY_C)
FUNDING = 100 * ONE
GIVEN = 20 * ONE  # shares of each token every account starts with
FEE_RATE = 72_000

keys = st.sampled_from(KEYS)
tokens = st.sampled_from((YES, NO))
sides = st.sampled_from((Side.BUY, Side.SELL))
cents = st.integers(30, 70) | st.integers(1, 99)
sizes = st.integers(500, 3_000).map(lambda hundredths: hundredths * 10_000)  # 5 to 30 shares, 2 dp


class Accounts(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.desk = Desk(fee_rate=FEE_RATE, cash=FUNDING)
        self.desk.trading.add_account(KEY_C.address, credentials_for(KEY_C.address))
        for key in KEYS:
            self.desk.give(key, yes=GIVEN, no=GIVEN)
        for token in (YES, NO):  # the world's book to start with: 20 shares a cent from 0.40 to 0.60
            for price in range(40, 61):
                self.desk.engine.submit(WORLD, token, Side.BUY if price < 50 else Side.SELL, c(price), 20 * ONE,
                                        TimeInForce.GTC, True, self.desk.now_ns)
        self.desk.settle()
        self.accepted = 0

    def _post(self, key: SigningKey, body: dict) -> None:
        try:
            self.desk.post(key, body)
            self.accepted += 1
        except VenueRefusal:
            pass

    @rule(key=keys, token=tokens, side=sides, price=cents, size=sizes,
          tif=st.sampled_from(tuple(TimeInForce)), post_only=st.booleans(), life_s=st.integers(61, 600))
    def limit_order(self, key, token, side, price, size, tif, post_only, life_s) -> None:
        maker, taker = limit_amounts(side, c(price), size)
        expiration = self.desk.now_ns // SECOND + life_s if tif is TimeInForce.GTD else 0
        self._post(key, sign_body(key, token, side, maker, taker, tif, expiration=expiration, post_only=post_only))

    @rule(key=keys, token=tokens, side=sides, worst=cents, amount=st.integers(100, 3_000),
          tif=st.sampled_from((TimeInForce.FOK, TimeInForce.FAK)))
    def market_order(self, key, token, side, worst, amount, tif) -> None:
        maker, taker = market_amounts(side, amount / 100, worst / 100)  # float-ok: the official builder's input
        if maker and taker:
            self._post(key, sign_body(key, token, side, maker, taker, tif))

    @rule(token=tokens, side=sides, price=cents, size=sizes)
    def world_rests(self, token, side, price, size) -> None:
        self.desk.engine.submit(WORLD, token, side, c(price), size, TimeInForce.GTC, True, self.desk.now_ns)
        self.desk.settle()

    @rule(token=tokens, side=sides, price=cents, size=sizes)
    def world_takes(self, token, side, price, size) -> None:
        self.desk.engine.submit(WORLD, token, side, c(price), size, TimeInForce.FAK, False, self.desk.now_ns)
        self.desk.settle()

    @rule(key=keys, pick=st.integers(0, 50))
    def cancel_one(self, key, pick) -> None:
        account = self.desk.account(key)
        mine = self.desk.engine.open_orders(owner=account.creds.api_key)
        if mine:
            self.desk.trading.cancel(account, [mine[pick % len(mine)].order_id], self.desk.now_ns)

    @rule(key=keys, token=st.none() | tokens)
    def cancel_all(self, key, token) -> None:
        self.desk.trading.cancel_all(self.desk.account(key), self.desk.now_ns, asset_id=token or "")

    @rule(seconds=st.integers(1, 400))
    def time_passes(self, seconds) -> None:
        self.desk.now_ns += seconds * SECOND
        self.desk.engine.expire_due(self.desk.now_ns)
        self.desk.settle()

    @invariant()
    def nothing_negative_and_resting_orders_covered(self) -> None:
        for key in KEYS:
            account = self.desk.account(key)
            cash = self.desk.trading.cash(account)
            for token in (YES, NO):
                buying, selling = self.desk.engine.committed(account.creds.api_key, token)
                shares = self.desk.trading.shares(account, token)
                assert cash - buying >= 0, (key.address, cash, buying)
                assert shares - selling >= 0, (key.address, token, shares, selling)

    @invariant()
    def each_account_is_its_funding_plus_its_trades(self) -> None:
        cash = {key.address: FUNDING for key in KEYS}
        held = {(key.address, token): GIVEN for key in KEYS for token in (YES, NO)}
        owners = {self.desk.account(key).creds.api_key: key.address for key in KEYS}
        for trade in (e for e in self.desk.events if isinstance(e, ev.Trade)):
            legs = ((trade.taker_owner, trade.taker_token, trade.taker_side, trade.taker_price, trade.taker_fee),
                    (trade.maker_owner, trade.maker_token, trade.maker_side, trade.maker_price, 0))
            for owner, token, side, price, fee in legs:
                if owner not in owners:
                    continue
                who = owners[owner]
                if side is Side.BUY:
                    cash[who] -= notional(price, trade.size) + fee
                    held[who, token] += trade.size
                else:
                    cash[who] += notional_down(price, trade.size) - fee
                    held[who, token] -= trade.size
        for key in KEYS:
            account = self.desk.account(key)
            assert self.desk.trading.cash(account) == cash[key.address]
            for token in (YES, NO):
                assert self.desk.trading.shares(account, token) == held[key.address, token]


Accounts.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
TestAccounts = Accounts.TestCase
