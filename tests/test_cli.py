"""The command line: bad arguments and configs are one line and exit code 2; decode works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmbot.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["replay"], "the following arguments are required: recording"),
        (["replay", "no-such-file.jsonl"], "recording no-such-file.jsonl: no such file"),
        (["replay", "recordings/sim-7.jsonl.gz", "--seed", "x"], "--seed expects a whole number"),
        (["frobnicate"], "invalid choice"),
        (["report", "missing.db"], "event log missing.db: no such file"),
        (["run", "--mode", "live", "--ws", "ws://x", "--rest", "http://x", "--markets", "m1"],
         "mmbot run --mode live: missing from the environment: MMBOT_PRIVATE_KEY, MMBOT_API_KEY, MMBOT_API_SECRET,"
         " MMBOT_API_PASSPHRASE"),
        (["run", "--mode", "live", "--ws", "ws://x", "--rest", "http://x"], "--markets: expected the condition ids"),
        (["run", "--mode", "paper", "--ws", "ws://x", "--rest", "http://x", "--dry-run"],
         "--dry-run: expected with --mode live or sim"),
        (["run", "--mode", "live", "--ws", "ws://x", "--rest", "http://x", "--markets", "m1", "--funder", "0x12"],
         "--funder: expected a 0x-prefixed 20-byte hex address, got '0x12'"),
        (["run", "--mode", "live", "--ws", "ws://x", "--rest", "http://x", "--markets", "m1", "--signature-type",
          "gnosis-safe"],
         "--signature-type gnosis-safe: expected --funder"),
        (["sim", "--funding", "-5"], "--funding: expected pUSD, at least 0"),
        (["run", "--mode", "sim", "--ws", "ws://x", "--rest", "http://x"], "missing from the environment: MMBOT_PRIVATE_KEY"),
        (["run", "--mode", "paper", "--ws", "ws://x"], "the following arguments are required: --rest"),
        (["sim", "--fault", "explode@3"], "--fault expects KIND@SECONDS[:VALUE]: fault kind: expected one of"),
        (["sim", "--fault", "drop@soon"], "--fault expects KIND@SECONDS[:VALUE]"),
        (["sim", "--markets", "0"], "--markets, --speed and --rate expect at least 1"),
        (["record", "--ws", "ws://x", "--rest", "http://x", "--out", "f.jsonl"], "give --markets ID... or --all"),
        (["status", "missing.db"], "missing.db: no such event log"),
        (["creds", "derive", "--rest", "http://127.0.0.1:9"], "MMBOT_PRIVATE_KEY is not set"),
        (["cancel-all", "--rest", "http://127.0.0.1:9"], "mmbot cancel-all: missing from the environment: MMBOT_PRIVATE_KEY"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, needle, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("MMBOT_PRIVATE_KEY", raising=False)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


def test_a_bad_config_is_one_line_naming_the_field(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    config = tmp_path / "bad.toml"
    config.write_text('[risk]\nmax_open_orders = "many"\n')
    assert main(["replay", "recordings/sim-7.jsonl.gz", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == "mmbot: config field risk.max_open_orders: expected a whole number, got 'many'\n"


def test_a_bad_recording_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert main(["replay", str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_decode_prints_domain_messages_from_captured_frames(fixtures_dir) -> None:
    result = run("decode", str(fixtures_dir / "ws-market" / "last_trade_price.json"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("LastTrade ") and '"price": 491000' in lines[0]
    assert lines[-1] == "frames: 1, messages: 1, malformed: 0"
