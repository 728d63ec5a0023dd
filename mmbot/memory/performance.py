"""How the run did over time and market by market, read back from the log (``mmbot report``,
``mmbot status``): the PnL series of the ``pnl`` rows, its drawdown, the return on the starting
capital, the maker/taker split of the fills and a per-market book.

Totals are the ledger's own (its ``pnl`` and ``run_end`` rows). The per-market split is rebuilt
here from the fills, merges, resolutions, redemptions and corrections with the ledger's method
(average cost: shares leaving a position take its average cost with them), so its realised and
marked parts add up to the same cash flows; a correction that names no side or price (an old
log's) is left out of it. All money is integer micro-units.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from mmbot.memory.query import Database, open_database
from mmbot.model import notional, notional_down


@attrs.frozen
class PnlPoint:
    ts_ns: int
    wall_ns: int
    cash: int
    reserved: int
    realised: int
    unrealised: int
    fees: int
    positions: dict[str, int]
    marks: dict[str, int]

    @property
    def total(self) -> int:
        return self.realised + self.unrealised


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def pnl_series(db: Database) -> list[PnlPoint]:
    """Every ``pnl`` row and the ``run_end`` row, in order."""
    points = []
    for ts_ns, wall_ns, payload in open_database(db).execute(
        "SELECT ts_ns, wall_ns, payload FROM events WHERE kind IN ('pnl', 'run_end') ORDER BY seq"
    ):
        p = json.loads(payload)
        points.append(PnlPoint(
            ts_ns=ts_ns, wall_ns=wall_ns, cash=_int(p.get("cash")), reserved=_int(p.get("reserved")),
            realised=_int(p.get("realised")), unrealised=_int(p.get("unrealised")), fees=_int(p.get("fees")),
            positions={t: _int(n) for t, n in (p.get("positions") or {}).items()},
            marks={t: _int(m) for t, m in (p.get("marks") or {}).items()},
        ))  # fmt: skip
    return points


def drawdown(totals: list[int]) -> tuple[int, list[int]]:
    """The largest fall of total PnL from a peak before it (>= 0), and the drawdown at each point."""
    peak, worst, series = None, 0, []
    for total in totals:
        peak = total if peak is None else max(peak, total)
        series.append(peak - total)
        worst = max(worst, peak - total)
    return worst, series


def starting_cash(db: Database, series: list[PnlPoint]) -> int | None:
    """The cash the run started with: ``run_start``'s, else a ``pnl`` row written before any cash
    moved, else the cash before the first fill (its cash after, plus what it cost or less what
    it brought), else the first ``pnl`` row's."""
    database = open_database(db)
    start = database.execute("SELECT payload FROM events WHERE kind = 'run_start' ORDER BY seq LIMIT 1").fetchone()
    if start is not None and isinstance(cash := json.loads(start[0]).get("cash"), int):
        return cash
    moved = database.execute(
        "SELECT seq, kind, payload FROM events WHERE kind IN ('fill', 'merge', 'resolution', 'correction', 'redeem')"
        " ORDER BY seq LIMIT 1"
    ).fetchone()
    first_pnl = database.execute("SELECT seq FROM events WHERE kind = 'pnl' ORDER BY seq LIMIT 1").fetchone()
    if series and (moved is None or (first_pnl is not None and first_pnl[0] < moved[0])):
        return series[0].cash
    if moved is not None and moved[1] == "fill":
        p = json.loads(moved[2])
        price, size, fee, cash = (_int(p.get(k)) for k in ("price", "size", "fee", "cash"))
        return cash + notional(price, size) + fee if p.get("side") == "BUY" else cash - notional_down(price, size) + fee
    return series[0].cash if series else None


def liquidity_split(db: Database) -> dict[str, dict[str, int]]:
    """Fills by the ``liquidity`` they took: MAKER / TAKER (unknown: "-"), counts, shares and fees."""
    split: dict[str, dict[str, int]] = {}
    for liquidity, size, fee in open_database(db).execute(
        "SELECT json_extract(payload, '$.liquidity'), json_extract(payload, '$.size'), json_extract(payload, '$.fee')"
        " FROM events WHERE kind = 'fill'"
    ):
        figures = split.setdefault(str(liquidity) if liquidity else "-", {"count": 0, "shares": 0, "fees": 0})
        figures["count"] += 1
        figures["shares"] += _int(size)
        figures["fees"] += _int(fee)
    return dict(sorted(split.items()))


@attrs.define
class _Holding:
    shares: int = 0
    cost: int = 0

    def take(self, shares: int) -> int:
        """Remove ``shares``; returns the cost basis they take with them (average cost)."""
        shares = min(shares, self.shares)
        if shares <= 0:
            return 0
        leaving = self.cost if shares == self.shares else self.cost * shares // self.shares
        self.shares -= shares
        self.cost -= leaving
        return leaving


@attrs.define
class MarketBook:
    """One market's figures: fills, volume (notional), fees, realised, cost and shares per token."""

    market: str
    fills: int = 0
    volume: int = 0
    fees: int = 0
    realised: int = 0
    holdings: dict[str, _Holding] = attrs.field(factory=dict)

    def holding(self, token: str) -> _Holding:
        return self.holdings.setdefault(token, _Holding())

    def marked(self, marks: dict[str, int]) -> int | None:
        """Shares × mark − cost over the tokens held; None when a held token has no mark."""
        total = 0
        for token, held in self.holdings.items():
            if held.shares:
                if token not in marks:
                    return None
                total += notional_down(marks[token], held.shares) - held.cost
        return total


def market_books(db: Database, token_market: dict[str, str]) -> dict[str, MarketBook]:
    """Per market, in order of first appearance."""
    books: dict[str, MarketBook] = {}
    tokens_of: dict[str, list[str]] = {}

    def book(market: str, token: str = "") -> MarketBook:
        market = market or token_market.get(token, "")
        if token and token not in tokens_of.setdefault(market, []):
            tokens_of[market].append(token)
        return books.setdefault(market, MarketBook(market=market))

    for kind, market, token, payload in open_database(db).execute(
        "SELECT kind, market, token, payload FROM events WHERE kind IN"
        " ('fill', 'merge', 'resolution', 'redeem', 'correction', 'position_adopted') ORDER BY seq"
    ):
        p = json.loads(payload)
        token = p.get("token") or token
        if kind == "fill":
            b = book(market, token)
            price, size, fee = _int(p.get("price")), _int(p.get("size")), _int(p.get("fee"))
            b.fills += 1
            b.volume += notional(price, size)
            b.fees += fee
            held = b.holding(token)
            if p.get("side") == "BUY":
                held.shares += size
                held.cost += notional(price, size) + fee
            else:
                b.realised += notional_down(price, size) - fee - held.take(size)
        elif kind == "position_adopted":
            held = book(market, token).holding(token)
            held.shares += _int(p.get("shares"))
            held.cost += _int(p.get("cost"))
        elif kind == "merge":
            b, size = book(market), _int(p.get("size"))
            b.realised += size - sum(b.holding(t).take(size) for t in tokens_of.get(b.market, []))
        elif kind == "resolution" and "redeemable" not in p:  # paper: the winners paid at once
            b, winner = book(market), p.get("winning_token")
            for t in tokens_of.get(b.market, []):
                held = b.holding(t)
                b.realised += (held.shares if t == winner else 0) - held.take(held.shares)
        elif kind == "redeem":  # signed trading: the whole holding goes, the payout comes in
            b = book(market)
            b.realised += _int(p.get("payout")) - sum(b.holding(t).take(b.holding(t).shares)
                                                      for t in tokens_of.get(b.market, []))
        elif kind == "correction" and p.get("side") in ("BUY", "SELL") and isinstance(p.get("price"), int):
            b = book(market, token)
            price, delta, fee = _int(p.get("price")), _int(p.get("size_delta")), _int(p.get("fee_delta"))
            held = b.holding(token)
            b.fees += fee
            if p["side"] == "BUY":
                if delta >= 0:
                    held.shares += delta
                    held.cost += notional(price, delta) + fee
                else:
                    b.realised += notional(price, -delta) - fee - held.take(-delta)
            else:
                if delta >= 0:
                    b.realised += notional_down(price, delta) - fee - held.take(delta)
                else:
                    held.shares -= delta
                    held.cost += notional(price, -delta) + fee
    return books
