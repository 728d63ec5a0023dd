"""The CLOB REST API over an injected ``httpx.AsyncClient``: authenticated (L2) trading calls with
every outcome mapped into the venue error tree (ports.py), and a client-side rate limiter sized to
the venue's published limits (protocol doc §4).

Outcomes:

* a 2xx answer is parsed and returned;
* 400 (and other 4xx) with ``{"error": ...}`` → ``Rejected`` with the venue's string;
* 401/403 → ``Fatal`` (credentials are wrong: stop trading);
* 429 → ``Retryable`` with ``Retry-After``; 425 (engine restart) → ``Retryable``, and the caller
  respects the post-only window that follows;
* no connection made → ``Retryable`` (nothing reached the venue);
* the request left and no answer came (timeout, dropped connection, 5xx) → ``OutcomeUnknown`` for
  a call that changes state — never resubmit, reconciliation decides — and ``Retryable`` for a read.

Bodies are serialised once, and the exact bytes sent are the ones the HMAC covers.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import httpx
import trio

from mmbot.config import Secret
from mmbot.model import ONE, parse_micro
from mmbot.ports import Clock, Fatal, OutcomeUnknown, Rejected, Retryable
from mmbot.venues.polymarket.auth import ApiCredentials, SigningKey, l1_headers, l2_headers

ORDER_VERSION = 2  # the order struct we sign (auth.py): refuse to trade against any other
MAX_BATCH = 15  # POST /orders
LAST_CURSOR = "LTE="

# Requests per 10 s (protocol §4, as of 2026-05), kept a tenth under the venue's figure.
LIMITS = {"POST /order": 3_150, "POST /orders": 900, "DELETE /order": 2_700, "DELETE /orders": 900,
          "GET /balance-allowance": 180, "default": 8_100}
WINDOW_NS = 10_000_000_000


class EngineRestarting(Retryable):
    """HTTP 425: the matching engine is restarting; afterwards the venue takes only post-only
    orders (and cancels) for about two minutes."""


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
                 limiter: RateLimiter | None = None) -> None:
        self._client = client
        self._creds = creds
        self._address = address
        self._clock = clock
        self._limiter = limiter or RateLimiter(clock)

    # ------------------------------------------------------------------ public reads

    async def version(self) -> int:
        return int((await self._call("GET", "/version", signed=False))["version"])

    async def check_version(self) -> None:
        """At start-up: refuse to trade if the venue no longer takes the orders we sign."""
        version = await self.version()
        if version != ORDER_VERSION:
            raise Fatal(f"the venue's order version is {version}; mmbot signs version {ORDER_VERSION}")

    # ------------------------------------------------------------------ L1

    @staticmethod
    async def create_or_derive_api_key(client: httpx.AsyncClient, key: SigningKey, clock: Clock,
                                       nonce: int = 0) -> ApiCredentials:
        """API credentials for the key's address: created, or the existing ones derived (L1)."""
        for method, path in (("POST", "/auth/api-key"), ("GET", "/auth/derive-api-key")):
            headers = l1_headers(key, clock.now_ns() // 1_000_000_000, nonce)
            try:
                answer = _outcome(method, path, await client.request(method, path, headers=headers), method != "GET")
            except Rejected:
                continue  # already created: derive it instead
            except httpx.TransportError as exc:
                raise Retryable(f"{method} {path}: {type(exc).__name__}") from None
            return ApiCredentials(api_key=str(answer["apiKey"]), secret=Secret(value=str(answer["secret"])),
                                  passphrase=Secret(value=str(answer["passphrase"])))
        raise Fatal("the venue neither created nor derived API credentials for this key")

    # ------------------------------------------------------------------ trading

    async def post_orders(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Post 1-15 order bodies (``{"order": ..., "owner": ..., "orderType": ..., "postOnly": ...}``);
        one post response per order, in order."""
        if not 1 <= len(orders) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} orders, got {len(orders)}")
        if len(orders) == 1:
            return [await self._call("POST", "/order", orders[0])]
        return list(await self._call("POST", "/orders", orders))

    async def cancel(self, order_ids: list[str]) -> dict[str, Any]:
        if len(order_ids) == 1:
            return await self._call("DELETE", "/order", {"orderID": order_ids[0]})
        return await self._call("DELETE", "/orders", order_ids)

    async def cancel_all(self) -> dict[str, Any]:
        return await self._call("DELETE", "/cancel-all")

    async def cancel_market(self, market: str, asset_id: str = "") -> dict[str, Any]:
        return await self._call("DELETE", "/cancel-market-orders", {"market": market, "asset_id": asset_id})

    async def open_orders(self, market: str | None = None) -> list[dict[str, Any]]:
        return await self._pages("/data/orders", {"market": market} if market else {})

    async def trades(self, after_s: int | None = None) -> list[dict[str, Any]]:
        return await self._pages("/data/trades", {"after": str(after_s)} if after_s is not None else {})

    async def collateral_balance(self, signature_type: int = 0) -> int:
        """pUSD held (micro), open orders not deducted."""
        return (await self.collateral(signature_type))[0]

    async def collateral(self, signature_type: int = 0) -> tuple[int, int | None]:
        """pUSD held and the least of its allowances to the exchanges (None if the venue gave none):
        ``allowance`` as captured, or ``allowances`` per spender as the docs describe."""
        answer = await self._call("GET", "/balance-allowance",
                                  params={"asset_type": "COLLATERAL", "signature_type": str(signature_type)})
        allowances = answer.get("allowances") if isinstance(answer, dict) else None
        try:
            balance = int(answer["balance"])
            if isinstance(allowances, dict) and allowances:
                return balance, min(int(v) for v in allowances.values())
            return balance, int(answer["allowance"]) if "allowance" in answer else None
        except (KeyError, TypeError, ValueError):
            raise Retryable(f"GET /balance-allowance: unreadable answer {str(answer)[:100]!r}") from None

    async def token_balance(self, token: str, signature_type: int = 0) -> int:
        """Shares of one outcome token held (micro)."""
        return await self._balance({"asset_type": "CONDITIONAL", "token_id": token,
                                    "signature_type": str(signature_type)})

    async def midpoint(self, token: str) -> int | None:
        """The book's midpoint (micro), or None if the venue has none (an empty or missing book)."""
        try:
            answer = await self._call("GET", "/midpoint", params={"token_id": token}, signed=False)
        except Rejected:
            return None
        try:
            mid = parse_micro(str(answer["mid"]))
        except (KeyError, TypeError, ValueError):
            return None
        return mid if 0 < mid < ONE else None

    async def heartbeat(self, heartbeat_id: str) -> str:
        """Keep resting orders alive (cancel-on-disconnect); returns the id to echo next time.
        An expired id comes back as a 400 carrying the current one: adopt it."""
        try:
            return str((await self._call("POST", "/heartbeats", {"heartbeat_id": heartbeat_id}))["heartbeat_id"])
        except Rejected as exc:
            current = getattr(exc, "body", {}).get("heartbeat_id")
            if current:
                return str(current)
            raise

    # ------------------------------------------------------------------ the one way out

    async def _balance(self, params: dict[str, str]) -> int:
        answer = await self._call("GET", "/balance-allowance", params=params)
        try:
            return int(answer["balance"])
        except (KeyError, TypeError, ValueError):
            raise Retryable(f"GET /balance-allowance: no balance in {str(answer)[:100]!r}") from None

    async def _pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = "MA=="
        while cursor != LAST_CURSOR:
            page = await self._call("GET", path, params={**params, "next_cursor": cursor})
            rows.extend(page.get("data", []))
            cursor = page.get("next_cursor") or LAST_CURSOR
        return rows

    async def _call(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                    signed: bool = True) -> Any:
        await self._limiter.acquire(f"{method} {path}")
        content = "" if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": "application/json"} if content else {}
        if signed:
            headers |= l2_headers(self._address, self._creds, self._clock.now_ns() // 1_000_000_000, method, path,
                                  content)
        changes_state = method != "GET"
        try:
            response = await self._client.request(method, path, content=content or None, params=params,
                                                  headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Retryable(f"{method} {path}: not sent: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # sent, and then nothing (read timeout, reset, protocol error)
            error = OutcomeUnknown if changes_state else Retryable
            raise error(f"{method} {path}: no answer: {type(exc).__name__}") from None
        return _outcome(method, path, response, changes_state)


def _outcome(method: str, path: str, response: httpx.Response, changes_state: bool) -> Any:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if status < 300:
        return body
    message = body.get("error", "") if isinstance(body, dict) else str(body)[:200]
    if status == 429:
        retry = response.headers.get("Retry-After", "")
        raise Retryable(f"{method} {path}: rate limited", retry_after_s=int(retry) if retry.isdigit() else 1)
    if status == 425:
        raise EngineRestarting(f"{method} {path}: the matching engine is restarting", retry_after_s=2)
    if status in (401, 403):
        raise Fatal(f"{method} {path}: {status} {message}")
    if status >= 500:
        error = OutcomeUnknown if changes_state else Retryable
        raise error(f"{method} {path}: {status} {message}")
    rejected = Rejected(message or f"HTTP {status}")
    rejected.body = body if isinstance(body, dict) else {}  # e.g. the current heartbeat id
    raise rejected
