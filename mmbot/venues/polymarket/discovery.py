"""Market discovery: a Gamma ``/markets`` listing turned into ``MarketInfo`` values (protocol §7).

Gamma sends ``clobTokenIds`` and ``outcomes`` as JSON-encoded strings (re-serialised copies carry
real arrays: both are accepted), the tick and minimum size as JSON numbers (read through their
decimal text, never a binary float), and end dates in more than one format.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any, Callable

import httpx
import trio

from mmbot.backoff import Backoff
from mmbot.model import MarketInfo, MarketResolved, NewMarket, parse_micro
from mmbot.ports import Clock, EventSink

MAX_IDS_PER_CALL = 100  # Gamma's condition_ids limit


class DiscoveryError(Exception):
    """A listing entry that cannot describe a tradeable market."""


def _list(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise DiscoveryError(f"{field}: not a JSON list: {value[:60]!r}") from None
    if not isinstance(value, list):
        raise DiscoveryError(f"{field}: expected a list, got {type(value).__name__}")
    return [str(v) for v in value]


def _micro(value: Any, field: str) -> int:
    try:
        return parse_micro(str(value))
    except ValueError:
        raise DiscoveryError(f"{field}: not a decimal: {value!r}") from None


def parse_end_ns(text: str | None) -> int | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None  # an end date in a format we do not know: no scheduled end is the safe reading
    return int(moment.timestamp()) * 1_000_000_000


def tradeable(entry: dict[str, Any]) -> bool:
    """``enableOrderBook && acceptingOrders && !closed`` (protocol §7)."""
    return bool(entry.get("enableOrderBook")) and bool(entry.get("acceptingOrders")) and not entry.get("closed")


def market_info(entry: dict[str, Any]) -> MarketInfo:
    tokens = _list(entry.get("clobTokenIds"), "clobTokenIds")
    outcomes = _list(entry.get("outcomes", '["Yes", "No"]'), "outcomes")
    if len(tokens) != 2 or not all(tokens) or len(outcomes) != 2:
        raise DiscoveryError(f"market {entry.get('conditionId')!r}: expected two tokens and two outcomes")
    fees = entry.get("feeSchedule") or {}
    return MarketInfo(
        market=str(entry["conditionId"]),
        tokens=(tokens[0], tokens[1]),
        outcomes=(outcomes[0], outcomes[1]),
        tick=_micro(entry.get("orderPriceMinTickSize", "0.01"), "orderPriceMinTickSize"),
        min_size=_micro(entry.get("orderMinSize", 5), "orderMinSize"),
        end_ns=parse_end_ns(entry.get("endDate")),
        fee_rate=_micro(fees.get("rate", 0), "feeSchedule.rate") if entry.get("feesEnabled") else 0,
        fee_exponent=int(fees.get("exponent", 1)),
        neg_risk=bool(entry.get("negRisk")),
        slug=str(entry.get("slug", "")),
        question=str(entry.get("question", "")),
    )


async def list_markets(client: httpx.AsyncClient) -> tuple[list[MarketInfo], list[str]]:
    """Every tradeable market of ``GET /markets`` on the client's base URL, and the problems
    with the entries that were skipped (one line each)."""
    response = await client.get("/markets")
    response.raise_for_status()
    markets, problems = [], []
    for entry in response.json():
        if not isinstance(entry, dict) or not tradeable(entry):
            continue
        try:
            markets.append(market_info(entry))
        except (DiscoveryError, KeyError) as exc:
            problems.append(str(exc))
    return markets, problems


async def gamma_entries(client: httpx.AsyncClient, condition_ids: list[str], *,
                        closed: bool = False) -> list[dict[str, Any]]:
    """Gamma's ``/markets`` entries for ``condition_ids`` (at most 100): open ones, or closed ones."""
    params = [("closed", "true")] if closed else []
    response = await client.get("/markets", params=params + [("condition_ids", c) for c in condition_ids])
    response.raise_for_status()
    entries = response.json()
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


async def markets_by_id(client: httpx.AsyncClient, condition_ids: list[str]) -> dict[str, MarketInfo]:
    """The listed markets among ``condition_ids`` (at most 100), by id; one not hydrated yet
    (no entry, or empty token ids) is simply missing."""
    found = {}
    for entry in await gamma_entries(client, condition_ids):
        try:
            info = market_info(entry)
        except (DiscoveryError, KeyError, TypeError):
            continue
        found[info.market] = info
    return found


class ListingDetails:
    """A market announced by ``new_market`` arrives without its fee schedule, minimum size, neg-risk
    flag or end time, all of which an order needs (the taker's fee, the exchange it is signed
    for, when to stop quoting). This fetches them from Gamma — retrying through the venue's
    hydration lag, for up to ``give_up_s`` — and hands each complete ``MarketInfo`` to
    ``on_details``; until then nobody trades the market."""

    def __init__(self, *, client: httpx.AsyncClient, on_details: Callable[[MarketInfo], None], sink: EventSink,
                 clock: Clock, retry_s: int = 2, give_up_s: int = 600, rng: random.Random | None = None) -> None:
        """``rng``: the retries' jitter (seeded; a fixed seed when not given)."""
        self._client = client
        self._on_details = on_details
        self._sink = sink
        self._clock = clock
        self._backoff = Backoff(base_s=retry_s, cap_s=max(retry_s, 30), rng=rng or random.Random(0x11571))
        self._give_up_ns = give_up_s * 1_000_000_000
        self._pending: dict[str, int] = {}  # condition id -> when it was announced
        self._wake = trio.Event()

    def observe(self, msg: Any) -> None:
        if isinstance(msg, NewMarket) and msg.market not in self._pending:
            self._pending[msg.market] = self._clock.now_ns()
            self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            self._backoff.reset()
            while self._pending:
                await self._fetch_once()
                if self._pending:
                    await trio.sleep(self._backoff.next_s())

    async def _fetch_once(self) -> None:
        wanted = list(self._pending)
        for at in range(0, len(wanted), MAX_IDS_PER_CALL):
            batch = wanted[at : at + MAX_IDS_PER_CALL]
            try:
                found = await markets_by_id(self._client, batch)
            except (httpx.HTTPError, ValueError) as exc:
                self._sink.record("error", "listing", {"where": "listing", "error": f"{type(exc).__name__}: {exc}"[:200]})
                return
            now = self._clock.now_ns()
            for market in batch:
                if market in found:
                    del self._pending[market]
                    self._on_details(found[market])
                elif now - self._pending[market] > self._give_up_ns:
                    del self._pending[market]
                    self._sink.record("error", "listing", {"where": "listing", "error": "no details after "
                                                           f"{self._give_up_ns // 1_000_000_000} s: not traded"},
                                      market=market)


def winner_of(entry: dict[str, Any]) -> str | None:
    """The winning token of a resolved Gamma entry (closed, ``outcomePrices`` one "1" and the rest
    "0", UMA's status "resolved" where given), else None."""
    if not entry.get("closed") or entry.get("umaResolutionStatus", "resolved") != "resolved":
        return None
    try:
        tokens, prices = _list(entry.get("clobTokenIds"), "clobTokenIds"), _list(entry.get("outcomePrices"), "outcomePrices")
    except DiscoveryError:
        return None
    if len(tokens) != len(prices) or sorted(prices) != ["0"] * (len(prices) - 1) + ["1"]:
        return None  # not settled yet ("0", "0" exists), or not a plain binary outcome
    return tokens[prices.index("1")]


class ResolutionWatch:
    """A ``market_resolved`` message missed while the market channel was down is never sent again.
    So every ``interval_s``, markets whose end passed ``grace_s`` ago without a resolution are
    looked up on Gamma (closed ones), and a resolution found there is handed to ``on_resolved``
    as the channel would have given it."""

    def __init__(self, *, client: httpx.AsyncClient, markets: Callable[[], list[MarketInfo]],
                 resolved: Callable[[str], bool], on_resolved: Callable[[MarketResolved], None], sink: EventSink,
                 clock: Clock, venue_now: Callable[[], int | None], interval_s: int = 30, grace_s: int = 60) -> None:
        """``venue_now()``: the venue's time (ns) as its frames tell it, None before any was seen —
        a market's end is the venue's schedule, never compared with our own clock."""
        self._client = client
        self._markets = markets
        self._resolved = resolved
        self._on_resolved = on_resolved
        self._sink = sink
        self._clock = clock
        self._venue_now = venue_now
        self._interval_s = interval_s
        self._grace_ns = grace_s * 1_000_000_000
        self._found = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self._interval_s)
            await self.check()

    async def check(self) -> None:
        now = self._clock.now_ns()
        venue_now = self._venue_now()
        if venue_now is None:
            return
        overdue = [m for m in self._markets()
                   if m.end_ns is not None and venue_now - m.end_ns > self._grace_ns and not self._resolved(m.market)]
        for at in range(0, len(overdue), MAX_IDS_PER_CALL):
            batch = {m.market: m for m in overdue[at : at + MAX_IDS_PER_CALL]}
            try:
                entries = await gamma_entries(self._client, list(batch), closed=True)
            except (httpx.HTTPError, ValueError) as exc:
                self._sink.record("error", "resolutions", {"where": "resolutions",
                                                           "error": f"{type(exc).__name__}: {exc}"[:200]})
                return
            for entry in entries:
                info = batch.get(str(entry.get("conditionId")))
                winner = None if info is None else winner_of(entry)
                if info is None or winner not in info.tokens:
                    continue
                self._found += 1
                self._on_resolved(MarketResolved(
                    cid=f"gamma-resolved-{self._found}", recv_ns=now, market=info.market,
                    market_id=str(entry.get("id", "")), tokens=info.tokens, winning_token=winner,
                    winning_outcome=info.outcomes[info.tokens.index(winner)], venue_ts_ms=now // 1_000_000,
                ))
