"""The health rules, pure: a snapshot (and the engine's figures) to ok / degraded / down."""

from __future__ import annotations

from mmbot.cockpit.health import Health, HealthFigures, assess
from tests.test_cockpit_http import _snapshot
from mmbot.cockpit.snapshot import FeedRow


def feed(name: str, up: bool, kind: str = "market", reason: str = "silent for 30 s") -> FeedRow:
    return FeedRow(name=name, kind=kind, up=up, since_wall_ns=1, reason="" if up else reason, sessions=1, assets=8)


def test_a_healthy_run_is_ok():
    assert assess(_snapshot()) == Health("ok")
    assert assess(_snapshot(), HealthFigures(heartbeats_ok=12)) == Health("ok")


def test_down_when_a_breaker_trips_the_run_halts_or_every_market_feed_is_down():
    assert assess(_snapshot(tripped=("decisions",))) == Health("down", ("breaker tripped: decisions",))
    assert assess(_snapshot(halted=True)).status == "down"
    both_down = assess(_snapshot(feeds=(feed("market-0", False), feed("market-1", False, reason="closed 1012"))))
    assert both_down == Health("down", ("every market feed down: market-0 (silent for 30 s); market-1 (closed 1012)",))


def test_degraded_names_each_reason():
    snap = _snapshot(feeds=(feed("market-0", True), feed("market-1", False), feed("user", False, "user", "closed")),
                     paused=True, gate_open=False)
    verdict = assess(snap, HealthFigures(heartbeats_ok=1, heartbeats_failed=3, stale_books=2))
    assert verdict == Health("degraded", (
        "market feed market-1 down: silent for 30 s", "user channel down: closed",
        "the venue's trading gate is closed", "paused by the operator",
        "heartbeats failing: 3 failed, 1 ok recently", "2 books stale"))
    assert assess(_snapshot(feeds=())) == Health("degraded", ("no market feed connected yet",))


def test_heartbeats_and_quiet_books_count_only_past_their_thresholds():
    assert assess(_snapshot(), HealthFigures(heartbeats_ok=2, heartbeats_failed=2)).status == "ok"
    assert assess(_snapshot(), HealthFigures(stalest_book_s=100)).status == "ok"  # not judged by default
    assert assess(_snapshot(), HealthFigures(stalest_book_s=100, stale_after_s=100)).status == "ok"
    quiet = assess(_snapshot(), HealthFigures(stalest_book_s=101, stale_after_s=100))
    assert quiet == Health("degraded", ("a synced book has had no update for 101 s",))


def test_down_lists_the_degraded_reasons_after_its_own():
    verdict = assess(_snapshot(halted=True, paused=True))
    assert verdict.status == "down" and verdict.reasons[1:] == ("paused by the operator",)


def test_a_cockpit_that_stopped_following_the_log_says_so():
    """The event log drops an observer that raised (a bug): what the cockpit shows is then stale,
    and health says it rather than showing an old picture as ok."""
    from mmbot.cockpit.health import BLIND

    verdict = assess(_snapshot(counts={BLIND: 1}))
    assert verdict.status == "degraded" and "stopped following the event log" in verdict.reasons[0]
    assert assess(_snapshot(counts={BLIND: 0})).status == "ok"
