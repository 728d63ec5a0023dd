"""The alert rules over event-log rows and feed states, and the rate limit (cockpit/alerts.py),
sans-IO; the environment's checks (app_alerts.alert_targets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.app_alerts import alert_targets, check_alert_env
from mmbot.cockpit.alerts import HOUR_NS, Alerts, RateLimiter
from mmbot.config import AlertsConfig

S = 1_000_000_000
WALL0 = 1_760_000_000 * S


def describe(token: str) -> tuple[str, str, str]:
    return ("0xmarket", "btc-up-or-down", "Up" if token == "t-up" else "Down")


def make(**kw) -> Alerts:
    return Alerts(describe=describe, label_market=lambda m: "btc-up-or-down" if m == "0xmarket" else m[:12], **kw)


def row(kind: str, t_s: float, cid: str = "c", market: str = "", token: str = "") -> tuple:  # float-ok: seconds
    t = int(t_s * S)
    return (0, t, WALL0 + t, kind, cid, market, token, "")


# --------------------------------------------------------------------------- rules over rows


def test_each_rule_fires_on_its_row_and_names_the_market_and_outcome():
    alerts = make(min_interval_s=0, max_per_hour=100)
    got = alerts.on_row(row("breaker_trip", 1), {"service": "market-feed", "crashes": 3, "error": "boom"})
    assert [(a.kind, a.level) for a in got] == [("breaker_trip", "error")] and "market-feed" in got[0].title
    assert "boom" in got[0].text and got[0].at_wall_ns == WALL0 + S
    got = alerts.on_row(row("correction", 2, market="0xmarket", token="t-up"),
                        {"order_id": "o7", "reason": "trade FAILED", "size_delta": -5_000_000, "fee_delta": 0})
    assert got[0].kind == "correction"
    assert dict(got[0].fields) == {"market": "btc-up-or-down", "outcome": "Up", "order": "o7", "reason": "trade FAILED",
                                   "size change": "-5", "fee change": "0"}
    got = alerts.on_row(row("outcome_unknown", 3, market="0xmarket", token="t-down"), {"order_id": "o8", "detail": "502"})
    assert got[0].kind == "outcome_unknown" and dict(got[0].fields)["outcome"] == "Down"
    got = alerts.on_row(row("run_failed", 4, cid="run"), {"reason": "venue refused the key"})
    assert got[0].kind == "run_failed" and "venue refused the key" in got[0].text
    got = alerts.on_row(row("chain_unsettled", 5, cid="shutdown"), {"level": "error", "pending": 2})
    assert got[0].kind == "chain_unsettled" and dict(got[0].fields) == {"pending": "2"}
    # rows no rule is about, and an error that is not a heartbeat's
    assert alerts.on_row(row("fill", 6), {"price": 1}) == []
    assert alerts.on_row(row("error", 7, cid="x"), {"where": "gateway", "failing_in_a_row": 9}) == []


def test_daily_loss_is_told_once_a_day_whether_risk_refuses_or_the_kill_switch_flattens():
    alerts = make(min_interval_s=0, max_per_hour=100)
    assert alerts.on_row(row("risk_verdict", 1), {"accepted": True, "reason": "ok"}) == []
    assert alerts.on_row(row("risk_verdict", 1), {"accepted": False, "reason": "max_position_per_token"}) == []
    (first,) = alerts.on_row(row("risk_verdict", 2), {"accepted": False, "reason": "max_daily_loss", "strategy": "mm"})
    assert first.kind == "daily_loss" and "mm" in first.text
    assert alerts.on_row(row("risk_verdict", 3), {"accepted": False, "reason": "max_daily_loss"}) == []
    assert alerts.on_row(row("daily_loss_flatten", 4), {"daily_pnl": -60_000_000, "limit": 50_000_000}) == []
    (next_day,) = make().on_row(row("daily_loss_flatten", 4), {"daily_pnl": -60_000_000, "limit": 50_000_000})
    assert dict(next_day.fields) == {"daily PnL": "-60", "limit": "50"} and "sells its inventory" in next_day.text
    (tomorrow,) = alerts.on_row(row("risk_verdict", 86_400), {"accepted": False, "reason": "max_daily_loss"})
    assert tomorrow.kind == "daily_loss"


def test_heartbeats_are_told_once_per_streak_of_failures():
    alerts = make(min_interval_s=0, max_per_hour=100)

    def beat(n: int, t: int) -> list:
        return alerts.on_row(row("error", t, cid="heartbeat"), {"where": "gateway", "error": "heartbeat: 503",
                                                                "failing_in_a_row": n})

    assert beat(1, 1) == [] and beat(2, 2) == []
    (told,) = beat(3, 3)
    assert told.kind == "heartbeat_failing" and "503" in told.text
    assert beat(4, 4) == [] and beat(5, 5) == []
    assert beat(1, 20) == [] and beat(2, 21) == []  # a success in between: a new streak
    assert [a.kind for a in beat(3, 22)] == ["heartbeat_failing"]


def test_a_feed_down_past_the_threshold_is_told_once_and_its_return_too():
    alerts = make(feed_down_after_s=30, min_interval_s=0, max_per_hour=100)
    assert alerts.tick(10 * S, WALL0, {"market-1": 29 * S}) == []
    (down,) = alerts.tick(11 * S, WALL0, {"market-1": 30 * S, "market-2": 30 * S, "user": 5 * S})
    assert down.kind == "feed_down" and "market-1, market-2" in down.text and "30 s" in down.text
    assert alerts.tick(12 * S, WALL0, {"market-1": 31 * S, "market-2": 31 * S, "user": 6 * S}) == []
    (user,) = alerts.tick(40 * S, WALL0, {"market-1": 59 * S, "market-2": 59 * S, "user": 35 * S})
    assert user.kind == "user_down"
    got = alerts.tick(41 * S, WALL0, {"market-1": 60 * S})  # market-2 back, then the user channel
    assert [(a.kind, a.text) for a in got] == [
        ("feed_up", "Market channel market-2 is connected again."), ("user_up", "The user channel is connected again.")]
    assert [a.kind for a in alerts.tick(42 * S, WALL0, {})] == ["feed_up"]
    assert alerts.tick(43 * S, WALL0, {}) == []
    # a connection that flaps quicker than the threshold is never told
    assert alerts.tick(50 * S, WALL0, {"market-1": 29 * S}) == [] and alerts.tick(51 * S, WALL0, {}) == []


# --------------------------------------------------------------------------- the rate limit


def test_the_same_kind_waits_its_interval_and_says_how_many_were_held_back():
    alerts = make(min_interval_s=60, max_per_hour=100)
    trip = {"service": "s", "crashes": 3, "error": "e"}
    assert [a.more for a in alerts.on_row(row("breaker_trip", 0), trip)] == [0]
    for t in (1, 2, 3):
        assert alerts.on_row(row("breaker_trip", t), trip) == []
    assert alerts.held == 3
    # other kinds are not held by it
    assert len(alerts.on_row(row("run_failed", 4), {"reason": "x"})) == 1
    # a newer one of the kind after the interval carries the count
    (later,) = alerts.on_row(row("breaker_trip", 61), trip)
    assert later.more == 3 and "and 3 more" in later.full_text and alerts.held == 0


def test_a_held_alert_goes_out_by_itself_once_the_interval_has_passed():
    alerts = make(min_interval_s=60, max_per_hour=100)
    first = alerts.on_row(row("correction", 0), {"order_id": "o1", "reason": "r"})
    assert len(first) == 1
    assert alerts.on_row(row("correction", 5), {"order_id": "o2", "reason": "r"}) == []
    assert alerts.on_row(row("correction", 6), {"order_id": "o3", "reason": "r"}) == []
    assert alerts.tick(59 * S, WALL0, {}) == []
    (late,) = alerts.tick(60 * S, WALL0, {})
    assert "o3" in late.text and late.more == 1  # the newest held, with the one before it counted
    assert alerts.held == 0 and alerts.tick(200 * S, WALL0, {}) == []


def test_all_kinds_together_stop_at_max_per_hour():
    alerts = make(min_interval_s=0, max_per_hour=3)
    kinds = [a.kind for t in range(6) for a in alerts.on_row(row("run_failed", t), {"reason": str(t)})]
    assert kinds == ["run_failed"] * 3 and alerts.held == 3
    (after,) = alerts.on_row(row("run_failed", 3600), {"reason": "later"})
    assert after.more == 3


@settings(max_examples=300, deadline=None)
@given(
    interval_s=st.integers(0, 120), per_hour=st.integers(1, 20),
    offers=st.lists(st.tuples(st.integers(0, 400), st.sampled_from("abcd")), max_size=120),
)
def test_the_limiter_never_passes_its_limits_and_loses_no_count(interval_s, per_hour, offers):
    limiter = RateLimiter(min_interval_ns=interval_s * S, max_per_hour=per_hour)
    now = 0
    sent: list[tuple[int, str]] = []
    told = 0
    for step, kind in offers:
        now += step * S // 4
        more = limiter.admit(kind, now)
        if more is not None:
            sent.append((now, kind))
            told += more
    for i, (t, kind) in enumerate(sent):
        # any hour holds at most max_per_hour
        assert sum(1 for u, _ in sent[i:] if u < t + HOUR_NS) <= per_hour
        later = [u for u, k in sent[i + 1:] if k == kind]
        assert not later or later[0] - t >= interval_s * S
    # every offer is either sent, told as "more" in a later one, or still held
    assert len(sent) + told + sum(limiter.held.values()) == len(offers)
    # an offer is refused only for a reason: its kind's interval, or a full hour
    if offers and sent:
        assert limiter.allows(offers[-1][1], now + max(HOUR_NS, interval_s * S))


# --------------------------------------------------------------------------- the environment


def test_targets_come_from_the_environment_and_bad_values_name_the_variable_not_the_value():
    assert alert_targets({}) == []
    (hook,) = alert_targets({"MMBOT_ALERT_URL": "https://hooks.slack.com/services/T0/B0/sekrit"},
                            AlertsConfig(format="slack"))
    assert hook.format == "slack" and "sekrit" not in repr(hook)
    (env_fmt,) = alert_targets({"MMBOT_ALERT_URL": "http://127.0.0.1:9/x", "MMBOT_ALERT_FORMAT": "discord"})
    assert env_fmt.format == "discord"
    token = "123456:AAbbccddeeffgghhiijjkkllmmnn"
    both = alert_targets({"MMBOT_ALERT_URL": "http://127.0.0.1:9/x", "MMBOT_TELEGRAM_TOKEN": token,
                          "MMBOT_TELEGRAM_CHAT": "-100200", "MMBOT_TELEGRAM_API": "http://127.0.0.1:9/"})
    assert [t.format for t in both] == ["generic", "telegram"]
    assert both[1].url.reveal() == f"http://127.0.0.1:9/bot{token}/sendMessage" and token not in repr(both[1])
    bad = [
        ({"MMBOT_ALERT_URL": "hooks.slack.com/sekrit"}, "MMBOT_ALERT_URL"),
        ({"MMBOT_ALERT_URL": "ftp://host/sekrit"}, "MMBOT_ALERT_URL"),
        ({"MMBOT_ALERT_URL": "https://host/ sekrit"}, "MMBOT_ALERT_URL"),
        ({"MMBOT_ALERT_URL": "https:///sekrit"}, "MMBOT_ALERT_URL"),
        ({"MMBOT_ALERT_URL": "https://h/sekrit", "MMBOT_ALERT_FORMAT": "sekrit"}, "MMBOT_ALERT_FORMAT"),
        ({"MMBOT_ALERT_URL": "https://h/sekrit", "MMBOT_ALERT_FORMAT": "telegram"}, "MMBOT_ALERT_URL"),
        ({"MMBOT_TELEGRAM_TOKEN": token}, "MMBOT_TELEGRAM_CHAT"),
        ({"MMBOT_TELEGRAM_CHAT": "42"}, "MMBOT_TELEGRAM_TOKEN"),
        ({"MMBOT_TELEGRAM_TOKEN": "sekrit", "MMBOT_TELEGRAM_CHAT": "42"}, "MMBOT_TELEGRAM_TOKEN"),
        ({"MMBOT_TELEGRAM_TOKEN": token, "MMBOT_TELEGRAM_CHAT": "sekrit chat"}, "MMBOT_TELEGRAM_CHAT"),
        ({"MMBOT_TELEGRAM_TOKEN": token, "MMBOT_TELEGRAM_CHAT": "42", "MMBOT_TELEGRAM_API": "sekrit"},
         "MMBOT_TELEGRAM_API"),
        ({"MMBOT_TELEGRAM_API": "http://127.0.0.1/sekrit"}, "MMBOT_TELEGRAM_API"),
    ]
    for environ, name in bad:
        with pytest.raises(ValueError) as caught:
            check_alert_env(environ)
        message = str(caught.value)
        assert message.startswith(name) and "sekrit" not in message and "\n" not in message, (environ, message)
