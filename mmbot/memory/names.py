"""What a person calls a market and a token: its slug and outcome name, read from the log.

Token ids are 70-odd digits and condition ids 66 hex characters: nobody reads them. A run on a
live feed writes a ``market_known`` row per market it knew at start and a ``market_listed`` row
per market listed later (slug, outcomes, tokens); a replay writes neither (its digest must not
change), so its names come from the recording's header when the file named in ``runs.recording``
is still found (as given, beside the log, or under ``recordings/``). A token named nowhere is
shown by the tail of its id, marked as such.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from mmbot.facts.recording import RecordingError, read_header
from mmbot.memory.query import Database, open_database


def short_id(ident: str) -> str:
    """The tail of a long id, enough to tell two apart: ``…71663212 (token id)``."""
    return ident if len(ident) <= 14 else f"…{ident[-8:]}"


@attrs.frozen
class MarketName:
    market: str  # condition id
    slug: str  # "" when unknown
    tokens: tuple[str, ...]
    outcomes: tuple[str, ...]  # same order as tokens; () when unknown

    @property
    def label(self) -> str:
        return self.slug or short_id(self.market)


@attrs.define
class Names:
    """Markets and tokens by what a person calls them."""

    markets: dict[str, MarketName] = attrs.field(factory=dict)  # condition id -> name
    token_market: dict[str, str] = attrs.field(factory=dict)  # token id -> condition id
    source: str = "none"  # where the names came from: "log", "recording <path>", "none"

    def add(self, market: str, slug: str, tokens: Any, outcomes: Any) -> None:
        tokens = tuple(t for t in tokens or () if isinstance(t, str))
        outcomes = tuple(o for o in outcomes or () if isinstance(o, str))
        if len(outcomes) != len(tokens):
            outcomes = ()
        known = self.markets.get(market)
        if known is not None and known.slug and not slug:
            return
        self.markets[market] = MarketName(market=market, slug=slug or "", tokens=tokens, outcomes=outcomes)
        for token in tokens:
            self.token_market[token] = market

    def market_label(self, market: str) -> str:
        known = self.markets.get(market)
        if known is not None:
            return known.label
        return short_id(market) if market else "-"

    def outcome(self, token: str) -> str:
        """The token's outcome name, or its short id marked as one."""
        market = self.markets.get(self.token_market.get(token, ""))
        if market is not None and market.outcomes:
            return market.outcomes[market.tokens.index(token)]
        return f"{short_id(token)} (token id)" if token else "-"

    def market_of(self, token: str, fallback: str = "") -> str:
        return self.token_market.get(token, fallback)

    def token_label(self, token: str) -> str:
        """``slug outcome``, what a legend or a table row shows for one token."""
        market = self.token_market.get(token)
        if market is None:
            return self.outcome(token)
        return f"{self.market_label(market)} {self.outcome(token)}"


def _recording_path(name: str, db: Database) -> Path | None:
    if not name or "://" in name:
        return None
    candidates = [Path(name)]
    if not isinstance(db, str | Path):
        db = getattr(db, "conn", None) and db.execute("PRAGMA database_list").fetchone()[2] or "."
    here = Path(db).resolve().parent
    candidates += [here / name, here / Path(name).name, Path("recordings") / Path(name).name]
    return next((p for p in candidates if p.is_file()), None)


def read_names(db: Database) -> Names:
    """Every market the log names, and which market each token traded in belongs to."""
    database = open_database(db)
    names = Names()
    for kind, market, payload in database.execute(
        "SELECT kind, market, payload FROM events WHERE kind IN ('market_known', 'market_listed') ORDER BY seq"
    ):
        p = json.loads(payload)
        names.add(market or p.get("market", ""), p.get("slug", ""), p.get("tokens"), p.get("outcomes"))
        names.source = "log"
    if not names.markets:
        run = database.execute("SELECT recording FROM runs LIMIT 1").fetchone() if database["runs"].exists() else None
        path = _recording_path(run[0] if run and run[0] else "", db)
        if path is not None:
            try:
                header = read_header(path)
            except RecordingError:
                header = None
            if header is not None:
                for info in header.markets:
                    names.add(info.market, info.slug, info.tokens, info.outcomes)
                names.source = f"recording {path}"
    # tokens we traded or held in markets no row above names: their market from the rows' columns
    for market, token in database.execute(
        "SELECT DISTINCT market, token FROM events WHERE kind IN ('submit', 'fill', 'dry_run_order')"
        " AND market != '' AND token != ''"
    ):
        names.token_market.setdefault(token, market)
    return names
