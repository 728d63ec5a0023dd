"""The simulator's trading side, sans-IO: accounts, signed V2 orders checked and matched in the
engine, cancels and open orders — with the venue's error strings (``refusals``).

The HTTP routes map onto these calls. Each check is the venue's: the L2 HMAC over the exact body
received (``access``), the order's EIP-712 signature (the signer is recovered from it and must
be the account's address), the order version, the tick grid and minimum size (the engine's own
validation), and the account's balance: a BUY needs its collateral free of the account's other
open BUYs, a SELL its shares free of the account's other open SELLs of that token (else ``not
enough balance / allowance``). The order ID is the digest, as on the venue.

An account holds pUSD (its funding plus what its trades moved) and shares, both read off the user
feed's record of its trades (``user_frames.UserFeed``), which also answers ``/data/trades``.
Allowances are unlimited unless a test sets one (``allowances``); approving is an on-chain step.
Shares of a resolved market stay held (redeeming is on chain too). ``truth`` is an account as the
venue's books have it, with counts of what it asked for, for comparing with a client's ledger.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from mmbot.model import ONE, Side, TimeInForce, format_micro, notional
from mmbot.venues.polymarket.auth import (
    CHAIN_ID, EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, ApiCredentials, OrderV2, SigningError, domain_separator, typed_digest,
)
from mmbot.venues.simulator import access
from mmbot.venues.simulator.access import Account, credentials_for, recover_address
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.heartbeats import Heartbeats
from mmbot.venues.simulator.refusals import (
    INVALID_ORDER, INVALID_SIGNATURE, MIN_TICK, NOT_ENOUGH_BALANCE, UNAUTHORIZED, VenueRefusal,
)
from mmbot.venues.simulator.user_frames import UserFeed

__all__ = ["UNAUTHORIZED", "Account", "SimTrading", "VenueRefusal", "credentials_for", "json_body"]

DEFAULT_FUNDING = 10_000 * ONE  # pUSD an account starts with unless it is given an amount
UNLIMITED_ALLOWANCE = str(2**256 - 1)
MAX_BATCH = 15  # orders in one POST /orders
MAX_CANCELS = 3_000  # order ids in one DELETE /orders
# what each account asked of the venue (requests that passed authentication and the fault gate)
_COUNTS = ("orders_received", "orders_accepted", "cancels_received", "cancel_all_received", "orders_canceled")


class SimTrading:
    def __init__(self, engine: Engine, feed: UserFeed, *, chain_id: int = CHAIN_ID,
                 funding: int = DEFAULT_FUNDING) -> None:
        self.engine = engine
        self.feed = feed
        self.funding = funding
        self._accounts: dict[str, Account] = {}
        self._funded: dict[str, int] = {}  # api key -> pUSD it was given
        self.allowances: dict[str, int] = {}  # api key -> pUSD the exchanges may spend, if limited
        self.heartbeats = Heartbeats(engine)
        self._counts: dict[str, dict[str, int]] = {}  # api key -> _COUNTS
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
        trades it took part in (those that failed on chain counted apart) and what it asked for."""
        key = account.creds.api_key
        failed = self.feed.trades_failed.get(key, 0)
        return {
            "address": account.address, "api_key": key, "cash": self.cash(account),
            "positions": dict(sorted(self.feed.positions.get(key, {}).items())),
            "open_orders": len(self.engine.open_orders(owner=key)),
            "trades": self.feed.trades_taken.get(key, 0) - failed, "trades_failed": failed,
            **self._counts[key],
        }

    def give(self, api_key: str, *, cash: int = 0, shares: Mapping[str, int] | None = None) -> None:
        """Move pUSD or tokens into an account from outside the venue (a deposit, a split on chain)."""
        self._funded[api_key] += cash
        for token, n in (shares or {}).items():
            self.feed.move_shares(api_key, token, n)

    # ------------------------------------------------------------------ balances

    def cash(self, account: Account) -> int:
        key = account.creds.api_key
        return self._funded.get(key, 0) + self.feed.cash_moved.get(key, 0)

    def shares(self, account: Account, token: str) -> int:
        return self.feed.positions.get(account.creds.api_key, {}).get(token, 0)

    def balance_allowance(self, account: Account, asset_type: str, token_id: str) -> dict[str, Any]:
        """``GET /balance-allowance``: pUSD (COLLATERAL) or one token's shares (CONDITIONAL)."""
        if asset_type == "COLLATERAL":
            balance = self.cash(account)
        elif asset_type == "CONDITIONAL" and token_id:
            balance = self.shares(account, token_id)
        else:
            raise VenueRefusal(400, "invalid asset_type or token_id")
        limited = self.allowances.get(account.creds.api_key)
        return {"balance": str(balance), "allowance": UNLIMITED_ALLOWANCE if limited is None else str(limited)}

    def trades(self, account: Account, after_s: int | None, *, before_s: int | None = None, market: str = "",
               asset_id: str = "") -> list[dict[str, Any]]:
        """``GET /data/trades``: the account's trades, each in its latest status."""
        return self.feed.trades_of(account.creds.api_key, after_s, before_s=before_s, market=market,
                                   asset_id=asset_id)

    def _check_balance(self, account: Account, token: str, side: Side, price: int, size: int) -> None:
        buying, selling = self.engine.committed(account.creds.api_key, token)
        if side is Side.BUY:
            short = self.cash(account) - buying < notional(price, size)
        else:
            short = self.shares(account, token) - selling < size
        if short:
            raise VenueRefusal(400, NOT_ENOUGH_BALANCE)

    # ------------------------------------------------------------------ heartbeats

    def expire_heartbeats(self, now_ns: int, venue_ns: int) -> int:
        """Cancel-on-disconnect (``heartbeats.Heartbeats.expire``): how many orders that ended."""
        return self.heartbeats.expire(now_ns, venue_ns)

    def check_credentials(self, api_key: str, secret: str, passphrase: str) -> str:
        """The user channel's first frame carries the credentials themselves."""
        return access.check_credentials(self._accounts, api_key, secret, passphrase)

    def l1_account(self, headers: Mapping[str, str], *, seed: int = 0) -> ApiCredentials:
        """``/auth/api-key`` and ``/auth/derive-api-key``: a valid ClobAuth signature from an
        address gets that address's (deterministic) credentials, and the account exists from then."""
        address = access.l1_address(headers)
        creds = credentials_for(address, seed)
        self.add_account(address, creds)
        return creds

    # ------------------------------------------------------------------ L2

    def authenticate(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> Account:
        return access.authenticate(self._accounts, headers, method, path, body)

    # ------------------------------------------------------------------ orders

    def post(self, account: Account, body: dict[str, Any], now_ns: int) -> dict[str, Any]:
        """One ``POST /order`` body → the post response; a refusal raises ``VenueRefusal``."""
        counts = self._counts[account.creds.api_key]
        counts["orders_received"] += 1
        order, signature, tif, post_only = _parse(body)
        token = str(order.token_id)
        if not self.engine.has_token(token):
            raise VenueRefusal(400, "MARKET_NOT_READY")
        neg_risk = self.engine.market_of(token).neg_risk
        try:
            digest = typed_digest(self._domains[neg_risk], order.struct_hash())
        except SigningError:  # a field out of its type's range
            raise VenueRefusal(400, INVALID_ORDER) from None
        order_id = "0x" + digest.hex()
        signer = recover_address(digest, signature)
        if signer != order.signer.lower() or signer != account.address.lower():
            raise VenueRefusal(400, INVALID_SIGNATURE)
        price, size = _price_and_size(order)
        self._check_balance(account, token, order.side, price, size)
        result = self.engine.submit(account.creds.api_key, token, order.side, price, size, tif, post_only, now_ns,
                                    order_id=order_id)
        if not result.ok:
            raise VenueRefusal(400, result.error)
        counts["orders_accepted"] += 1
        return {"success": True, "errorMsg": "", "orderID": order_id, "status": result.status,
                "makingAmount": "", "takingAmount": "", "transactionsHashes": [], "tradeIDs": []}

    def post_batch(self, account: Account, bodies: list[dict[str, Any]], now_ns: int) -> list[dict[str, Any]]:
        answers = []
        for body in bodies:
            try:
                answers.append(self.post(account, body, now_ns))
            except VenueRefusal as refusal:  # a batch leg is refused inside a 200
                answers.append({"success": False, "errorMsg": refusal.error, "orderID": "", "status": ""})
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
        counts["orders_canceled"] += len(canceled)
        return {"canceled": canceled, "not_canceled": not_canceled}

    def cancel_all(self, account: Account, now_ns: int, *, market: str = "", asset_id: str = "") -> dict[str, Any]:
        """``DELETE /cancel-all``, or ``DELETE /cancel-market-orders`` for one market and/or token."""
        counts = self._counts[account.creds.api_key]
        counts["cancel_all_received"] += 1
        result = self.engine.cancel_all(account.creds.api_key, now_ns, market=market or None, token=asset_id or None)
        counts["orders_canceled"] += len(result.canceled)
        return {"canceled": list(result.canceled), "not_canceled": {}}

    def open_orders(self, account: Account, *, market: str = "", asset_id: str = "",
                    order_id: str = "") -> list[dict[str, Any]]:
        """``GET /data/orders``: the account's resting orders, of one market, token or id if given."""
        return [
            {"id": o.order_id, "market": o.market, "asset_id": o.token, "side": o.side.value,
             "price": format_micro(o.price), "original_size": format_micro(o.original_size),
             "size_matched": format_micro(o.size_matched), "status": "LIVE"}
            for o in self.engine.open_orders(owner=account.creds.api_key, market=market or None)
            if asset_id in ("", o.token) and order_id in ("", o.order_id)
        ]


def _parse(body: dict[str, Any]) -> tuple[OrderV2, str, TimeInForce, bool]:
    try:
        wire = body["order"]
        order = OrderV2(
            salt=int(wire["salt"]), maker=str(wire["maker"]), signer=str(wire["signer"]),
            token_id=int(wire["tokenId"]), maker_amount=int(wire["makerAmount"]),
            taker_amount=int(wire["takerAmount"]), side=Side(wire["side"]),
            signature_type=int(wire["signatureType"]), timestamp_ms=int(wire["timestamp"]),
            metadata=str(wire["metadata"]), builder=str(wire["builder"]),
        )
        tif = TimeInForce(body.get("orderType", "GTC"))
    except (KeyError, TypeError, ValueError, SigningError):
        raise VenueRefusal(400, INVALID_ORDER) from None
    return order, str(wire.get("signature", "")), tif, bool(body.get("postOnly", False))


def _price_and_size(order: OrderV2) -> tuple[int, int]:
    """Shares and price from the signed amounts: a BUY gives collateral for shares, a SELL the reverse."""
    collateral, shares = (
        (order.maker_amount, order.taker_amount) if order.side is Side.BUY else (order.taker_amount, order.maker_amount)
    )
    if shares <= 0 or collateral * ONE % shares:
        raise VenueRefusal(400, MIN_TICK)  # not a price on any grid
    return collateral * ONE // shares, shares


def json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise VenueRefusal(400, "Invalid payload") from None
