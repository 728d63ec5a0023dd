"""Config values out of range are one line naming the field (issue 13 item 8): through ``mmbot
replay --config BAD.toml`` as a subprocess, one case per class of error; every field of every
section has a rule; and (hypothesis) a valid config parses while any single field out of range
is refused, naming that field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.config import Config, ConfigError, MakerConfig, MarketOverride, MergeConfig, TakerConfig, parse_config
from mmbot.config_checks import ANY, RULES, Choice, Names, Range
from mmbot.model import ONE, format_micro

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "recordings" / "sim-7.jsonl.gz"


def replay_with(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    return subprocess.run([sys.executable, "-m", "mmbot.cli", "replay", str(RECORDING), "--quiet", "--config",
                           str(config), "--db", str(tmp_path / "r.db")], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[risk]\nmin_edge = "-0.01"', "risk.min_edge: expected from 0 to below 1, got -0.01"),
        ('[strategies.taker]\nmin_edge = "1.5"', "strategies.taker.min_edge: expected from 0 to below 1, got 1.5"),
        ('[risk]\nmax_position_per_token = "-5"', "risk.max_position_per_token: expected at least 0, got -5"),
        ("[risk]\nmax_open_orders = 0", "risk.max_open_orders: expected at least 1, got 0"),
        ('[risk]\non_daily_loss = "panic"', "risk.on_daily_loss: expected one of 'halt', 'flatten', got 'panic'"),
        ('[strategies.maker]\nsize = "0"', "strategies.maker.size: expected more than 0, got 0"),
        ('[strategies.merge]\nmin_sets = "-1"', "strategies.merge.min_sets: expected more than 0, got -1"),
        ("[log]\nstats_interval_s = 0", "log.stats_interval_s: expected at least 1, got 0"),
        ("[log]\npnl_interval_s = -5", "log.pnl_interval_s: expected at least 1, got -5"),
        ("[log]\nbatch_rows = 0", "log.batch_rows: expected at least 1, got 0"),
        ("[log]\nbatch_ms = -1", "log.batch_ms: expected at least 0, got -1"),
        ("[feed]\nconnect_timeout_s = 0", "feed.connect_timeout_s: expected at least 1, got 0"),
        ("[feed]\nping_s = 30\nsilence_s = 30", "feed.silence_s: expected more than feed.ping_s (30), got 30"),
        ("[venue]\nsubmit_deadline_s = 0", "venue.submit_deadline_s: expected at least 1, got 0"),
        ('[paper]\ncash = "-100"', "paper.cash: expected at least 0, got -100"),
        ("[paper]\nack_latency_ms = -50", "paper.ack_latency_ms: expected at least 0, got -50"),
        ("[retention]\nended_after_s = -1", "retention.ended_after_s: expected at least 0, got -1"),
        ("[capital]\npoll_ms = 0", "capital: poll_ms must be at least 1, got 0"),
        ('[select]\nmin_liquidity = "-1"', "select.min_liquidity: expected at least 0, got -1"),
        ("[select]\nrefresh_s = 0", "select.refresh_s: expected at least 1, got 0"),
        ('[select]\nslugs = ["btc-*", ""]', "select.slugs: expected non-empty names"),
        ('[alerts]\nformat = "email"', "alerts.format: expected one of 'generic', 'slack', 'discord', 'telegram',"
                                       " got 'email'"),
        ('[[markets]]\nmarket = "0xabc"\n[markets.maker]\nsize = "0"', "markets[0].maker.size: expected more than 0"),
    ],
    ids=lambda v: v.split("\n")[-1][:30] if "\n" in str(v) else None,
)
def test_an_out_of_range_value_is_one_line_naming_the_field(tmp_path, toml, message) -> None:
    done = replay_with(tmp_path, toml + "\n")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"mmbot: config field {message}"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "r.db").exists()  # refused before anything started


def test_the_default_and_the_example_configs_are_in_range() -> None:
    parse_config({})
    import tomllib

    parse_config(tomllib.loads((ROOT / "examples" / "mmbot.toml").read_text()))


# ---------------------------------------------------------------------- every field has a rule


def _leaves(cls: type, prefix: str) -> list[tuple[str, str, str]]:
    """(dotted path, class name, field) of every field of a section tree, from the classes."""
    found = []
    default = cls()
    for field in attrs.fields(cls):
        value = getattr(default, field.name)
        if attrs.has(type(value)):
            found += _leaves(type(value), f"{prefix}{field.name}.")
        elif field.name != "markets" and not isinstance(value, bool):
            found.append((f"{prefix}{field.name}", cls.__name__, field.name))
    return found


LEAVES = _leaves(Config, "")


def test_every_field_of_every_section_has_a_rule() -> None:
    sections = {path.split(".")[0] for path, _, _ in LEAVES}
    assert {"risk", "strategies", "paper", "log", "feed", "venue", "retention", "capital", "select", "alerts"} <= sections
    missing = [path for path, cls, name in LEAVES if (cls, name) not in RULES]
    override = [("MarketOverride", f.name) for f in attrs.fields(MarketOverride) if f.name == "market"]
    missing += [f"{c}.{n}" for c, n in override if (c, n) not in RULES]
    for cls in (TakerConfig, MakerConfig, MergeConfig):  # the sections a market override may replace
        missing += [f"{cls.__name__}.{f.name}" for f in attrs.fields(cls)
                    if not isinstance(getattr(cls(), f.name), bool) and (cls.__name__, f.name) not in RULES]
    assert missing == [], f"fields without a range rule in mmbot/config_checks.py: {missing}"


# ---------------------------------------------------------------------- hypothesis: valid parses, one bad is named


def _toml(rule: Any, value: Any) -> Any:
    if isinstance(rule, Range) and rule.micro:
        return format_micro(value)
    if isinstance(rule, Names):
        return list(value)
    return value


def _good(rule: Any) -> st.SearchStrategy[Any]:
    if isinstance(rule, Choice):
        return st.sampled_from(rule.options)
    if isinstance(rule, Names):
        return st.lists(st.from_regex(r"[a-z0-9*-]{1,12}", fullmatch=True), max_size=3).map(tuple)
    if rule is ANY:
        return st.integers(-(2**40), 2**40)
    hi = rule.hi if rule.hi is not None else rule.lo + (10**6 * ONE if rule.micro else 10**6)
    return st.integers(rule.lo, hi - 1 if rule.below else hi)


def _bad(rule: Any) -> st.SearchStrategy[Any]:
    if isinstance(rule, Choice):
        return st.text(min_size=0, max_size=8).filter(lambda t: t not in rule.options)
    if isinstance(rule, Names):
        return st.sampled_from([("",), ("ok", " ")])
    below = st.integers(rule.lo - 10**9, rule.lo - 1)
    if rule.hi is None:
        return below
    return below | st.integers(rule.hi if rule.below else rule.hi + 1, rule.hi + 10**9)


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *sections, name = path.split(".")
    for section in sections:
        tree = tree.setdefault(section, {})
    tree[name] = value


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    values = {path: draw(_good(RULES[(cls, name)])) for path, cls, name in LEAVES}
    # the rules between fields: a quiet connection outlives a ping; first waits within their caps
    values["feed.silence_s"] = values["feed.ping_s"] + values["feed.silence_s"]
    values["feed.backoff_initial_ms"] = min(values["feed.backoff_initial_ms"], values["feed.backoff_max_s"] * 1000)
    values["venue.retry_base_ms"] = min(values["venue.retry_base_ms"], values["venue.retry_cap_s"] * 1000)
    values["capital.retry_after_s"] = min(values["capital.retry_after_s"], values["capital.retry_max_s"])
    tree: dict[str, Any] = {}
    for path, cls, name in LEAVES:
        _set(tree, path, _toml(RULES[(cls, name)], values[path]))
    return tree


RANGED = [(path, cls, name) for path, cls, name in LEAVES if RULES[(cls, name)] is not ANY]


@settings(max_examples=150, deadline=None)
@given(valid_configs())
def test_a_valid_config_parses(tree) -> None:
    config = parse_config(tree)
    assert config.log.batch_rows == tree["log"]["batch_rows"]


@settings(max_examples=300, deadline=None)
@given(valid_configs(), st.sampled_from(RANGED), st.data())
def test_any_single_field_out_of_range_is_refused_naming_it(tree, leaf, data) -> None:
    path, cls, name = leaf
    rule = RULES[(cls, name)]
    _set(tree, path, _toml(rule, data.draw(_bad(rule))))
    with pytest.raises(ConfigError) as refused:
        parse_config(tree)
    message = str(refused.value)
    section = path.rsplit(".", 1)[0]
    assert message.startswith("config field ") and "\n" not in message
    assert f"{path}:" in message or (section in message and name in message), message  # [capital] says it its way
