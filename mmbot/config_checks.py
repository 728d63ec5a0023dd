"""Range checks of a parsed config: a value of the right type but out of range (a negative edge or
size, ``max_open_orders`` 0, ``stats_interval_s`` 0, an unknown ``on_daily_loss`` …) is one line
naming the field, what was expected and what was given, before anything starts.

The rules are a table keyed by (section class, field), so the same rule holds wherever the class
appears (``[strategies.maker]`` and a market override's ``maker``); the tree is walked with attrs,
so this module imports nothing of ``mmbot.config`` (which calls it) and takes the error class to
raise. ``tests/test_safety_rails.py`` checks that every field of the tree has a rule here.
"""

from __future__ import annotations

from typing import Any, Iterator

import attrs

from mmbot.model import ONE, format_micro

__all__ = ["RULES", "Choice", "Range", "check_ranges", "problems"]


@attrs.frozen
class Range:
    """lo <= value (<= hi, or < hi when ``below``), for whole numbers; ``micro`` values are told as decimals."""

    lo: int
    hi: int | None = None
    below: bool = False  # hi is excluded
    micro: bool = False

    def problem(self, value: int) -> str | None:
        show = format_micro if self.micro else str
        if value < self.lo or (self.hi is not None and (value >= self.hi if self.below else value > self.hi)):
            if self.hi is None:
                want = "more than 0" if self.micro and self.lo == 1 else f"at least {show(self.lo)}"
            else:
                want = f"from {show(self.lo)} to {'below ' if self.below else ''}{show(self.hi)}"
            return f"expected {want}, got {show(value)}"
        return None


@attrs.frozen
class Choice:
    options: tuple[str, ...]

    def problem(self, value: str) -> str | None:
        if value not in self.options:
            return f"expected one of {', '.join(repr(o) for o in self.options)}, got {value!r}"
        return None


@attrs.frozen
class Names:
    """A tuple of non-empty strings (slug patterns, series, tags)."""

    def problem(self, value: tuple[str, ...]) -> str | None:
        if any(not item.strip() for item in value):
            return "expected non-empty names, got an empty one"
        return None


ANY = Range(lo=-(2**63), hi=2**63 - 1)
NONNEG = Range(0)
POSITIVE = Range(1)
MONEY = Range(0, micro=True)  # pUSD or shares, may be 0
SIZE = Range(1, micro=True)  # a size that must be positive (0 would never trade)
EDGE = Range(0, ONE, below=True, micro=True)  # a price distance: 0 <= edge < 1
PRICE_STEP = Range(0, ONE, micro=True)

# (class name, field) -> rule. Booleans need none (the converter takes only true/false).
RULES: dict[tuple[str, str], Any] = {
    ("Config", "seed"): ANY,
    ("RiskConfig", "max_position_per_token"): MONEY,
    ("RiskConfig", "max_position_per_market"): MONEY,
    ("RiskConfig", "max_gross_exposure"): MONEY,
    ("RiskConfig", "max_open_orders"): POSITIVE,
    ("RiskConfig", "max_order_notional"): MONEY,
    ("RiskConfig", "max_daily_loss"): MONEY,
    ("RiskConfig", "min_edge"): EDGE,
    ("RiskConfig", "end_buffer_s"): NONNEG,
    ("RiskConfig", "on_daily_loss"): Choice(("halt", "flatten")),
    ("TakerConfig", "min_edge"): EDGE,
    ("TakerConfig", "max_sets"): SIZE,
    ("MakerConfig", "target_edge"): EDGE,
    ("MakerConfig", "size"): SIZE,
    ("MakerConfig", "skew_per_share"): PRICE_STEP,
    ("MakerConfig", "max_skew"): EDGE,
    ("MakerConfig", "refresh_threshold"): EDGE,
    ("MakerConfig", "end_buffer_s"): NONNEG,
    ("MergeConfig", "min_sets"): SIZE,
    ("PaperConfig", "cash"): MONEY,
    ("PaperConfig", "ack_latency_ms"): NONNEG,
    ("PaperConfig", "latency_jitter_ms"): NONNEG,
    ("LogConfig", "batch_rows"): POSITIVE,
    ("LogConfig", "batch_ms"): NONNEG,
    ("LogConfig", "stats_interval_s"): POSITIVE,
    ("LogConfig", "pnl_interval_s"): POSITIVE,
    ("FeedConfig", "ping_s"): POSITIVE,
    ("FeedConfig", "silence_s"): POSITIVE,
    ("FeedConfig", "connect_timeout_s"): POSITIVE,
    ("FeedConfig", "backoff_initial_ms"): POSITIVE,
    ("FeedConfig", "backoff_max_s"): POSITIVE,
    ("FeedConfig", "max_assets_per_connection"): POSITIVE,
    ("VenueConfig", "submit_deadline_s"): POSITIVE,
    ("VenueConfig", "cancel_deadline_s"): POSITIVE,
    ("VenueConfig", "retry_base_ms"): POSITIVE,
    ("VenueConfig", "retry_cap_s"): POSITIVE,
    ("VenueConfig", "catch_up_interval_s"): POSITIVE,
    ("VenueConfig", "unknown_after_s"): POSITIVE,
    ("VenueConfig", "user_channel_timeout_s"): POSITIVE,
    ("RetentionConfig", "ended_after_s"): NONNEG,
    ("CapitalConfig", "sweep_interval_s"): POSITIVE,
    ("CapitalConfig", "retry_after_s"): POSITIVE,
    ("CapitalConfig", "retry_max_s"): POSITIVE,
    ("CapitalConfig", "max_attempts"): POSITIVE,
    ("CapitalConfig", "poll_ms"): POSITIVE,
    ("SelectConfig", "slugs"): Names(),
    ("SelectConfig", "series"): Names(),
    ("SelectConfig", "tags"): Names(),
    ("SelectConfig", "min_liquidity"): MONEY,
    ("SelectConfig", "max_spread"): PRICE_STEP,
    ("SelectConfig", "min_time_to_end_s"): NONNEG,
    ("SelectConfig", "max_markets"): NONNEG,
    ("SelectConfig", "refresh_s"): POSITIVE,
    ("AlertsConfig", "format"): Choice(("generic", "slack", "discord", "telegram")),
    ("AlertsConfig", "feed_down_after_s"): POSITIVE,
    ("AlertsConfig", "min_interval_s"): NONNEG,
    ("AlertsConfig", "max_per_hour"): POSITIVE,
    ("MarketOverride", "market"): Names(),
}


def _leaves(node: Any, path: str) -> Iterator[tuple[str, str, str, Any]]:
    """(dotted path, class name, field, value) of every field that is not a section."""
    for field in attrs.fields(type(node)):
        value = getattr(node, field.name)
        where = f"{path}.{field.name}" if path else field.name
        if attrs.has(type(value)):
            yield from _leaves(value, where)
        elif isinstance(value, tuple) and value and all(attrs.has(type(v)) for v in value):
            for i, item in enumerate(value):
                yield from _leaves(item, f"{where}[{i}]")
        elif value is not None:
            yield where, type(node).__name__, field.name, value


def _cross(config: Any) -> Iterator[tuple[str, str]]:
    """Rules between fields of a section."""
    feed = getattr(config, "feed", None)
    if feed is not None:
        if feed.silence_s <= feed.ping_s:
            yield "feed.silence_s", (f"expected more than feed.ping_s ({feed.ping_s}), got {feed.silence_s}"
                                     " (a quiet connection would be dropped between two pings)")
        if feed.backoff_initial_ms > feed.backoff_max_s * 1_000:
            yield "feed.backoff_initial_ms", (f"expected at most feed.backoff_max_s in ms"
                                              f" ({feed.backoff_max_s * 1_000}), got {feed.backoff_initial_ms}")
    venue = getattr(config, "venue", None)
    if venue is not None and venue.retry_base_ms > venue.retry_cap_s * 1_000:
        yield "venue.retry_base_ms", (f"expected at most venue.retry_cap_s in ms ({venue.retry_cap_s * 1_000}),"
                                      f" got {venue.retry_base_ms}")


def problems(config: Any) -> Iterator[tuple[str, str]]:
    """(dotted field, what is wrong) for every out-of-range value, in the tree's order."""
    for where, cls, name, value in _leaves(config, ""):
        rule = RULES.get((cls, name))
        if rule is None or isinstance(value, bool):
            continue
        problem = rule.problem(value)
        if problem is not None:
            yield where, problem
    yield from _cross(config)


def check_ranges(config: Any, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` ("config field risk.min_edge: expected …, got …") at the first value out of range."""
    for where, problem in problems(config):
        raise error(f"config field {where}: {problem}")
