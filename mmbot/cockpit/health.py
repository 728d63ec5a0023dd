"""Is the run well? Pure rules from a ``Snapshot`` (and, when the composition root has them, the
engine's ``HealthFigures``) to ``ok`` / ``degraded`` / ``down`` with the reasons a person reads,
for ``/healthz``, the dashboard and alerts.

- down: a breaker tripped (a service crashed too often), the run halted (it stopped quoting for
  good), or every market feed connection is down;
- degraded: some market feed connection down, no market feed connected yet, the user channel
  down (signed modes), the venue's trading gate closed, heartbeats failing (more recent failures
  than successes), paused by the operator, stale books.
"""

from __future__ import annotations

import attrs

from mmbot.cockpit.snapshot import Snapshot

OK, DEGRADED, DOWN = "ok", "degraded", "down"
BLIND = "cockpit_observer_failures"  # in Snapshot.counts: the log dropped the cockpit's watch (it raised)


@attrs.frozen
class HealthFigures:
    """What health needs that a snapshot does not show, read from the engine at the same instant."""

    heartbeats_ok: int = 0  # in the recent window
    heartbeats_failed: int = 0
    stale_books: int = 0  # books not synced (stale or crossed) among those the run follows
    stalest_book_s: int | None = None  # seconds since the last update of the stalest synced book
    stale_after_s: int | None = None  # a synced book quiet for longer counts as stale (None: not judged)


@attrs.frozen
class Health:
    status: str  # ok / degraded / down
    reasons: tuple[str, ...] = ()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def assess(snap: Snapshot, figures: HealthFigures | None = None) -> Health:
    down: list[str] = []
    degraded: list[str] = []
    if snap.tripped:
        down.append(f"breaker tripped: {', '.join(snap.tripped)}")
    if snap.halted:
        down.append("the run halted: it stopped quoting for good")
    market_feeds = [f for f in snap.feeds if f.kind == "market"]
    if market_feeds and not any(f.up for f in market_feeds):
        down.append("every market feed down: " + "; ".join(f"{f.name} ({f.reason})" for f in market_feeds))
    elif market_feeds:
        degraded.extend(f"market feed {f.name} down: {f.reason}" for f in market_feeds if not f.up)
    else:
        degraded.append("no market feed connected yet")
    degraded.extend(f"user channel down: {f.reason}" for f in snap.feeds if f.kind == "user" and not f.up)
    if not snap.gate_open:
        degraded.append("the venue's trading gate is closed")
    if snap.paused:
        degraded.append("paused by the operator")
    if snap.counts.get(BLIND):
        degraded.append("the cockpit stopped following the event log (a bug: see its error rows); what it shows"
                        " is out of date")
    if figures is not None:
        if figures.heartbeats_failed > figures.heartbeats_ok:
            degraded.append(f"heartbeats failing: {figures.heartbeats_failed} failed, {figures.heartbeats_ok} ok "
                            "recently")
        if figures.stale_books:
            degraded.append(f"{_plural(figures.stale_books, 'book')} stale")
        if (figures.stale_after_s is not None and figures.stalest_book_s is not None
                and figures.stalest_book_s > figures.stale_after_s):
            degraded.append(f"a synced book has had no update for {figures.stalest_book_s} s")
    else:
        stale = sum(1 for m in snap.markets for t in m.tokens if t.book_state in ("stale", "crossed"))
        if stale:
            degraded.append(f"{_plural(stale, 'book')} stale")
    if down:
        return Health(DOWN, tuple(down + degraded))
    return Health(DEGRADED, tuple(degraded)) if degraded else Health(OK)
