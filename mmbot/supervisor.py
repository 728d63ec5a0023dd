"""Restart crashed services with backoff, and trip a breaker when they keep crashing (DESIGN §6).

``RestartPolicy`` decides (sans-IO: it is handed the time and a seeded generator) and
``supervise`` acts. A service that crashes is restarted after the project's one backoff
(``mmbot.backoff.Backoff``: exponential, seeded equal jitter, never longer than 30 s); a service
that crashes three times within five minutes is not restarted again, because a restart loop
hides a real fault while orders may rest on stale decisions. The caller's ``on_trip`` then stops
quoting and cancels orders.
"""

from __future__ import annotations

import collections
import random
from typing import Any, Awaitable, Callable

import attrs
import trio

from mmbot.backoff import Backoff
from mmbot.ports import EventSink

Service = Callable[..., Awaitable[None]]  # ``async def run(*, task_status)``, DESIGN §6


@attrs.frozen
class RestartDecision:
    restart: bool  # False: the breaker tripped, do not restart
    delay_s: float  # float-ok: seconds to wait before the restart (0 when not restarting)
    attempt: int  # consecutive crashes since the service last ran healthily
    crashes_in_window: int


class RestartPolicy:
    """When to restart a crashed service, and a breaker on crashes within a sliding window.

    The delays come from a ``Backoff`` (base 0.5 s, cap 30 s): the nominal delay of attempt n is
    ``min(cap, base * 2**(n-1))``, the actual one drawn uniformly from [nominal/2, nominal], so
    restarts of many services spread out yet never come sooner than half the nominal delay nor
    later than the cap. A run that lasted at least ``healthy_after_s`` before crashing resets
    the backoff: an occasional crash of a long-lived service starts again from the short delay.
    The breaker counts every crash in the window, healthy runs or not.
    """

    def __init__(
        self,
        *,
        base_s: float = 0.5,  # float-ok: a delay
        cap_s: float = 30.0,  # float-ok: a delay
        window_s: float = 300.0,  # float-ok: a duration
        max_crashes: int = 3,
        healthy_after_s: float = 60.0,  # float-ok: a duration
        rng: random.Random,
    ) -> None:
        if max_crashes < 1 or window_s <= 0:
            raise ValueError(f"need max_crashes >= 1 and window_s > 0, got {max_crashes}, {window_s}")
        self._backoff = Backoff(base_s=base_s, cap_s=cap_s, rng=rng)  # refuses a base above the cap
        self.window_s = window_s
        self.max_crashes = max_crashes
        self.healthy_after_s = healthy_after_s
        self._crashes: collections.deque[float] = collections.deque()  # float-ok: crash times, s
        self._started_s: float | None = None  # float-ok: when the current run began

    @property
    def base_s(self) -> float:  # float-ok: a delay
        return self._backoff.base_s

    @property
    def cap_s(self) -> float:  # float-ok: a delay
        return self._backoff.cap_s

    @property
    def attempt(self) -> int:
        return self._backoff.attempt

    def backoff_s(self, attempt: int) -> float:  # float-ok: a delay
        """The nominal (jitter-free) delay before restart number ``attempt`` (1-based)."""
        return self._backoff.nominal_s(attempt)

    def on_start(self, now_s: float) -> None:  # float-ok: a time
        """The service (re)starts now; its run length decides whether a crash resets the count."""
        self._started_s = now_s

    def on_healthy(self, now_s: float) -> None:  # float-ok: a time
        """The service has run fine: the next crash starts again from the shortest delay."""
        self._backoff.reset()
        self._forget_before(now_s)

    def on_crash(self, now_s: float) -> RestartDecision:  # float-ok: a time
        if self._started_s is not None and now_s - self._started_s >= self.healthy_after_s:
            self._backoff.reset()
        self._started_s = None
        # Drawn even when the breaker trips (and the delay is not used): the attempt count and
        # the generator then advance alike on every crash.
        delay = self._backoff.next_s()  # float-ok: a delay
        self._crashes.append(now_s)
        self._forget_before(now_s)
        crashes = len(self._crashes)
        if crashes >= self.max_crashes:
            return RestartDecision(
                restart=False, delay_s=0.0, attempt=self.attempt, crashes_in_window=crashes  # float-ok
            )
        return RestartDecision(restart=True, delay_s=delay, attempt=self.attempt, crashes_in_window=crashes)

    def _forget_before(self, now_s: float) -> None:  # float-ok: a time
        # A crash exactly window_s ago still counts: "three within five minutes" is inclusive.
        crashes = self._crashes
        while crashes and now_s - crashes[0] > self.window_s:
            crashes.popleft()


class _StartedOnce:
    """Forwards the first ``started()`` of any run to the real task status, ignores the rest.

    The same object is handed to every run of the service, so the caller's ``nursery.start``
    returns once the service is first usable, even if that is only after a restart, and a
    restarted service may call ``started()`` again without Trio's "called twice" error.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.done = False

    def started(self, value: Any = None) -> None:
        if not self.done:
            self.done = True
            self._inner.started(value)


def _describe(exc: BaseException) -> str:
    """The crash in one line; an exception group (a crash inside the service's own nursery) is
    described by the exceptions in it, which are what the reader of the log needs."""
    if isinstance(exc, BaseExceptionGroup):
        text = "; ".join(_describe(inner) for inner in exc.exceptions)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


async def supervise(
    name: str,
    service: Service,
    *,
    policy: RestartPolicy,
    sink: EventSink,
    now: Callable[[], float],  # float-ok: seconds on the clock the policy's window uses
    on_trip: Callable[[str, BaseException], None] | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``service(task_status=...)`` until it returns, restarting it after each crash.

    Only ``Exception`` counts as a crash (an ExceptionGroup from the service's own nursery
    included); cancellation and other BaseExceptions pass through. Each restart is recorded
    as ``restart`` {service, attempt, delay_ms, error}. When the policy trips the breaker the
    crash is recorded as ``breaker_trip`` {service, crashes, error}, ``on_trip(name, exc)`` is
    called and supervise returns without raising. A caller still waiting in ``nursery.start``
    (the service never called ``started()``) is then released: the breaker has done its work,
    and the run goes on without the service rather than dying of Trio's "never started" error.
    """
    status = _StartedOnce(task_status)
    crashes = 0
    while True:
        policy.on_start(now())
        try:
            await service(task_status=status)
            return
        except Exception as exc:
            crashes += 1
            decision = policy.on_crash(now())
            cid = f"supervise:{name}:{crashes}"
            if not decision.restart:
                sink.record(
                    "breaker_trip",
                    cid,
                    {"service": name, "crashes": decision.crashes_in_window, "error": _describe(exc)},
                )
                if on_trip is not None:
                    on_trip(name, exc)
                status.started()
                return
            sink.record(
                "restart",
                cid,
                {
                    "service": name,
                    "attempt": decision.attempt,
                    "delay_ms": round(decision.delay_s * 1000),  # float-ok: seconds to whole ms
                    "error": _describe(exc),
                },
            )
        await trio.sleep(decision.delay_s)
