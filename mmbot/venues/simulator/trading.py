"""The simulator's trading side, sans-IO: accounts, L2 authentication, signed V2 orders checked and
matched in the engine, cancels and open orders — with the venue's error strings.

``server.py`` maps its HTTP routes onto these calls. Each check is the venue's: the L2 HMAC over
the exact body received, the order's EIP-712 signature (the signer is recovered from it and must
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

import base64
import hashlib
import hmac
import json
from typing import Any, Mapping

import attrs
import coincurve
from eth_hash.auto import keccak

from mmbot.config import Secret
from mmbot.model import ONE, Side, TimeInForce, format_micro, notional
from mmbot.venues.polymarket.auth import (
    CHAIN_ID, EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, ApiCredentials, OrderV2, SigningError,
    clob_auth_digest, domain_separator, typed_digest,
)
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.heartbeats import Heartbeats
from mmbot.venues.simulator.user_frames import UserFeed

UNAUTHORIZED = "Unauthorized/Invalid api key"
INVALID_SIGNATURE = "invalid signature"
INVALID_ORDER = "INVALID_ORDER_ERROR"
MIN_TICK = "INVALID_ORDER_MIN_TICK_SIZE"
NOT_ENOUGH_BALANCE = "not enough balance / allowance"
DEFAULT_FUNDING = 10_000 * ONE  # pUSD an account starts with unless it is given an amount
UNLIMITED_ALLOWANCE = str(2**256 - 1)
MAX_BATCH = 15  # orders in one POST /orders
MAX_CANCELS = 3_000  # order ids in one DELETE /orders
# what each account asked of the venue (requests that passed authentication and the fault gate)
_COUNTS = ("orders_received", "orders_accepted", "cancels_received", "cancel_all_received", "orders_canceled")


class VenueRefusal(Exception):
    """The venue's answer to a bad request: ``status``, its error string, and any other fields."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.body: dict[str, Any] = {}


@attrs.frozen
class Account:
    address: str
    creds: ApiCredentials


def recover_address(digest: bytes, signature: str) -> str:
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise VenueRefusal(400, INVALID_SIGNATURE) from None
    if len(raw) != 65 or raw[64] not in (27, 28):
        raise VenueRefusal(400, INVALID_SIGNATURE)
    try:
        public = coincurve.PublicKey.from_signature_and_message(raw[:64] + bytes([raw[64] - 27]), digest, hasher=None)
    except ValueError:
        raise VenueRefusal(400, INVALID_SIGNATURE) from None
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()  # lower case: compared, never shown


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
        account = self._accounts.get(api_key)
        if account is None or not (hmac.compare_digest(secret, account.creds.secret.reveal())
                                   and hmac.compare_digest(passphrase, account.creds.passphrase.reveal())):
            raise VenueRefusal(401, UNAUTHORIZED)
        return api_key

    def l1_account(self, headers: Mapping[str, str], *, seed: int = 0) -> ApiCredentials:
        """``/auth/api-key`` and ``/auth/derive-api-key``: a valid ClobAuth signature from an
        address gets that address's (deterministic) credentials, and the account exists from then."""
        try:
            address, timestamp = headers["poly_address"], headers["poly_timestamp"]
            digest = clob_auth_digest(address, timestamp, int(headers.get("poly_nonce", "0")))
        except (KeyError, ValueError, SigningError):
            raise VenueRefusal(401, UNAUTHORIZED) from None
        if recover_address(digest, headers.get("poly_signature", "")) != address.lower():
            raise VenueRefusal(401, UNAUTHORIZED)
        creds = credentials_for(address, seed)
        self.add_account(address, creds)
        return creds

    # ------------------------------------------------------------------ L2

    def authenticate(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> Account:
        account = self._accounts.get(headers.get("poly_api_key", ""))
        if account is None or headers.get("poly_passphrase") != account.creds.passphrase.reveal():
            raise VenueRefusal(401, UNAUTHORIZED)
        message = f"{headers.get('poly_timestamp', '')}{method}{path}".encode() + body
        expected = base64.urlsafe_b64encode(
            hmac.new(base64.urlsafe_b64decode(account.creds.secret.reveal()), message, hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(expected, headers.get("poly_signature", "")):
            raise VenueRefusal(401, UNAUTHORIZED)
        return account

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


def credentials_for(address: str, seed: int = 0) -> ApiCredentials:
    """Deterministic simulator credentials for an address (what ``/auth/derive-api-key`` returns)."""
    digest = hashlib.sha256(f"{seed}:{address.lower()}".encode()).digest()
    key = "-".join((digest[:4].hex(), digest[4:6].hex(), digest[6:8].hex(), digest[8:10].hex(), digest[10:16].hex()))
    return ApiCredentials(api_key=key, secret=Secret(value=base64.urlsafe_b64encode(digest).decode()),
                          passphrase=Secret(value=hashlib.sha256(digest).hexdigest()))


def json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise VenueRefusal(400, "Invalid payload") from None
