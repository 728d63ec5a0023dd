"""Configuration: a frozen attrs tree read from TOML by a strict cattrs converter.

Prices, sizes and money are written as decimal strings ("0.02", "25") and held as integer
micro-units. An unknown key or a wrong type is one line naming the field and what was expected
(``ConfigError``; the CLI exits 2). Secrets never come from the file: only from the
environment, as ``Secret`` whose repr and str are ``'***'``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping, NewType

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

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
    """Per-market strategy settings, replacing the defaults for the market named."""

    market: str
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


# Sections added after runs were recorded: left out of the config's digest while at their
# defaults, so the digest of an earlier run's config (and of a replay's event log) stays the same.
_DIGEST_OPTIONAL = ("venue", "retention", "capital")


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

    def strategies_for(self, market: str) -> StrategiesConfig:
        for override in self.markets:
            if override.market == market:
                return StrategiesConfig(
                    taker=override.taker or self.strategies.taker,
                    maker=override.maker or self.strategies.maker,
                    merge=override.merge or self.strategies.merge,
                )
        return self.strategies

    def digest(self) -> str:
        """A stable hash of the effective config, stored in the run's row of the event log."""
        tree = _converter.unstructure(self)
        for section in _DIGEST_OPTIONAL:
            if getattr(self, section) == type(getattr(self, section))():
                del tree[section]
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
        MarketOverride, PaperConfig, LogConfig, FeedConfig, VenueConfig, RetentionConfig, CapitalConfig, Config,
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
        return _converter.structure(dict(data), Config)
    except Exception as exc:  # cattrs raises groups; report the first leaf on one line
        field, message = _first_error(exc)
        raise ConfigError(f"config field {field}: {message}") from None


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
