"""The simulator's trading side, sans-IO: accounts, signed V2 orders checked and matched in the
engine, cancels and open orders — with the venue's error strings (``refusals``).

The HTTP routes map onto these calls. Each check is the venue's: the L2 HMAC over the exact body
received (``access``), the order's form and amounts (``order_entry``: limit or market terms,
precision, GTD expiration), its EIP-712 signature (the signer is recovered from it and must be the
account's address) and its maker (``wallets``: the signer itself, or the signer's own proxy, Safe
or deposit wallet), the tick grid and minimum size (the engine's own validation), and the account's
balance. The order ID is the digest, as on the venue.

Balances: a BUY needs its pUSD (``makerAmount``) plus the taker fees of the fills it makes on
arrival free of what the account's resting BUYs hold (each rests holding price x its remaining
size: a resting order only ever trades as a maker, and makers pay no fee); a SELL needs its
shares free of the account's resting SELLs of that token (else ``not enough balance /
allowance``). The check runs inside the engine's order entry, against the exact fills the order
is about to make, and the engine's events reach the accounts (``settle``) before the next request
is read: no account's cash or shares ever go below zero.

An account holds pUSD (its funding plus what its trades moved) and shares, both read off the user
feed's record of its trades (``user_frames.UserFeed``), which also answers ``/data/trades``. All
of an owner's wallets share the one balance. Allowances are unlimited unless a test sets one
(``allowances``); approving is an on-chain step. Shares of a resolved market stay held (redeeming
is on chain too). ``truth`` is an account as the venue's books have it, with counts of what it
asked for, for comparing with a client's ledger.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Protocol

from mmbot.model import ONE, Side, notional, notional_down, taker_fee
from mmbot.venues.polymarket.auth import (
    CHAIN_ID, EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, POLY_1271, ApiCredentials, OrderV2, SigningError, domain_separator,
    parse_address, typed_digest,
)
from mmbot.venues.polymarket.sign_1271 import open_envelope
from mmbot.venues.simulator import access, order_entry
from mmbot.venues.simulator import events as ev
from mmbot.venues.simulator.access import Account, credentials_for, recover_address
from mmbot.venues.simulator.engine import Check, Engine
from mmbot.venues.simulator.heartbeats import Heartbeats
from mmbot.venues.simulator.matching import Take
from mmbot.venues.simulator.order_views import open_order, post_answer, refused_leg
from mmbot.venues.simulator.refusals import (
    INVALID_SIGNATURE, NOT_ENOUGH_BALANCE, SIGNER_NOT_API_KEY, UNAUTHORIZED, VenueRefusal,
)
from mmbot.venues.simulator.user_frames import UserFeed
from mmbot.venues.simulator.user_messages import transaction_hash
from mmbot.venues.simulator.wallets import Wallets

__all__ = ["UNAUTHORIZED", "Account", "SimTrading", "VenueRefusal", "credentials_for", "json_body"]

DEFAULT_FUNDING = 10_000 * ONE  # pUSD an account starts with unless it is given an amount
UNLIMITED_ALLOWANCE = str(2**256 - 1)
NEG_RISK_ADAPTER = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"
SPENDERS = (EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, NEG_RISK_ADAPTER)  # what /balance-allowance lists
MAX_BATCH = 15  # orders in one POST /orders
MAX_CANCELS = 3_000  # order ids in one DELETE /orders
# what each account asked of the venue (requests that passed authentication and the fault gate)
_COUNTS = ("orders_received", "orders_accepted", "cancels_received", "cancel_all_received", "orders_canceled")


class DepositWalletChain(Protocol):
    """What a ``POLY_1271`` order's checks read on chain (``chain_state.SimChain``); addresses in lower case."""

    def wallet_owner(self, wallet: str) -> str | None: ...

    def allowance(self, owner: str, spender: str) -> int: ...

    def approved(self, owner: str, operator: str) -> bool: ...


class SimTrading:
    def __init__(self, engine: Engine, feed: UserFeed, *, chain_id: int = CHAIN_ID,
                 funding: int = DEFAULT_FUNDING, seed: int = 0, settle: Callable[[], None] | None = None) -> None:
        """``settle``: hands the engine's events to ``feed`` at once (``LiveVenue.settle``), called
        after every engine call a request makes; ``seed`` fixes the wallets the venue makes."""
        self.engine = engine
        self.feed = feed
        self.funding = funding
        self.wallets = Wallets(seed)
        self._settle = settle or (lambda: None)
        self._accounts: dict[str, Account] = {}
        self._funded: dict[str, int] = {}  # api key -> pUSD it was given
        self.allowances: dict[str, int] = {}  # api key -> pUSD the exchanges may spend, if limited
        self.heartbeats = Heartbeats(engine)
        # called with each new account (the simulated chain moves what its addresses got before it)
        self.account_listeners: list[Callable[[Account], None]] = []
        self._counts: dict[str, dict[str, int]] = {}  # api key -> _COUNTS
        self.chain: DepositWalletChain | None = None  # set by the server: deposit wallets live on it
        self._chain_id = chain_id
        self._domains = {
            False: domain_separator("Polymarket CTF Exchange", "2", chain_id, EXCHANGE_V2),
            True: domain_separator("Polymarket CTF Exchange", "2", chain_id, NEG_RISK_EXCHANGE_V2),
        }

    def add_account(self, address: str, creds: ApiCredentials, *, cash: int | None = None) -> None:
        """An account that may trade, funded with ``cash`` pUSD (``funding`` if not given); adding
        it again changes nothing."""
        if creds.api_key not in self._accounts:
            self._accounts[creds.api_key] = Account(address=address, creds=creds)
            self._funded[creds.api_key] = self.funding if cash is None else cash
            self._counts[creds.api_key] = dict.fromkeys(_COUNTS, 0)
            self.feed.add_account(creds.api_key, address)
            for listener in self.account_listeners:
                listener(self._accounts[creds.api_key])

    def account(self, *, api_key: str = "", address: str = "") -> Account:
        """The account with ``api_key``, or the one account of ``address``; a ``VenueRefusal`` if none."""
        if api_key:
            found = [self._accounts[api_key]] if api_key in self._accounts else []
        else:
            found = [a for a in self._accounts.values() if a.address.lower() == address.lower()]
        if len(found) != 1:
            raise VenueRefusal(404 if not found else 400, "no such account" if not found
                               else "several accounts have that address: ask by api_key")
        return found[0]

    def truth(self, account: Account) -> dict[str, Any]:
        """The account as the venue's books have it: pUSD and shares (micro-units), open orders, the
        trades it took part in (those that failed on chain counted apart), what it asked for, and
        the wallets the venue made for its address."""
        key = account.creds.api_key
        failed = self.feed.trades_failed.get(key, 0)
        return {
            "address": account.address, "api_key": key, "cash": self.cash(account),
            "positions": dict(sorted(self.feed.positions.get(key, {}).items())),
            "open_orders": len(self.engine.open_orders(owner=key)),
            "trades": self.feed.trades_taken.get(key, 0) - failed, "trades_failed": failed,
            **self._counts[key], "wallets": self.wallets.of(account.address).shown(),
        }

    def give(self, api_key: str, *, cash: int = 0, shares: Mapping[str, int] | None = None) -> None:
        """Move pUSD or tokens into an account from outside the venue (a deposit, a split on chain)."""
        self._funded[api_key] += cash
        for token, n in (shares or {}).items():
            self.feed.move_shares(api_key, token, n)

    # ------------------------------------------------------------------ balances

    def account_for_wallet(self, address: str) -> Account | None:
        """The account whose balance ``address`` holds on chain: the first (not revoked, if any)
        account of the owner that ``address`` is, or whose wallet it is; None if no owner's."""
        key = address.lower()
        found = []
        for account in self._accounts.values():
            wallets = self.wallets.of(account.address)
            if key in (wallets.owner.lower(), wallets.deposit.lower(), wallets.proxy.lower(), wallets.safe.lower()):
                found.append(account)
        return next((a for a in found if not a.revoked), found[0] if found else None)

    def cash(self, account: Account) -> int:
        key = account.creds.api_key
        return self._funded.get(key, 0) + self.feed.cash_moved.get(key, 0)

    def shares(self, account: Account, token: str) -> int:
        return self.feed.positions.get(account.creds.api_key, {}).get(token, 0)

    def balance_allowance(self, account: Account, asset_type: str, token_id: str) -> dict[str, Any]:
        """``GET /balance-allowance``: pUSD (COLLATERAL) or one token's shares (CONDITIONAL), and
        what each exchange contract may spend of it."""
        if asset_type == "COLLATERAL":
            balance = self.cash(account)
        elif asset_type == "CONDITIONAL" and token_id:
            balance = self.shares(account, token_id)
        else:
            raise VenueRefusal(400, "invalid asset_type or token_id")
        limited = self.allowances.get(account.creds.api_key)
        allowance = UNLIMITED_ALLOWANCE if limited is None else str(limited)
        return {"balance": str(balance), "allowances": dict.fromkeys(SPENDERS, allowance)}

    def trades(self, account: Account, after_s: int | None, *, before_s: int | None = None, market: str = "",
               asset_id: str = "", trade_id: str = "", maker_address: str = "") -> list[dict[str, Any]]:
        """``GET /data/trades``: the account's trades, each in its latest status, of one trade id
        or one maker wallet if given."""
        found = self.feed.trades_of(account.creds.api_key, after_s, before_s=before_s, market=market,
                                    asset_id=asset_id)
        if trade_id:
            found = [t for t in found if t.get("id") == trade_id]
        if maker_address:
            wallet = maker_address.lower()
            found = [t for t in found if str(t.get("maker_address", "")).lower() == wallet
                     or any(str(m.get("maker_address", "")).lower() == wallet for m in t.get("maker_orders", ()))]
        return found

    def _balance_check(self, account: Account) -> Check:
        """The account's balance rule, for the engine to apply to an order and its fills."""
        key = account.creds.api_key

        def check(request: ev.OrderRequest, takes: list[Take]) -> str:
            info = self.engine.market_of(request.token)
            fees = sum(taker_fee(t.size, t.price, info.fee_rate, info.fee_exponent) for t in takes)
            buying, selling = self.engine.committed(key, request.token)
            free_cash = self.cash(account) - buying
            if request.side is Side.BUY:
                spend = notional(request.price, request.size) if request.budget is None else request.budget
                limit = self.allowances.get(key)
                short = free_cash < spend + fees or (limit is not None and limit - buying < spend + fees)
            else:
                proceeds = sum(notional_down(t.price, t.size) for t in takes)
                short = self.shares(account, request.token) - selling < request.size or free_cash + proceeds < fees
            return NOT_ENOUGH_BALANCE if short else ""

        return check

    # ------------------------------------------------------------------ heartbeats

    def expire_heartbeats(self, now_ns: int, venue_ns: int) -> int:
        """Cancel-on-disconnect (``heartbeats.Heartbeats.expire``): how many orders that ended."""
        ended = self.heartbeats.expire(now_ns, venue_ns)
        self._settle()
        return ended

    def check_credentials(self, api_key: str, secret: str, passphrase: str) -> str:
        """The user channel's first frame carries the credentials themselves."""
        return access.check_credentials(self._accounts, api_key, secret, passphrase)

    # ------------------------------------------------------------------ L2

    def authenticate(self, headers: Mapping[str, str], method: str, path: str, body: bytes, *,
                     now_s: int) -> Account:
        """The L2 check (``access.authenticate``); ``now_s``: the server's clock, for the timestamp window."""
        return access.authenticate(self._accounts, headers, method, path, body, now_s=now_s)

    # ------------------------------------------------------------------ orders

    def post(self, account: Account, body: dict[str, Any], now_ns: int) -> dict[str, Any]:
        """One ``POST /order`` body → the post response; a refusal raises ``VenueRefusal``."""
        key = account.creds.api_key
        self._counts[key]["orders_received"] += 1
        entry = order_entry.parse(body)
        order = entry.order
        token = str(order.token_id)
        if not self.engine.has_token(token):
            raise VenueRefusal(400, "MARKET_NOT_READY")
        info = self.engine.market_of(token)
        digest = typed_digest(self._domains[info.neg_risk], order.struct_hash())
        if order.signature_type == POLY_1271:
            self._deposit_wallet_order(account, order, entry.signature, info.neg_risk)
        elif recover_address(digest, entry.signature) != account.address.lower() or not self.wallets.allowed(
                account.address, order.signature_type, order.maker, order.signer):
            raise VenueRefusal(400, INVALID_SIGNATURE)
        terms = order_entry.terms(entry, info.tick)
        expires_ns = order_entry.expires_ns(entry, now_ns)
        result = self.engine.submit(
            key, token, order.side, terms.price, terms.size, entry.tif, entry.post_only, now_ns,
            expires_ns=expires_ns, order_id="0x" + digest.hex(), budget=terms.budget,
            maker=parse_address(order.maker), check=self._balance_check(account),
        )
        self._settle()
        if not result.ok:
            raise VenueRefusal(400, result.error)
        self._counts[key]["orders_accepted"] += 1
        return post_answer(result, order.side, [transaction_hash(t.trade_id) for t in result.trades])

    def _deposit_wallet_order(self, account: Account, order: OrderV2, signature: str, neg_risk: bool) -> None:
        """A ``POLY_1271`` order as the venue and the exchange check it: maker and signer the same
        deposit wallet, the owner's ERC-7739 envelope (a plain signature is ``invalid signature``),
        the wallet deployed on ``chain`` and owned by the API key's address (else the venue's
        ``the order signer address has to be the address of the API KEY``), and the wallet's
        approvals to the exchange on chain: pUSD for a BUY, the CTF operator for a SELL."""
        if order.maker.lower() != order.signer.lower():
            raise VenueRefusal(400, INVALID_SIGNATURE)
        try:
            signed_by = open_envelope(order, signature, self._domains[neg_risk], self._chain_id)
        except SigningError:
            raise VenueRefusal(400, INVALID_SIGNATURE) from None
        chain = self.chain
        owner = chain.wallet_owner(order.signer.lower()) if chain is not None else None
        if chain is None or owner is None or owner.lower() != account.address.lower():
            raise VenueRefusal(400, SIGNER_NOT_API_KEY)
        if signed_by.lower() != owner.lower():
            raise VenueRefusal(400, INVALID_SIGNATURE)
        wallet, exchange = order.signer.lower(), (NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2).lower()
        if order.side is Side.BUY:
            short = chain.allowance(wallet, exchange) < order.maker_amount
        else:
            short = not chain.approved(wallet, exchange)
        if short:
            raise VenueRefusal(400, NOT_ENOUGH_BALANCE)

    def post_batch(self, account: Account, bodies: list[Any], now_ns: int) -> list[dict[str, Any]]:
        """``POST /orders``: each leg in turn, a refused one answered inside the batch's 200."""
        answers = []
        for body in bodies:
            try:
                if not isinstance(body, dict):
                    raise VenueRefusal(400, "Invalid payload")
                answers.append(self.post(account, body, now_ns))
            except VenueRefusal as refusal:
                answers.append(refused_leg(refusal.error))
        return answers

    def cancel(self, account: Account, order_ids: list[str], now_ns: int) -> dict[str, Any]:
        counts = self._counts[account.creds.api_key]
        counts["cancels_received"] += len(order_ids)
        canceled, not_canceled = [], {}
        for order_id in order_ids:
            view = self.engine.order(order_id)
            if view is not None and view.owner != account.creds.api_key:
                not_canceled[order_id] = "order not found"
                continue
            result = self.engine.cancel(order_id, now_ns)
            canceled += result.canceled
            not_canceled |= dict(result.not_canceled)
        self._settle()
        counts["orders_canceled"] += len(canceled)
        return {"canceled": canceled, "not_canceled": not_canceled}

    def cancel_all(self, account: Account, now_ns: int, *, market: str = "", asset_id: str = "") -> dict[str, Any]:
        """``DELETE /cancel-all``, or ``DELETE /cancel-market-orders`` for one market and/or token."""
        counts = self._counts[account.creds.api_key]
        counts["cancel_all_received"] += 1
        result = self.engine.cancel_all(account.creds.api_key, now_ns, market=market or None, token=asset_id or None)
        self._settle()
        counts["orders_canceled"] += len(result.canceled)
        return {"canceled": list(result.canceled), "not_canceled": {}}

    def open_orders(self, account: Account, *, market: str = "", asset_id: str = "",
                    order_id: str = "") -> list[dict[str, Any]]:
        """``GET /data/orders``: the account's resting orders, of one market, token or id if given."""
        wallet = self.wallets.of(account.address).owner
        return [
            open_order(o, self.engine.market_of(o.token), wallet)
            for o in self.engine.open_orders(owner=account.creds.api_key, market=market or None)
            if asset_id in ("", o.token) and order_id in ("", o.order_id)
        ]

    def order(self, account: Account, order_id: str) -> dict[str, Any] | None:
        """``GET /data/order/{id}``: one of the account's resting orders; None once it has ended
        (the venue keeps only active orders there), or if it is not the account's."""
        view = self.engine.order(order_id)
        if view is None or view.owner != account.creds.api_key:
            return None
        return open_order(view, self.engine.market_of(view.token), self.wallets.of(account.address).owner)


def json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's depth
        raise VenueRefusal(400, "Invalid payload") from None
