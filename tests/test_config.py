"""Config: strict TOML reading with one-line errors naming the field; secrets never print."""

from __future__ import annotations

import pickle

import pytest

from mmbot.config import Config, ConfigError, Secret, load_config, parse_config, secret_from_env
from mmbot.model import ONE


def test_defaults_and_decimal_strings(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'seed = 3\n[risk]\nmin_edge = "0.01"\nmax_open_orders = 7\n'
        '[strategies.maker]\nsize = "12.5"\n[[markets]]\nmarket = "0xabc"\n[markets.taker]\nenabled = false\n'
    )
    config = load_config(path)
    assert config.seed == 3
    assert config.risk.min_edge == 10_000 and config.risk.max_open_orders == 7
    assert config.strategies.maker.size == 12_500_000
    assert config.strategies_for("0xabc").taker.enabled is False
    assert config.strategies_for("0xother").taker.enabled is True
    assert load_config(None) == Config()


def test_a_toml_float_is_read_exactly() -> None:
    assert parse_config({"risk": {"min_edge": 0.015}}).risk.min_edge == 15_000


@pytest.mark.parametrize(
    "data, message",
    [
        ({"risk": {"bogus": 1}}, "config field risk: unknown key(s) bogus"),
        ({"nope": 1}, "config field config: unknown key(s) nope"),
        ({"risk": {"max_open_orders": "7"}}, "config field risk.max_open_orders: expected a whole number, got '7'"),
        ({"strategies": {"maker": {"size": "ten"}}}, "config field strategies.maker.size: expected a decimal string"),
        ({"strategies": {"taker": {"enabled": "yes"}}}, "config field strategies.taker.enabled: expected true or false"),
        ({"markets": [{"market": "0x1", "maker": {"size": "0.0000001"}}]}, "config field markets[0].maker.size"),
        ({"markets": [{"maker": {}}]}, "config field markets[0]"),
    ],
)
def test_bad_values_are_one_line_naming_the_field(data, message) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_unreadable_files_are_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("risk = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_secret_never_shows_its_value() -> None:
    secret = Secret(value="0xdeadbeefsecret")
    assert repr(secret) == "'***'" and str(secret) == "'***'" and f"{secret}" == "'***'"
    assert "deadbeef" not in repr({"key": secret})
    assert secret.reveal() == "0xdeadbeefsecret"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert secret_from_env("MMBOT_KEY", {"MMBOT_KEY": "abc"}).reveal() == "abc"
    assert secret_from_env("MMBOT_KEY", {}) is None


def test_config_digest_is_stable_and_sensitive() -> None:
    assert Config().digest() == Config().digest()
    assert parse_config({"seed": 1}).digest() != Config().digest()
    assert parse_config({"risk": {"max_order_notional": "100"}}).risk.max_order_notional == 100 * ONE


def test_the_example_config_documents_the_defaults() -> None:
    from tests.conftest import ROOT

    assert load_config(ROOT / "examples" / "mmbot.toml") == Config()
