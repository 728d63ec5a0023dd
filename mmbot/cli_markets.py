"""``mmbot markets``: the tradeable markets of a listing, filtered as ``[select]`` would, with both
books' tops from the CLOB and the complete-set edges (ask sum, bid sum) — a table, or ``--json``.

    mmbot markets --gamma http://127.0.0.1:8765/gamma --series btc-up-or-down-5m
    mmbot markets --gamma https://gamma-api.polymarket.com --tag crypto --max-spread 0.02 --limit 20 --json

The books come from ``--rest`` (default: for the simulator's listing ``REST/gamma`` its ``REST``,
for Polymarket's Gamma Polymarket's CLOB). The spread filter reads the CLOB's book when it has
one, Gamma's best bid and ask otherwise. Times to end are on the venue's clock (its ``/time``),
not this machine's.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from mmbot.cli_errors import UsageError

POLYMARKET = {"https://gamma-api.polymarket.com": "https://clob.polymarket.com"}  # cli_places.GAMMA_FOR reversed
_NS = 1_000_000_000


def rest_for(gamma: str) -> str | None:
    """The CLOB beside a listing: Polymarket's for its Gamma; ``X`` for the simulator's ``X/gamma``."""
    gamma = gamma.rstrip("/")
    if gamma in POLYMARKET:
        return POLYMARKET[gamma]
    return gamma[: -len("/gamma")] if gamma.endswith("/gamma") else None


def _micro_arg() -> Any:
    def parse(text: str) -> int:
        from mmbot.model import parse_micro

        try:
            value = parse_micro(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a decimal like 0.02, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected zero or more, got {text!r}")
        return value

    return parse


def add_parser(sub: Any, int_arg: Any) -> None:
    markets = sub.add_parser("markets", help="list tradeable markets: books' tops and complete-set edges")
    markets.add_argument("--gamma", required=True, help="market listing (Gamma) base URL (the simulator's: REST/gamma)")
    markets.add_argument("--rest", help="CLOB REST base URL for the books (default: Polymarket's CLOB for its Gamma,"
                                        " REST for the simulator's REST/gamma)")
    markets.add_argument("--slug", action="append", default=[], metavar="PATTERN",
                         help="slug pattern, shell-style, e.g. 'btc-updown-5m-*' (repeatable: any of them; default: every slug)")
    markets.add_argument("--series", action="append", default=[], help="series slug, e.g. btc-up-or-down-5m"
                                                                        " (repeatable: any of them; default: every series)")
    markets.add_argument("--tag", action="append", default=[], help="tag slug, e.g. crypto (repeatable: any of them; default: every tag)")
    markets.add_argument("--min-liquidity", type=_micro_arg(), default=0, metavar="PUSD",
                         help="at least this much liquidity (pUSD)")
    markets.add_argument("--max-spread", type=_micro_arg(), metavar="PRICE",
                         help="at most this spread on the first outcome, e.g. 0.02")
    markets.add_argument("--min-time-to-end", type=int_arg("--min-time-to-end"), default=0, metavar="S",
                         help="at least this many seconds before the market ends")
    markets.add_argument("--limit", type=int_arg("--limit"), default=0, metavar="N",
                         help="at most N markets, the soonest-ending first (0: all)")
    markets.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def cmd_markets(args: argparse.Namespace) -> int:
    import httpx
    import trio

    from mmbot.config import SelectConfig
    from mmbot.model import ONE

    from mmbot.cli_places import HTTP, check_url

    check_url("--gamma", args.gamma, HTTP, "mmbot markets")
    check_url("--rest", args.rest, HTTP, "mmbot markets")
    select = SelectConfig(slugs=tuple(args.slug), series=tuple(args.series), tags=tuple(args.tag),
                          min_liquidity=args.min_liquidity, max_spread=ONE if args.max_spread is None else args.max_spread,
                          min_time_to_end_s=args.min_time_to_end, max_markets=args.limit)
    rest = args.rest or rest_for(args.gamma)
    try:
        rows, now_ns = trio.run(_gather, args.gamma, rest, select)
    except (httpx.HTTPError, ValueError) as exc:
        request = getattr(exc, "_request", None)  # httpx.HTTPError.request raises when there is none
        where = None if request is None else str(request.url.copy_with(query=None))
        what = f"{type(exc).__name__}: {exc}".splitlines()[0] or type(exc).__name__
        raise UsageError(f"mmbot markets: {where or args.gamma}: cannot list markets: {what}") from None
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        _table(rows, now_ns)
    return 0


async def _venue_now(client: Any) -> int | None:
    """The CLOB's time (``GET /time``: unix seconds, bare or ``{time}``), or None."""
    import httpx

    try:
        response = await client.get("/time")
        response.raise_for_status()
        body = response.json()
        return int(body["time"] if isinstance(body, dict) else body) * _NS
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


async def _gather(gamma_url: str, rest_url: str | None, select: Any) -> tuple[list[dict[str, Any]], int]:
    import attrs
    import httpx

    from mmbot.clock import wall_ns
    from mmbot.model import ONE
    from mmbot.venues.polymarket.listing import book_tops, fetch_listing
    from mmbot.venues.polymarket.selection import select as choose

    async with httpx.AsyncClient(base_url=gamma_url, timeout=15) as gamma:
        listing, problems = await fetch_listing(gamma)
    for problem in problems:
        print(f"mmbot markets: skipped: {problem}", file=sys.stderr)
    tops: dict[str, tuple[int | None, int | None]] = {}
    now_ns = None
    if rest_url:
        async with httpx.AsyncClient(base_url=rest_url, timeout=15) as rest:
            now_ns = await _venue_now(rest)
            now = now_ns if now_ns is not None else wall_ns()
            # every filter but the spread first, so only those markets' books are fetched
            wanted = choose(listing, attrs.evolve(select, max_spread=ONE, max_markets=0), now)
            tops = await book_tops(rest, [t for c in wanted for t in c.listed.info.tokens])
            listing = [c.listed for c in wanted]
    now_ns = now_ns if now_ns is not None else wall_ns()
    with_books = [attrs.evolve(listed, best_bid=tops[listed.info.tokens[0]][0], best_ask=tops[listed.info.tokens[0]][1])
                  if listed.info.tokens[0] in tops else listed for listed in listing]
    return [_row(choice.listed, tops, now_ns) for choice in choose(with_books, select, now_ns)], now_ns


def _row(listed: Any, tops: dict[str, tuple[int | None, int | None]], now_ns: int) -> dict[str, Any]:
    """One market as the JSON output shows it: prices and amounts as decimal strings."""
    from mmbot.model import format_micro

    info = listed.info

    def dec(value: int | None) -> str | None:
        return None if value is None else format_micro(value)

    books = [tops.get(token, (None, None)) for token in info.tokens]
    asks, bids = [ask for _, ask in books], [bid for bid, _ in books]
    end = info.end_ns
    return {
        "slug": info.slug, "question": info.question, "market": info.market, "outcomes": list(info.outcomes),
        "end": None if end is None else datetime.fromtimestamp(end // _NS, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "time_to_end_s": None if end is None else (end - now_ns) // _NS,
        "tick": dec(info.tick), "min_size": dec(info.min_size), "fee_rate": dec(info.fee_rate),
        "fee_exponent": info.fee_exponent, "neg_risk": info.neg_risk,
        "liquidity": dec(listed.liquidity), "volume": dec(listed.volume),
        "series": list(listed.series), "tags": list(listed.tags),
        "books": {outcome: {"bid": dec(bid), "ask": dec(ask)} for outcome, (bid, ask) in zip(info.outcomes, books)},
        "ask_sum": None if None in asks else dec(sum(asks)),  # type: ignore[arg-type]
        "bid_sum": None if None in bids else dec(sum(bids)),  # type: ignore[arg-type]
    }


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0:
        return "ended"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _table(rows: list[dict[str, Any]], now_ns: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(rows)} tradeable market(s)", title_justify="left")
    for name, justify in (("slug", "left"), ("question", "left"), ("ends (UTC)", "left"), ("in", "right"),
                          ("tick", "right"), ("min", "right"), ("fee", "right"), ("neg", "center"),
                          ("liquidity", "right"), ("volume", "right"), ("books: bid / ask", "left"),
                          ("ask sum", "right"), ("bid sum", "right")):
        table.add_column(name, justify=justify, no_wrap=name in ("slug", "ends (UTC)", "books: bid / ask"),  # type: ignore[arg-type]
                         max_width=40 if name == "question" else None)
    for row in rows:
        books = "\n".join(f"{escape(outcome)} {b['bid'] or '-'} / {b['ask'] or '-'}" for outcome, b in row["books"].items())
        table.add_row(
            escape(row["slug"]), escape(row["question"]), (row["end"] or "-").replace("T", " ").rstrip("Z"),
            _duration(row["time_to_end_s"]), row["tick"], row["min_size"], row["fee_rate"],
            "yes" if row["neg_risk"] else "", row["liquidity"] or "-", row["volume"] or "-", books,
            row["ask_sum"] or "-", row["bid_sum"] or "-",
        )
    console = Console()
    (console if console.is_terminal else Console(width=240)).print(table)  # a pipe or file gets every column
