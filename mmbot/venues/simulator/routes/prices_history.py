"""``GET /prices-history?market=<token id>``: a token's trade prices over time, as
``{"history": [{"t": <unix seconds>, "p": <price>}]}``, oldest first.

The window is either ``interval`` (``1h``, ``6h``, ``1d``, ``1w``, ``1m`` back from now; ``max``
or ``all`` for everything kept) or ``startTs``/``endTs`` (unix seconds, either may be left out),
never both; ``fidelity`` is the bucket in minutes (default 1). Each bucket that saw a trade gives
one point, its start and the last price traded in it (``price_history``); a token the venue never
saw trade, or does not know, has an empty history.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from starlette.responses import JSONResponse, Response

from mmbot.model import format_micro
from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.venue import LiveVenue

INTERVALS_S = {"1h": 3_600, "6h": 6 * 3_600, "1d": 86_400, "1w": 7 * 86_400, "1m": 30 * 86_400,
               "max": None, "all": None}
MAX_FIDELITY_MIN = 366 * 24 * 60


def prices_history(venue: LiveVenue, query: Mapping[str, str]) -> Response:
    token = query.get("market", "")
    if not token:
        return error(400, "market is required")
    interval, start, end = query.get("interval"), query.get("startTs"), query.get("endTs")
    now_s = venue.now_ns // 1_000_000_000
    if interval is not None and (start is not None or end is not None):
        return error(400, "invalid filters: 'startTs' and 'interval' are mutually exclusive")
    if interval is None and start is None and end is None:
        return error(400, "invalid filters: expected an 'interval' or 'startTs'/'endTs'")
    try:
        if interval is not None:
            if interval not in INTERVALS_S:
                raise ValueError(f"invalid interval: {interval[:20]!r}")
            span = INTERVALS_S[interval]
            start_s, end_s = (0 if span is None else now_s - span), now_s
        else:
            start_s, end_s = _seconds(start, "startTs", 0), _seconds(end, "endTs", now_s)
        fidelity = _seconds(query.get("fidelity"), "fidelity", 1)
        if not 1 <= fidelity <= MAX_FIDELITY_MIN:
            raise ValueError(f"invalid fidelity: expected whole minutes from 1 to {MAX_FIDELITY_MIN}")
    except ValueError as exc:
        return error(400, str(exc))
    points = venue.prints.history(token, start_s=start_s, end_s=end_s, fidelity_min=fidelity)
    history: list[dict[str, Any]] = [{"t": t, "p": float(format_micro(p))} for t, p in points]  # float-ok: a number
    return JSONResponse({"history": history})


def _seconds(text: str | None, name: str, default: int) -> int:
    """A whole number from the query (a trailing ``.0`` allowed), ``default`` when absent."""
    if text is None:
        return default
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"invalid {name}: {text[:20]!r}") from None
    if not value.is_finite() or value != value.to_integral_value() or abs(value) > 10**12:
        raise ValueError(f"invalid {name}: {text[:20]!r}")
    return int(value)
