"""RestartPolicy's arithmetic as properties, and supervise() on Trio's autojump clock."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.backoff import Backoff
from mmbot.supervisor import RestartPolicy, supervise


class ListSink:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any] | None]] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "", token: str = "") -> None:
        self.rows.append((kind, cid, payload))

    def payloads(self, kind: str) -> list[dict[str, Any] | None]:
        return [payload for row_kind, _, payload in self.rows if row_kind == kind]


class Boom(Exception):
    pass


# --------------------------------------------------------------------------- RestartPolicy

run_lengths = st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=1, max_size=30)  # float-ok: seconds


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), runs=run_lengths)
def test_policy_matches_a_from_scratch_model(seed: int, runs: list[float]) -> None:  # float-ok: seconds
    policy = RestartPolicy(rng=random.Random(seed))
    crash_times: list[float] = []  # float-ok: seconds
    now = 0.0  # float-ok: seconds
    expected_attempt = 0
    for run in runs:
        policy.on_start(now)
        started, now = now, now + run
        crash_times.append(now)
        expected_attempt = 1 if now - started >= policy.healthy_after_s else expected_attempt + 1
        in_window = sum(1 for t in crash_times if now - t <= 300)
        decision = policy.on_crash(now)
        assert decision.attempt == expected_attempt
        assert decision.crashes_in_window == in_window
        if in_window >= 3:
            assert not decision.restart and decision.delay_s == 0
            return
        assert decision.restart
        nominal = min(30.0, 0.5 * 2 ** (expected_attempt - 1))  # float-ok: seconds
        assert nominal / 2 <= decision.delay_s <= nominal <= 30
        now += decision.delay_s


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), gaps=st.lists(st.floats(min_value=300.001, max_value=10_000, allow_nan=False), max_size=30))  # float-ok
def test_crashes_more_than_the_window_apart_never_trip(seed: int, gaps: list[float]) -> None:  # float-ok: seconds
    policy = RestartPolicy(rng=random.Random(seed))
    now = 0.0  # float-ok: seconds
    for gap in gaps:
        decision = policy.on_crash(now)
        assert decision.restart and decision.crashes_in_window == 1
        assert decision.delay_s <= 30
        now += gap


@settings(max_examples=100, deadline=None)
@given(
    base=st.floats(min_value=0.01, max_value=5, allow_nan=False),  # float-ok: seconds
    cap=st.floats(min_value=5, max_value=30, allow_nan=False),  # float-ok: seconds
    attempts=st.integers(1, 200),
)
def test_nominal_backoff_is_non_decreasing_and_capped(base: float, cap: float, attempts: int) -> None:  # float-ok
    policy = RestartPolicy(base_s=base, cap_s=cap, rng=random.Random(0))
    delays = [policy.backoff_s(n) for n in range(1, attempts + 1)]
    assert delays[0] == min(base, cap)
    assert all(a <= b for a, b in zip(delays, delays[1:]))
    assert max(delays) <= cap <= 30


def test_third_crash_within_five_minutes_trips() -> None:
    policy = RestartPolicy(rng=random.Random(1))
    assert policy.on_crash(0).restart
    assert policy.on_crash(150).restart
    decision = policy.on_crash(300)  # the first crash is exactly 300 s old: it still counts
    assert (decision.restart, decision.crashes_in_window, decision.attempt) == (False, 3, 3)


def test_same_seed_same_delays_and_on_healthy_resets_attempts() -> None:
    first = RestartPolicy(rng=random.Random(42))
    second = RestartPolicy(rng=random.Random(42))
    assert [first.on_crash(t * 1000).delay_s for t in range(5)] == [second.on_crash(t * 1000).delay_s for t in range(5)]
    assert first.attempt == 5
    first.on_healthy(5000)
    assert first.attempt == 0 and first.on_crash(6000).attempt == 1


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        RestartPolicy(base_s=40, cap_s=30, rng=random.Random(0))
    with pytest.raises(ValueError):
        RestartPolicy(max_crashes=0, rng=random.Random(0))
    with pytest.raises(ValueError):
        RestartPolicy(rng=random.Random(0)).backoff_s(0)


# --------------------------------------------------------------------------- supervise()


async def test_two_crashes_then_running_restarts_twice_after_the_policy_delays(autojump_clock) -> None:
    sink = ListSink()
    calls: list[float] = []  # float-ok: virtual start times

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        calls.append(trio.current_time())
        if len(calls) <= 2:
            raise Boom(f"crash {len(calls)}")

    twin = RestartPolicy(rng=random.Random(7))
    expected = [twin.on_crash(0).delay_s]
    expected.append(twin.on_crash(expected[0]).delay_s)

    start = trio.current_time()
    await supervise("feed", service, policy=RestartPolicy(rng=random.Random(7)), sink=sink, now=trio.current_time)

    assert len(calls) == 3
    assert calls[1] - calls[0] == pytest.approx(expected[0])
    assert calls[2] - calls[1] == pytest.approx(expected[1])
    assert trio.current_time() - start == pytest.approx(sum(expected))
    assert 0.25 <= expected[0] <= 0.5 and 0.5 <= expected[1] <= 1.0
    assert sink.rows == [
        ("restart", "supervise:feed:1", {"service": "feed", "attempt": 1, "delay_ms": round(expected[0] * 1000), "error": "Boom: crash 1"}),
        ("restart", "supervise:feed:2", {"service": "feed", "attempt": 2, "delay_ms": round(expected[1] * 1000), "error": "Boom: crash 2"}),
    ]


async def test_three_crashes_within_the_window_trip_the_breaker(autojump_clock) -> None:
    sink = ListSink()
    tripped: list[tuple[str, BaseException]] = []
    calls = 0

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal calls
        calls += 1
        await trio.sleep(10)
        raise Boom("again")

    await supervise(
        "executor",
        service,
        policy=RestartPolicy(rng=random.Random(3)),
        sink=sink,
        now=trio.current_time,
        on_trip=lambda name, exc: tripped.append((name, exc)),
    )

    assert calls == 3
    assert [kind for kind, _, _ in sink.rows] == ["restart", "restart", "breaker_trip"]
    assert sink.payloads("breaker_trip") == [{"service": "executor", "crashes": 3, "error": "Boom: again"}]
    assert len(tripped) == 1 and tripped[0][0] == "executor" and isinstance(tripped[0][1], Boom)


async def test_a_service_that_returns_ends_supervision(autojump_clock) -> None:
    sink = ListSink()
    calls = 0

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal calls
        calls += 1
        task_status.started()

    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: supervise("once", service, policy=RestartPolicy(rng=random.Random(0)), sink=sink, now=trio.current_time, task_status=task_status))
    assert calls == 1 and sink.rows == []


async def test_started_reaches_the_caller_once_even_across_restarts(autojump_clock) -> None:
    sink = ListSink()
    runs = 0
    third_run_started = trio.Event()

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise Boom("before started")
        task_status.started(f"ready on run {runs}")
        if runs == 2:
            raise Boom("after started")
        third_run_started.set()
        await trio.sleep_forever()

    with trio.fail_after(600):  # virtual seconds: a broken hand-off fails instead of hanging
        async with trio.open_nursery() as nursery:
            value = await nursery.start(
                lambda task_status: supervise("feed", service, policy=RestartPolicy(rng=random.Random(5)), sink=sink, now=trio.current_time, task_status=task_status)
            )
            assert value == "ready on run 2"
            await third_run_started.wait()
            nursery.cancel_scope.cancel()  # cancellation is not a crash: no row, no restart
    assert runs == 3
    assert [payload["error"] for payload in sink.payloads("restart")] == ["Boom: before started", "Boom: after started"]


async def test_a_long_healthy_run_resets_the_backoff(autojump_clock) -> None:
    sink = ListSink()
    runs = 0

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        if runs == 5:
            return
        await trio.sleep(160)  # crashes more than 300 s apart: 160 s of running plus the delay
        raise Boom("rare")

    await supervise("gateway", service, policy=RestartPolicy(rng=random.Random(9)), sink=sink, now=trio.current_time)
    assert [payload["attempt"] for payload in sink.payloads("restart")] == [1, 1, 1, 1]
    assert sink.payloads("breaker_trip") == []


async def test_a_crash_inside_the_services_own_nursery_is_a_crash(autojump_clock) -> None:
    sink = ListSink()
    runs = 0

    async def failing_child() -> None:
        raise Boom("child")

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(failing_child)

    await supervise("shard", service, policy=RestartPolicy(rng=random.Random(11)), sink=sink, now=trio.current_time)
    assert runs == 2
    [payload] = sink.payloads("restart")
    assert payload["error"] == "Boom: child"  # the group is described by what is in it


def test_restart_delays_are_the_backoffs() -> None:
    policy, backoff = RestartPolicy(rng=random.Random(21)), Backoff(base_s=0.5, cap_s=30, rng=random.Random(21))
    delays = [policy.on_crash(t * 1000).delay_s for t in range(12)]
    assert delays == [backoff.next_s() for _ in range(12)]
    assert policy.attempt == backoff.attempt == 12
    assert policy.backoff_s(3) == backoff.nominal_s(3) == 2.0


async def test_a_breaker_tripped_before_the_service_started_releases_the_caller(autojump_clock) -> None:
    sink = ListSink()
    tripped: list[str] = []

    async def service(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        raise Boom("cannot start")

    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: supervise(
                "listing-details", service, policy=RestartPolicy(rng=random.Random(2)), sink=sink,
                now=trio.current_time, on_trip=lambda name, exc: tripped.append(name), task_status=task_status))
    assert tripped == ["listing-details"]
    assert [kind for kind, _, _ in sink.rows] == ["restart", "restart", "breaker_trip"]
