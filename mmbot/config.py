"""Configuration: a frozen attrs tree read from TOML by a strict cattrs converter.

Prices, sizes and money are written as decimal strings ("0.02", "25") and held as integer
micro-units. An unknown key or a wrong type is one line naming the field and what was expected
(``ConfigError``; the CLI exits 2). Secrets never come from the file: only from the
environment, as ``Secret`` whose repr and str are ``'***'``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping, NewType

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from mmbot.config_checks import check_ranges
from mmbot.model import ONE, format_micro, parse_micro

Micro = NewType("Micro", int)  # written in TOML as a decimal string, held as micro-units


class ConfigError(ValueError):
    """A bad config value: the message names the field and what was expected, on one line."""


@attrs.frozen(repr=False)
class Secret:
    """A secret value from the environment. It never prints, logs or pickles in the clear."""

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    value = (os.environ if environ is None else environ).get(name)
    return Secret(value=value) if value else None


# --------------------------------------------------------------------------- the tree


@attrs.frozen(kw_only=True)
class RiskConfig:
    max_position_per_token: Micro = Micro(500 * ONE)  # shares
    max_position_per_market: Micro = Micro(800 * ONE)  # shares, both tokens together
    max_gross_exposure: Micro = Micro(2_000 * ONE)  # pUSD at cost, all positions and open buys
    max_open_orders: int = 40
    max_order_notional: Micro = Micro(100 * ONE)  # pUSD
    max_daily_loss: Micro = Micro(200 * ONE)  # pUSD, realised plus marked
    min_edge: Micro = Micro(5_000)  # a complete set must be at least this far below 1 after fees
    end_buffer_s: int = 30  # no new orders this close to a market's end
    on_daily_loss: str = "halt"  # at max_daily_loss: "halt" (no new buys) or "flatten" (cancel, sell back, stop)


@attrs.frozen(kw_only=True)
class TakerConfig:
    enabled: bool = True
    min_edge: Micro = Micro(10_000)  # ask_yes + ask_no + fees <= 1 - min_edge
    max_sets: Micro = Micro(50 * ONE)  # complete sets bought per opportunity


@attrs.frozen(kw_only=True)
class MakerConfig:
    enabled: bool = True
    target_edge: Micro = Micro(20_000)  # bid_yes + bid_no <= 1 - target_edge
    size: Micro = Micro(20 * ONE)  # shares per quote
    skew_per_share: Micro = Micro(200)  # price shift per share of YES-minus-NO imbalance
    max_skew: Micro = Micro(30_000)
    refresh_threshold: Micro = Micro(10_000)  # re-quote when the wanted price moves this much
    end_buffer_s: int = 60  # pull quotes this close to the market's end


@attrs.frozen(kw_only=True)
class MergeConfig:
    enabled: bool = True
    min_sets: Micro = Micro(10 * ONE)  # merge once at least this many complete sets are held


@attrs.frozen(kw_only=True)
class StrategiesConfig:
    taker: TakerConfig = TakerConfig()
    maker: MakerConfig = MakerConfig()
    merge: MergeConfig = MergeConfig()


@attrs.frozen(kw_only=True)
class MarketOverride:
    """Per-market strategy settings, replacing the defaults for the market named: ``market`` is a
    condition id ("0x" and 64 hex digits) or a slug, which may be a shell-style pattern
    ("btc-updown-5m-*": every window of a series, those listed later too)."""

    market: str

    def is_condition_id(self) -> bool:
        return len(self.market) == 66 and self.market[:2] == "0x" and all(
            c in "0123456789abcdefABCDEF" for c in self.market[2:])

    def matches(self, market: str, slug: str = "") -> bool:
        """Whether this override is for the market with condition id ``market`` and ``slug``."""
        if self.is_condition_id():
            return self.market.lower() == market.lower()
        return self.market == market or (bool(slug) and fnmatch.fnmatchcase(slug, self.market))
    taker: TakerConfig | None = None
    maker: MakerConfig | None = None
    merge: MergeConfig | None = None


@attrs.frozen(kw_only=True)
class PaperConfig:
    cash: Micro = Micro(1_000 * ONE)  # starting pUSD
    ack_latency_ms: int = 50  # venue round-trip simulated on the injected clock
    latency_jitter_ms: int = 20  # seeded uniform jitter added to each acknowledgement


@attrs.frozen(kw_only=True)
class LogConfig:
    batch_rows: int = 500
    batch_ms: int = 50
    stats_interval_s: int = 60  # bus statistics rows
    pnl_interval_s: int = 5  # PnL and inventory rows of a run on a live feed (replay keeps stats_interval_s)


@attrs.frozen(kw_only=True)
class FeedConfig:
    """The market channel client (protocol doc §2)."""

    ping_s: int = 10  # text PING this often
    silence_s: int = 30  # no frame and no PONG for this long: reconnect
    connect_timeout_s: int = 10
    backoff_initial_ms: int = 1_000  # reconnect delay, doubling up to backoff_max_s
    backoff_max_s: int = 60
    max_assets_per_connection: int = 500  # the venue stops sending snapshots past ~500


@attrs.frozen(kw_only=True)
class VenueConfig:
    """The venue session of signed trading (``--mode sim`` and ``live``; DESIGN §3, §6)."""

    submit_deadline_s: int = 20  # a post unanswered this long is an outcome unknown (a late answer still counts)
    cancel_deadline_s: int = 10  # a cancel unconfirmed this long escalates: cancel-by-market, then cancel-all
    retry_base_ms: int = 250  # the first retry's delay, doubling with jitter
    retry_cap_s: int = 10  # no retry waits longer (unless the venue's Retry-After says so)
    catch_up_interval_s: int = 5  # while the user channel is down: fetch our trades over REST this often
    unknown_after_s: int = 10  # an unanswered post not seen resting is settled from the open orders after this
    user_channel_timeout_s: int = 60  # a run whose user channel never connected in this long stops (non-zero exit)


@attrs.frozen(kw_only=True)
class RetentionConfig:
    """How long ended things stay in memory (the event log keeps them for ever)."""

    ended_after_s: int = 3_600  # ended orders (their fill ids, venue ids, trades) and resolved markets: forgotten this long after


@attrs.frozen(kw_only=True)
class CapitalConfig:
    """Merges and redemptions on chain (signed trading; the paper venue pays resolutions itself)."""

    redeem: bool = True  # redeem resolved markets' shares (winners and losers) on chain
    sweep_interval_s: int = 15  # send the redemptions due, offer held complete sets to the merge strategy
    retry_after_s: int = 30  # after a market's merge or redemption failed, wait this long, doubling...
    retry_max_s: int = 600  # ...up to this
    max_attempts: int = 10  # failed redemptions of a market before `redeem_abandoned` (retries go on)
    poll_ms: int = 2_000  # how often a relayer transaction's state, or a transaction's receipt, is asked

    def __attrs_post_init__(self) -> None:
        for name in ("sweep_interval_s", "retry_after_s", "retry_max_s", "max_attempts", "poll_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.retry_after_s > self.retry_max_s:
            raise ValueError(f"retry_after_s ({self.retry_after_s}) must not exceed retry_max_s ({self.retry_max_s})")


@attrs.frozen(kw_only=True)
class SelectConfig:
    """Which listed markets a run on a live feed trades, kept current as markets list and end
    (``--markets`` overrides it). Empty patterns match everything."""

    slugs: tuple[str, ...] = ()  # shell-style slug patterns, e.g. "btc-updown-15m-*"
    series: tuple[str, ...] = ()  # Gamma series slugs (the event's), e.g. "btc-up-or-down-15m"
    tags: tuple[str, ...] = ()  # Gamma tag slugs: a market with any of them
    min_liquidity: Micro = Micro(0)  # pUSD, where Gamma gives it
    max_spread: Micro = Micro(ONE)  # best ask minus best bid of the first outcome
    min_time_to_end_s: int = 0  # not a market ending sooner than this
    max_markets: int = 0  # 0: no cap; else the soonest-ending first
    refresh_s: int = 30  # how often the listing is read again (and at every Up/Down boundary)


@attrs.frozen(kw_only=True)
class AlertsConfig:
    """Webhook alerts (``cockpit/alerts.py``); the URL and tokens come from the environment."""

    format: str = "generic"  # generic JSON, "slack" (and Discord's Slack-compatible hook), "discord", "telegram"
    feed_down_after_s: int = 30  # a market feed or the user channel down this long is told
    min_interval_s: int = 60  # the same kind of alert at most this often
    max_per_hour: int = 30  # all alerts together


# Sections added after runs were recorded: left out of the config's digest while at their
# defaults, so the digest of an earlier run's config (and of a replay's event log) stays the same.
_DIGEST_OPTIONAL = ("venue", "retention", "capital", "select", "alerts")
# Fields added to sections that were already there, left out of the digest while at their defaults.
_DIGEST_OPTIONAL_FIELDS = (("log", "pnl_interval_s", 5), ("risk", "on_daily_loss", "halt"))


@attrs.frozen(kw_only=True)
class Config:
    seed: int = 0
    risk: RiskConfig = RiskConfig()
    strategies: StrategiesConfig = StrategiesConfig()
    markets: tuple[MarketOverride, ...] = ()
    paper: PaperConfig = PaperConfig()
    log: LogConfig = LogConfig()
    feed: FeedConfig = FeedConfig()
    venue: VenueConfig = VenueConfig()
    retention: RetentionConfig = RetentionConfig()
    capital: CapitalConfig = CapitalConfig()
    select: SelectConfig = SelectConfig()
    alerts: AlertsConfig = AlertsConfig()

    def strategies_for(self, market: str, slug: str = "") -> StrategiesConfig:
        """The strategies' settings for a market: the first override keyed by its condition id,
        else the first whose slug (or slug pattern) it has, else the defaults."""
        if not self.markets:
            return self.strategies  # no overrides: asked on every book update
        found = [o for o in self.markets if o.is_condition_id() and o.matches(market)]
        found += [o for o in self.markets if not o.is_condition_id() and o.matches(market, slug)]
        if not found:
            return self.strategies
        override = found[0]
        return StrategiesConfig(
            taker=override.taker or self.strategies.taker,
            maker=override.maker or self.strategies.maker,
            merge=override.merge or self.strategies.merge,
        )

    def digest(self) -> str:
        """A stable hash of the effective config, stored in the run's row of the event log."""
        tree = _converter.unstructure(self)
        for section in _DIGEST_OPTIONAL:
            if getattr(self, section) == type(getattr(self, section))():
                del tree[section]
        for section, field, default in _DIGEST_OPTIONAL_FIELDS:
            if tree[section][field] == default:
                del tree[section][field]
        text = json.dumps(tree, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- strict reading


def _structure_micro(value: Any, _type: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a decimal string like \"0.02\"")
    if isinstance(value, float):
        value = repr(value)  # TOML floats round-trip through repr exactly as written
    try:
        return parse_micro(value)
    except ValueError:
        raise ValueError(f"expected a decimal string like \"0.02\", got {value!r}") from None


def _strict_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _strict_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, prefer_attrib_converters=False)
    converter.register_structure_hook(Micro, _structure_micro)
    converter.register_unstructure_hook(Micro, format_micro)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(str, _strict_str)
    for cls in (
        RiskConfig, TakerConfig, MakerConfig, MergeConfig, StrategiesConfig,
        MarketOverride, PaperConfig, LogConfig, FeedConfig, VenueConfig, RetentionConfig, CapitalConfig,
        SelectConfig, AlertsConfig, Config,
    ):
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
        )
        converter.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, converter))
    return converter


_converter = _make_converter()


def _first_error(exc: BaseException, path: str = "") -> tuple[str, str]:
    """Walk a cattrs exception group down to its first leaf: (dotted field path, message)."""
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        keys = ", ".join(sorted(exc.extra_fields))
        return path or "config", f"unknown key(s) {keys}"
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            sub_notes = getattr(sub, "__notes__", [])
            step = ""
            for note in sub_notes:
                if isinstance(note, cattrs.AttributeValidationNote):
                    step = note.name
                elif isinstance(note, cattrs.IterableValidationNote):
                    step = f"[{note.index}]"
            child = f"{path}.{step}" if path and step and not step.startswith("[") else f"{path}{step}"
            return _first_error(sub, child)
    if isinstance(exc, KeyError):
        return path, f"missing required key {exc.args[0]!r}"
    return path or "config", str(exc) or type(exc).__name__


def parse_config(data: Mapping[str, Any]) -> Config:
    try:
        config = _converter.structure(dict(data), Config)
    except Exception as exc:  # cattrs raises groups; report the first leaf on one line
        field, message = _first_error(exc)
        raise ConfigError(f"config field {field}: {message}") from None
    check_ranges(config, ConfigError)  # right types, now right ranges (config_checks)
    return config


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None
    return parse_config(data)
