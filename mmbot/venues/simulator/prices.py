"""Simulated prices: an underlying's reference price and markets' fair probabilities.

All in integer micro-units, moved once a second by the caller's seeded ``random.Random``. The
normal CDF that turns an underlying's move into an Up probability is an integer table.
"""

from __future__ import annotations

import math
import random

import attrs

from mmbot.model import ONE

SECOND = 1_000_000_000
HALF = ONE // 2

# Phi(z) in micro-units for z = 0.0, 0.1, ..., 4.0 (the standard normal CDF, precomputed).
_PHI = (
    500000, 539828, 579260, 617911, 655422, 691462, 725747, 758036, 788145, 815940, 841345,
    864334, 884930, 903200, 919243, 933193, 945201, 955435, 964070, 971283, 977250, 982136,
    986097, 989276, 991802, 993790, 995339, 996533, 997445, 998134, 998650, 999032, 999313,
    999517, 999663, 999767, 999841, 999892, 999928, 999952, 999968,
)


def normal_cdf(z_milli: int) -> int:
    """Phi(z) in micro-units, z given in thousandths, interpolated linearly in a 0.1-step table."""
    a = abs(z_milli)
    if a >= 4_000:
        value = _PHI[-1]
    else:
        i, frac = divmod(a, 100)
        value = _PHI[i] + (_PHI[i + 1] - _PHI[i]) * frac // 100
    return value if z_milli >= 0 else ONE - value


@attrs.define(eq=False)
class Underlying:
    """A simulated reference price (micro-units of USD) that moves once a second."""

    symbol: str  # as on the reference feed, e.g. "btc/usd"
    price: int
    max_step: int

    def tick_second(self, rng: random.Random) -> None:
        self.price = max(ONE, self.price + rng.randint(-self.max_step, self.max_step))

    @property
    def variance_per_second(self) -> int:
        # A uniform integer step on [-s, s] has variance s(s + 1)/3.
        return self.max_step * (self.max_step + 1) // 3


@attrs.define(eq=False)
class DriftingFair:
    """A plain market's fair probability: a random walk that slows near 0 and 1."""

    value: int
    max_step: int

    def tick_second(self, rng: random.Random) -> None:
        damping = 4 * self.value * (ONE - self.value) // ONE  # ONE at 0.5, towards 0 at the edges
        step = rng.randint(-self.max_step, self.max_step) * damping // ONE
        self.value = min(max(self.value + step, 5_000), ONE - 5_000)

    def fair(self, now_ns: int) -> int:
        return self.value


@attrs.define(eq=False)
class IntervalFair:
    """P(Up) of an interval market: will the underlying end at or above where it started?"""

    underlying: Underlying
    start_ns: int
    end_ns: int
    start_price: int | None = None
    end_price: int | None = None

    def observe(self, second_ns: int) -> None:
        if self.start_price is None and second_ns >= self.start_ns:
            self.start_price = self.underlying.price
        if self.end_price is None and second_ns >= self.end_ns:
            self.end_price = self.underlying.price

    def fair(self, now_ns: int) -> int:
        if self.start_price is None:
            return HALF
        seconds_left = max(1, (self.end_ns - now_ns) // SECOND)
        spread = max(1, math.isqrt(self.underlying.variance_per_second * seconds_left))
        return normal_cdf((self.underlying.price - self.start_price) * 1000 // spread)

    def up_won(self) -> bool:
        if self.start_price is None or self.end_price is None:
            raise RuntimeError("the window has not ended yet")
        return self.end_price >= self.start_price


FairModel = DriftingFair | IntervalFair
