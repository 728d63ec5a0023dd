"""The one backoff every retry in mmbot uses, sans-IO: the supervisor's restarts, the websocket
reconnects, the gateway's requests, the trade catch-up and the listing lookups.

``Backoff`` says how long to wait before the next try; the caller sleeps (on the injected clock)
and tries. The nominal delay of try n is ``min(cap, base * 2**(n-1))`` and the actual one is drawn
from [nominal/2, nominal] with the injected seeded generator ("equal jitter"): many clients that
lost the same venue at the same instant spread out, yet none comes back sooner than half the
nominal delay or later than the cap. A venue's ``Retry-After`` is a floor, never shortened by
jitter (and may exceed the cap: the venue knows best). ``reset`` after a success starts again
from the shortest delay.
"""

from __future__ import annotations

import random

import attrs


@attrs.define
class Backoff:
    base_s: float  # float-ok: the first nominal delay
    cap_s: float  # float-ok: no drawn delay is longer (a Retry-After may be)
    rng: random.Random
    attempt: int = 0  # tries that failed since the last success

    def __attrs_post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"need 0 < base_s <= cap_s, got base_s={self.base_s} cap_s={self.cap_s}")

    def nominal_s(self, attempt: int) -> float:  # float-ok: a delay
        """The jitter-free delay before retry number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, got {attempt}")
        # past 2**64 the cap has long won; bounding the exponent keeps the power finite
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 64))  # float-ok: a delay

    def next_s(self, retry_after_s: float | None = None) -> float:  # float-ok: a delay
        """One more failure: the delay to wait before the next try."""
        self.attempt += 1
        delay = self.nominal_s(self.attempt) * self.rng.uniform(0.5, 1.0)  # float-ok: equal jitter
        delay = min(delay, self.cap_s)
        if retry_after_s is not None and retry_after_s > delay:
            delay = retry_after_s
        return delay

    def reset(self) -> None:
        self.attempt = 0
