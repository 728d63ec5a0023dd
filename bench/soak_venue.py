"""The soak's side of the simulator: its clock, its fault endpoint, its listing, and the account's
truth at the end (cash, every token, open orders, trades).

The truth comes from ``GET /admin/account?api_key=`` when the simulator serves it; otherwise from
what the venue itself tells an account over L2, through mmbot's own ``ClobRest`` with the same
key: ``/balance-allowance`` for pUSD and for each token the account ever traded (every share it
holds came from a trade: funding is pUSD), ``/data/orders`` and ``/data/trades``.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
import trio

from mmbot.clock import TrioClock
from mmbot.model import parse_micro
from mmbot.venues.polymarket.auth import ApiCredentials, SigningKey
from mmbot.venues.polymarket.rest import LIMITS, ClobRest, RateLimiter

FAILED = "FAILED"


@attrs.frozen
class Account:
    """The simulator's account after the final stop."""

    source: str  # "admin" (GET /admin/account) or "clob" (the account's own L2 reads)
    cash: int
    positions: dict[str, int]  # token -> shares, zeros left out
    open_orders: int
    trades: int  # trade records that did not fail
    trades_failed: int
    legs: frozenset[str]  # our fill ids at the venue, as mmbot names them (trade id, or trade id:order id)
    counts: dict[str, int] = attrs.Factory(dict)  # what the account asked of the venue (admin only)


class SimAdmin:
    """Plain (unsigned) calls to the simulator on loopback; the admin ones with its admin token."""

    def __init__(self, rest_url: str, admin_token: str) -> None:
        # trust_env off: a proxy from the environment must never see loopback traffic
        self._http = httpx.Client(base_url=rest_url, timeout=10, trust_env=False,
                                  headers={"Authorization": f"Bearer {admin_token}"})

    def close(self) -> None:
        self._http.close()

    def venue_s(self) -> int:
        """The venue's clock (``GET /time``), in seconds: the simulated time."""
        return int(self._http.get("/time").text)

    def fault(self, kind: str, value: str = "") -> dict[str, Any]:
        answer = self._http.post("/admin/fault", json={"kind": kind, "value": value})
        answer.raise_for_status()
        return answer.json()

    def markets(self) -> list[dict[str, Any]]:
        """The Gamma-like listing's markets."""
        return self._http.get("/gamma/markets").json()

    def stats(self) -> dict[str, Any]:
        return self._http.get("/admin/stats").json()

    def admin_account(self, api_key: str) -> dict[str, Any] | None:
        """The admin endpoint's answer, or None where the simulator does not serve it."""
        answer = self._http.get("/admin/account", params={"api_key": api_key})
        if answer.status_code in (404, 405) and "json" not in answer.headers.get("content-type", ""):
            return None  # no such route (an unknown account is a JSON error, raised below)
        answer.raise_for_status()
        return answer.json()


def derive_credentials(rest_url: str, key: SigningKey) -> ApiCredentials:
    """The account's API credentials, derived over L1 as ``mmbot run --mode sim`` does."""

    async def main() -> ApiCredentials:
        async with httpx.AsyncClient(base_url=rest_url, timeout=10, trust_env=False) as http:
            return await ClobRest.create_or_derive_api_key(http, key, TrioClock())

    return trio.run(main)


def account_truth(admin: SimAdmin, rest_url: str, key: SigningKey, creds: ApiCredentials,
                  also_tokens: set[str]) -> Account:
    """The account as the simulator holds it. ``also_tokens``: tokens to read besides those the
    venue's trades name (the ledger's), on the L2 path."""
    answer = admin.admin_account(creds.api_key)
    if answer is not None:
        return _from_admin(answer, creds.api_key)
    return trio.run(_from_clob, rest_url, key, creds, also_tokens)


def venue_legs(records: list[dict[str, Any]], api_key: str) -> tuple[int, int, frozenset[str]]:
    """(trades that did not fail, trades that failed, our legs' fill ids among those that did not),
    from ``/data/trades`` records. A taker leg is named by the trade id, a maker leg by
    ``trade id:order id`` (as ``user_fills.our_legs`` names them)."""
    ok = failed = 0
    legs: set[str] = set()
    for record in records:
        if str(record.get("status", "")).upper() == FAILED:
            failed += 1
            continue
        ok += 1
        if record.get("trader_side") == "TAKER" and record.get("owner") == api_key:
            legs.add(str(record["id"]))
        for maker in record.get("maker_orders") or ():
            if maker.get("owner") == api_key:
                legs.add(f"{record['id']}:{maker['order_id']}")
    return ok, failed, frozenset(legs)


async def _from_clob(rest_url: str, key: SigningKey, creds: ApiCredentials, also_tokens: set[str]) -> Account:
    async with httpx.AsyncClient(base_url=rest_url, timeout=30, trust_env=False) as http:
        clock = TrioClock()
        # the client-side limits opened up: these reads are the soak's, not the bot's
        rest = ClobRest(client=http, creds=creds, address=key.address, clock=clock,
                        limiter=RateLimiter(clock, {name: 1 << 30 for name in LIMITS}))
        cash = await rest.collateral_balance()
        records = await rest.trades()
        orders = await rest.open_orders()
        ok, failed, legs = venue_legs(records, creds.api_key)
        tokens = set(also_tokens)
        for record in records:
            tokens.add(str(record.get("asset_id", "")))
            tokens.update(str(m.get("asset_id", "")) for m in record.get("maker_orders") or ())
        positions = {}
        for token in sorted(t for t in tokens if t):
            shares = await rest.token_balance(token)
            if shares:
                positions[token] = shares
    return Account(source="clob", cash=cash, positions=positions, open_orders=len(orders), trades=ok,
                   trades_failed=failed, legs=legs)


def _from_admin(answer: dict[str, Any], api_key: str) -> Account:
    """Read leniently: amounts as integers of micro-units or decimal strings; collections as lists,
    maps or counts."""
    trades = answer.get("trades", [])
    if isinstance(trades, list):
        ok, failed, legs = venue_legs(trades, api_key)
    else:
        ok, failed, legs = int(trades), int(answer.get("trades_failed", 0)), frozenset()
    orders = answer.get("open_orders", [])
    positions = {str(t): _micro(n) for t, n in (answer.get("positions") or {}).items()}
    return Account(source="admin", cash=_micro(answer["cash"]), positions={t: n for t, n in positions.items() if n},
                   open_orders=len(orders) if isinstance(orders, (list, dict)) else int(orders), trades=ok,
                   trades_failed=failed, legs=legs,
                   counts={k: v for k, v in answer.items() if k.endswith(("_received", "_accepted", "_canceled"))})


def _micro(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    return parse_micro(text) if "." in text else int(text)


def pick_tick_fault(markets: list[dict[str, Any]], rng: Any) -> str | None:
    """``<condition id>:0.001`` for an open market still on the 0.01 grid (a finer tick, as the
    venue does near the extremes), or None if there is none."""
    coarse = [m for m in markets  # float-ok: Gamma sends the tick as a number
              if not m.get("closed") and float(m.get("orderPriceMinTickSize", 0)) >= 0.01]
    if not coarse:
        return None
    return f"{rng.choice(coarse)['conditionId']}:0.001"


class Listings:
    """Every market the listing showed during the soak (the simulator forgets resolved ones after
    its ``retain_s``, so one look at the end would miss most)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.resolved: set[str] = set()
        self.updown: set[str] = set()

    def update(self, markets: list[dict[str, Any]]) -> None:
        for m in markets:
            self.seen.add(m["conditionId"])
            if m.get("closed"):
                self.resolved.add(m["conditionId"])
            if json.loads(m.get("outcomes", "[]")) == ["Up", "Down"]:
                self.updown.add(m["conditionId"])

    def counts(self) -> dict[str, int]:
        return {"markets_listed": len(self.seen), "markets_resolved": len(self.resolved),
                "updown_listed": len(self.updown)}
