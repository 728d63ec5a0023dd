"""The selection rule, sans-IO: the listing, the ``[select]`` config and the time → which markets
to start trading, in order, and which traded ones to retire.

A market is chosen when it matches every filter given (an empty one matches everything): a slug
pattern (shell-style), a series slug of its event, a tag, at least ``min_liquidity`` (unknown
liquidity fails a non-zero minimum), a spread of Gamma's best bid and ask of at most
``max_spread`` (unknown fails a maximum below 1), at least ``min_time_to_end_s`` to go (a market
without a scheduled end passes), and it has not ended. Among those not traded yet, the
soonest-ending come first (then by slug and condition id, so the order never depends on the
listing's), as many as ``max_markets`` leaves room for beside the markets already traded.

A traded market is retired when it has ended, or when it is no longer listed as tradeable. One
that merely stops matching (a spread widening for a while) stays: it may hold our inventory, and
its end comes anyway.
"""

from __future__ import annotations

import fnmatch
from typing import Collection, Iterable

import attrs

from mmbot.config import SelectConfig
from mmbot.model import ONE, MarketInfo, format_micro
from mmbot.venues.polymarket.listing import Listed

_NS = 1_000_000_000


@attrs.frozen
class Choice:
    listed: Listed
    reason: str  # which filters it met, for the ``market_selected`` row


def why(listed: Listed, config: SelectConfig, now_ns: int) -> str | None:
    """Why ``listed`` matches ``config`` at ``now_ns`` (one line), or None if it does not."""
    info = listed.info
    reasons = []
    if info.end_ns is not None:
        if info.end_ns <= now_ns or info.end_ns - now_ns < config.min_time_to_end_s * _NS:
            return None
    if config.slugs:
        pattern = next((p for p in config.slugs if fnmatch.fnmatchcase(info.slug, p)), None)
        if pattern is None:
            return None
        reasons.append(f"slug {pattern}")
    if config.series:
        series = next((s for s in config.series if s in listed.series), None)
        if series is None:
            return None
        reasons.append(f"series {series}")
    if config.tags:
        tag = next((t for t in config.tags if t in listed.tags), None)
        if tag is None:
            return None
        reasons.append(f"tag {tag}")
    if config.min_liquidity > 0:
        if listed.liquidity is None or listed.liquidity < config.min_liquidity:
            return None
        reasons.append(f"liquidity {format_micro(listed.liquidity)}")
    if config.max_spread < ONE:
        spread = listed.spread
        if spread is None or spread > config.max_spread:
            return None
        reasons.append(f"spread {format_micro(spread)}")
    if info.end_ns is not None and config.min_time_to_end_s:
        reasons.append(f"ends in {(info.end_ns - now_ns) // _NS} s")
    return "; ".join(reasons) or "every tradeable market (no [select] filter)"


def _order(listed: Listed) -> tuple[int, int, str, str]:
    end = listed.info.end_ns
    return (end is None, end or 0, listed.info.slug, listed.info.market)


def select(listing: Iterable[Listed], config: SelectConfig, now_ns: int, *,
           traded: Collection[str] = ()) -> list[Choice]:
    """The markets to start trading now, soonest-ending first: those matching ``config`` and not
    among ``traded`` (condition ids), as many as ``max_markets`` leaves room for (0: no cap)."""
    room = max(config.max_markets - len(traded), 0) if config.max_markets else None
    seen: set[str] = set()
    candidates = []
    for listed in sorted(listing, key=_order):
        if listed.info.market in traded or listed.info.market in seen:
            continue
        reason = why(listed, config, now_ns)
        if reason is not None:
            seen.add(listed.info.market)
            candidates.append(Choice(listed, reason))
    return candidates if room is None else candidates[:room]


def retire(traded: Iterable[MarketInfo], listed: Collection[str], now_ns: int) -> list[tuple[MarketInfo, str]]:
    """The traded markets to retire, each with why: ended (its end passed), or no longer listed
    as tradeable (``listed``: the condition ids of the listing just read)."""
    gone = []
    for info in traded:
        if info.end_ns is not None and info.end_ns <= now_ns:
            gone.append((info, "ended"))
        elif info.market not in listed:
            gone.append((info, "no longer listed as tradeable"))
    return gone


def soonest_end(traded: Iterable[MarketInfo], now_ns: int) -> int | None:
    """The next end among ``traded`` after ``now_ns`` (an Up/Down boundary), or None."""
    ends = [info.end_ns for info in traded if info.end_ns is not None and info.end_ns > now_ns]
    return min(ends, default=None)
