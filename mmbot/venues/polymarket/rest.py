"""The CLOB REST API over an injected ``httpx.AsyncClient``: authenticated (L2) trading calls with
every outcome mapped into the venue error tree (ports.py), typed answers (``rest_answers.py``),
and a client-side rate limiter sized to the venue's published limits (protocol doc §4).

Outcomes:

* a 2xx answer is decoded into its typed value; one that cannot be decoded is ``Retryable`` for a
  read and ``OutcomeUnknown`` for a call that changes state (it may have done so);
* 400 (and other 4xx) with ``{"error": ...}`` → ``Rejected`` with the venue's string;
* 401/403 → ``Fatal`` (credentials are wrong: stop trading);
* 429 → ``RateLimited`` with the ``Retry-After`` it advised; 425 (engine restart) →
  ``EngineRestarting``, and the caller respects the post-only window that follows (both are
  ``Retryable``);
* no connection made → ``Retryable`` (nothing reached the venue);
* the request left and no answer came (timeout, dropped connection, 5xx) → ``OutcomeUnknown`` for
  a call that changes state — never resubmit, reconciliation decides — and ``Retryable`` for a read.

Nothing here retries: the caller does, through ``mmbot.backoff``. Bodies are serialised once, and
the exact bytes sent are the ones the HMAC covers.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections import deque
from typing import Any, Callable, TypeVar

import httpx
import msgspec
import trio

from mmbot.config import Secret
from mmbot.model import ONE, MalformedFrame, UserTrade
from mmbot.ports import Clock, Fatal, OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import ApiCredentials, SigningKey, l1_headers, l2_headers
from mmbot.venues.polymarket.rest_answers import (
    AnswerError, CancelAnswer, Collateral, OpenOrder, PostAnswer, decode_api_key, decode_balance, decode_cancel,
    decode_collateral, decode_heartbeat, decode_mid, decode_open_order, decode_page, decode_post, decode_posts,
    decode_version,
)
from mmbot.venues.polymarket.wire_base import WireError, excerpt
from mmbot.venues.polymarket.wire_user import decode_trade_record

ORDER_VERSION = 2  # the order struct we sign (auth.py): refuse to trade against any other
MAX_BATCH = 15  # POST /orders
MAX_CANCELS = 3_000  # DELETE /orders
FIRST_CURSOR = "MA=="
LAST_CURSOR = "LTE="
ENGINE_RESTART_RETRY_S = 2  # protocol §4: back off 1-2 s from a 425 (unless Retry-After says otherwise)
MAX_RETRY_AFTER_S = 300  # a longer advice (or a garbled one) is taken as this: a cancel must not park for ever

# Requests per 10 s (protocol §4, as of 2026-05), kept a tenth under the venue's figure.
LIMITS = {"POST /order": 3_150, "POST /orders": 900, "DELETE /order": 2_700, "DELETE /orders": 900,
          "GET /balance-allowance": 180, "default": 8_100}
WINDOW_NS = 10_000_000_000

T = TypeVar("T")


class EngineRestarting(Retryable):
    """HTTP 425: the matching engine is restarting; afterwards the venue takes only post-only
    orders (and cancels) for about two minutes."""


class RateLimited(Retryable):
    """HTTP 429: nothing happened; try again no sooner than ``retry_after_s`` (if the venue said)."""


def parse_retry_after(value: str | None, now_ns: int) -> float | None:  # float-ok: a delay
    """``Retry-After`` in seconds: an integer, a fraction ("0.5") or an HTTP date; None when absent
    or unreadable (the caller's backoff decides then). Capped at ``MAX_RETRY_AFTER_S``."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)  # float-ok: a delay
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_ns / 1e9  # float-ok: a delay
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER_S))  # float-ok: a delay


class RateLimiter:
    """A sliding window per endpoint: waits (on the injected clock) instead of earning a 429."""

    def __init__(self, clock: Clock, limits: dict[str, int] = LIMITS) -> None:
        self._clock = clock
        self._limits = limits
        self._sent: dict[str, deque[int]] = {}

    async def acquire(self, endpoint: str) -> None:
        key = endpoint if endpoint in self._limits else "default"
        sent = self._sent.setdefault(key, deque())
        while True:
            now = self._clock.now_ns()
            while sent and now - sent[0] >= WINDOW_NS:
                sent.popleft()
            if len(sent) < self._limits[key]:
                sent.append(now)
                return
            await trio.sleep((sent[0] + WINDOW_NS - now) / 1e9)  # float-ok: a trio sleep


class ClobRest:
    def __init__(self, *, client: httpx.AsyncClient, creds: ApiCredentials, address: str, clock: Clock,
                 limiter: RateLimiter | None = None, observe: Callable[[str, int, int], None] | None = None) -> None:
        self._client = client
        # Told of every request after it: ("METHOD /path", HTTP status or 0 when no answer came,
        # ns elapsed on the injected clock, the rate limiter's wait excluded) — the run's metrics.
        self.observe = observe
        self._creds = creds
        self._address = address
        self._clock = clock
        self._limiter = limiter or RateLimiter(clock)
        self._reads = 0  # paged reads made: names the cid of a malformed trade record

    # ------------------------------------------------------------------ public reads

    async def version(self) -> int:
        return await self._typed("GET", "/version", decode_version, signed=False)

    async def check_version(self) -> None:
        """At start-up: refuse to trade if the venue no longer takes the orders we sign."""
        version = await self.version()
        if version != ORDER_VERSION:
            raise Fatal(f"the venue's order version is {version}; mmbot signs version {ORDER_VERSION}")

    async def midpoint(self, token: str) -> int | None:
        """The book's midpoint (micro), or None if the venue has none (an empty or missing book)."""
        try:
            mid = await self._typed("GET", "/midpoint", decode_mid, params={"token_id": token}, signed=False)
        except Rejected:
            return None
        return mid if mid is not None and 0 < mid < ONE else None

    # ------------------------------------------------------------------ L1

    @staticmethod
    async def create_or_derive_api_key(client: httpx.AsyncClient, key: SigningKey, clock: Clock,
                                       nonce: int = 0) -> ApiCredentials:
        """API credentials for the key's address: created, or the existing ones derived (L1)."""
        for method, path in (("POST", "/auth/api-key"), ("GET", "/auth/derive-api-key")):
            headers = l1_headers(key, clock.now_ns() // 1_000_000_000, nonce)
            try:
                response = await client.request(method, path, headers=headers)
            except httpx.TransportError as exc:
                raise Retryable(f"{method} {path}: {type(exc).__name__}") from None
            try:
                content = _outcome(method, path, response, method != "GET", clock.now_ns())
            except Rejected:
                continue  # already created: derive it instead
            try:
                api_key, secret, passphrase = decode_api_key(content)
            except AnswerError as exc:
                raise Retryable(f"{method} {path}: unreadable answer: {exc}") from None
            return ApiCredentials(api_key=api_key, secret=Secret(value=secret), passphrase=Secret(value=passphrase))
        raise Fatal("the venue neither created nor derived API credentials for this key")

    # ------------------------------------------------------------------ trading

    async def post_orders(self, orders: list[dict[str, Any]]) -> list[PostAnswer]:
        """Post 1-15 order bodies (``{"order": ..., "owner": ..., "orderType": ..., "postOnly": ...}``);
        one answer per order, in order."""
        if not 1 <= len(orders) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} orders, got {len(orders)}")
        if len(orders) == 1:
            return [await self._typed("POST", "/order", decode_post, orders[0])]
        return await self._typed("POST", "/orders", lambda content: decode_posts(content, len(orders)), orders)

    async def cancel(self, order_ids: list[str]) -> CancelAnswer:
        if not 1 <= len(order_ids) <= MAX_CANCELS:
            raise ValueError(f"a cancel holds 1 to {MAX_CANCELS} orders, got {len(order_ids)}")
        if len(order_ids) == 1:
            return await self._typed("DELETE", "/order", decode_cancel, {"orderID": order_ids[0]})
        return await self._typed("DELETE", "/orders", decode_cancel, order_ids)

    async def cancel_market(self, market: str, asset_id: str = "") -> CancelAnswer:
        return await self._typed("DELETE", "/cancel-market-orders", decode_cancel,
                                 {"market": market, "asset_id": asset_id})

    async def cancel_all(self) -> CancelAnswer:
        return await self._typed("DELETE", "/cancel-all", decode_cancel)

    async def open_orders(self, market: str | None = None) -> list[OpenOrder]:
        items = await self._pages("/data/orders", {"market": market} if market else {})
        try:
            return [decode_open_order(raw) for raw in items]
        except AnswerError as exc:
            raise Retryable(f"GET /data/orders: unreadable answer: {exc}") from None

    async def trades(self, after_s: int | None = None, *, asset_id: str | None = None) -> list[UserTrade | MalformedFrame]:
        """The account's trades (matched after ``after_s``, of ``asset_id``, when given); an item
        that cannot be decoded is kept as a ``MalformedFrame`` (channel ``trades``) for the caller to
        record, and never fails the page."""
        params = {"after": str(after_s)} if after_s is not None else {}
        if asset_id is not None:
            params["asset_id"] = asset_id
        items = await self._pages("/data/trades", params)
        now = self._clock.now_ns()
        cid = f"trades{self._reads}"
        records: list[UserTrade | MalformedFrame] = []
        for i, raw in enumerate(items):
            try:
                records.append(decode_trade_record(bytes(raw), recv_ns=now, cid=f"{cid}.{i}"))
            except WireError as exc:
                records.append(MalformedFrame(cid=f"{cid}.{i}", recv_ns=now, channel="trades", error=str(exc),
                                              excerpt=excerpt(raw)))
        return records

    async def collateral(self, signature_type: int = 0) -> Collateral:
        """pUSD held and the least of its allowances to the exchanges (None if the venue gave none)."""
        return await self._typed("GET", "/balance-allowance", decode_collateral,
                                 params={"asset_type": "COLLATERAL", "signature_type": str(signature_type)})

    async def collateral_balance(self, signature_type: int = 0) -> int:
        """pUSD held (micro), open orders not deducted."""
        return (await self.collateral(signature_type)).balance

    async def token_balance(self, token: str, signature_type: int = 0) -> int:
        """Shares of one outcome token held (micro)."""
        return await self._typed("GET", "/balance-allowance", decode_balance, params={
            "asset_type": "CONDITIONAL", "token_id": token, "signature_type": str(signature_type)})

    async def heartbeat(self, heartbeat_id: str) -> str:
        """``POST /v1/heartbeats``: keeps resting orders alive (cancel-on-disconnect); returns the id
        to echo next time. An expired id comes back as a 400 carrying the current one: it is adopted
        and the heartbeat sent again with it, once."""
        try:
            return await self._typed("POST", "/v1/heartbeats", decode_heartbeat, {"heartbeat_id": heartbeat_id})
        except Rejected as exc:
            current = getattr(exc, "body", {}).get("heartbeat_id")
            if not isinstance(current, str) or current == heartbeat_id:
                raise
            return await self._typed("POST", "/v1/heartbeats", decode_heartbeat, {"heartbeat_id": current})

    # ------------------------------------------------------------------ the one way out

    async def _pages(self, path: str, params: dict[str, str]) -> list[msgspec.Raw]:
        self._reads += 1
        items: list[msgspec.Raw] = []
        cursor, seen = FIRST_CURSOR, set()
        while cursor != LAST_CURSOR:
            if cursor in seen:
                raise Retryable(f"GET {path}: the venue's cursor {cursor[:20]!r} came round again")
            seen.add(cursor)
            page, cursor = await self._typed("GET", path, decode_page, params={**params, "next_cursor": cursor})
            items.extend(page)
            cursor = cursor or LAST_CURSOR
        return items

    async def _typed(self, method: str, path: str, decode: Callable[[bytes], T], body: Any = None, *,
                     params: dict[str, str] | None = None, signed: bool = True) -> T:
        content = await self._call(method, path, body, params=params, signed=signed)
        try:
            return decode(content)
        except AnswerError as exc:
            error = OutcomeUnknown if method != "GET" else Retryable
            raise error(f"{method} {path}: unreadable answer: {exc}") from None

    async def _call(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                    signed: bool = True) -> bytes:
        await self._limiter.acquire(f"{method} {path}")
        content = "" if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": "application/json"} if content else {}
        if signed:
            headers |= l2_headers(self._address, self._creds, self._clock.now_ns() // 1_000_000_000, method, path,
                                  content)
        changes_state = method != "GET"
        started_ns, status = self._clock.now_ns(), 0
        try:
            response = await self._client.request(method, path, content=content or None, params=params,
                                                  headers=headers)
            status = response.status_code
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Retryable(f"{method} {path}: not sent: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # sent, and then nothing (read timeout, reset, protocol error)
            error = OutcomeUnknown if changes_state else Retryable
            raise error(f"{method} {path}: no answer: {type(exc).__name__}") from None
        finally:
            if self.observe is not None:
                self.observe(f"{method} {path}", status, self._clock.now_ns() - started_ns)
        return _outcome(method, path, response, changes_state, self._clock.now_ns())


def _outcome(method: str, path: str, response: httpx.Response, changes_state: bool, now_ns: int) -> bytes:
    """The body of a 2xx answer; anything else raised as its place in the error tree."""
    status = response.status_code
    if status < 300:
        return response.content
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("error_msg") or body.get("errorMsg") or "")[:200]
    else:
        message = str(body)[:200]
    if status == 429:
        raise RateLimited(f"{method} {path}: rate limited",
                          retry_after_s=parse_retry_after(response.headers.get("Retry-After"), now_ns))
    if status == 425:
        advised = parse_retry_after(response.headers.get("Retry-After"), now_ns)
        raise EngineRestarting(f"{method} {path}: the matching engine is restarting",
                               retry_after_s=ENGINE_RESTART_RETRY_S if advised is None else advised)
    if status in (401, 403):
        raise Fatal(f"{method} {path}: {status} {message}")
    if status >= 500:
        error = OutcomeUnknown if changes_state else Retryable
        raise error(f"{method} {path}: {status} {message}")
    rejected = Rejected(message or f"HTTP {status}")
    rejected.body = body if isinstance(body, dict) else {}  # e.g. the current heartbeat id
    raise rejected
