"""The command line: bad arguments and configs are one line and exit code 2, and so is a run that
fails at the venue or on a damaged recording (its log closed as failed); a bug is one line and
exit code 1, its traceback in a file. Decode works."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
import trio

from mmbot import app_engine, app_live, cli_run
from mmbot.cli import main
from mmbot.clock import TrioClock
from mmbot.memory.log import EventLog, run_outcome
from mmbot.ports import Fatal

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
        (["run", "--mode", "live", "--ws", "ws://x", "--rest", "http://x"], "expected --markets (condition ids or slugs) or a [select] section"),
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


def test_python_dash_m_mmbot_cli_says_a_bad_argument_in_one_line() -> None:
    # defect 7: run as a script, cli.py was imported twice (cli <-> cli_live): two UsageError
    # classes, and a traceback with exit code 1
    result = run("sim", "--markets", "0")
    assert result.returncode == 2
    assert result.stderr == "mmbot sim: --markets, --speed and --rate expect at least 1\n"


def damaged(tmp_path: Path, line_no: int, damage) -> Path:  # noqa: ANN001
    lines = gzip.open(ROOT / "recordings" / "sim-7.jsonl.gz", "rt").read().splitlines()
    lines[line_no - 1] = damage(lines[line_no - 1])
    path = tmp_path / "damaged.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "damage, error",
    [
        (lambda line: line[:40], "not JSON"),
        (lambda line: line.replace('"ch":"market"', '"ch":"nonsense"'), "unknown channel 'nonsense'"),
    ],
    ids=["truncated", "wrong-channel"],
)
def test_a_bad_line_mid_recording_is_one_line_exit_2_and_a_log_closed_as_failed(tmp_path, damage, error) -> None:
    recording, db = damaged(tmp_path, 500, damage), tmp_path / "replay.db"
    result = run("replay", str(recording), "--db", str(db), "--quiet")
    assert result.returncode == 2
    assert result.stderr.startswith(f"mmbot replay: {recording}: line 500: {error}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    rows = list(sqlite_utils.Database(db).query("SELECT kind, payload FROM events ORDER BY seq"))
    assert len(rows) > 100 and "run_end" not in {row["kind"] for row in rows}  # it ran up to the bad line
    assert rows[-1]["kind"] == "run_failed"
    reason = json.loads(rows[-1]["payload"])["reason"]
    assert reason.startswith(f"{recording}: line 500: {error}")
    assert run_outcome(db) == f"failed: {reason}"


def test_a_bug_in_a_run_is_one_line_exit_1_with_the_traceback_beside_the_log(tmp_path, capsys, monkeypatch) -> None:
    def broken(self, cid: str) -> None:  # noqa: ANN001
        raise ZeroDivisionError("a bug in the statistics")

    monkeypatch.setattr(app_engine.Engine, "record_stats", broken)
    db = tmp_path / "replay.db"
    assert main(["replay", str(ROOT / "recordings" / "sim-7.jsonl.gz"), "--db", str(db), "--quiet"]) == 1
    err = capsys.readouterr().err
    traceback_file = tmp_path / "replay.db.traceback"
    assert err == (f"mmbot replay: internal error: ZeroDivisionError: a bug in the statistics (full traceback in"
                   f" {traceback_file})\n")
    text = traceback_file.read_text()
    assert "Traceback" in text and "in broken" in text and "ZeroDivisionError: a bug in the statistics" in text
    assert run_outcome(db) == "failed: ZeroDivisionError: a bug in the statistics"


def test_a_venue_error_deep_in_a_run_is_one_line_exit_2_and_its_open_log_is_closed_as_failed(
    tmp_path, capsys, monkeypatch
) -> None:
    """A 401 escaping ``trio.run`` inside nested exception groups, from a run that opened its log
    and did not close it: the CLI tells it in one line and closes the log as failed."""

    async def markets(gamma, config):  # noqa: ANN001, ANN202
        return []

    async def run_trading(*, db_path, **_):  # noqa: ANN001, ANN202
        log = EventLog(db_path, clock=TrioClock(), wall=lambda: 1)
        log.start_run(mode="sim", seed=0, recording="ws://x", config_hash="c", code_version="v")
        async with trio.open_nursery() as outer:
            async with trio.open_nursery() as inner:
                outer.start_soon(trio.sleep_forever)
                inner.start_soon(trio.sleep_forever)
                raise Fatal("DELETE /cancel-all: 401 Unauthorized/Invalid api key")

    monkeypatch.setattr(cli_run, "_selected", markets)
    monkeypatch.setattr(app_live, "run_trading", run_trading)
    monkeypatch.setenv("MMBOT_PRIVATE_KEY", "0x" + "11" * 32)
    db, config = tmp_path / "sim.db", tmp_path / "no-merges.toml"
    config.write_text("[strategies.merge]\nenabled = false\n[capital]\nredeem = false\n")  # no notice that they are off
    args = ["run", "--mode", "sim", "--ws", "ws://x", "--rest", "http://x", "--db", str(db), "--duration", "5",
            "--config", str(config)]
    assert main(args) == 2
    assert capsys.readouterr().err == "mmbot run: DELETE /cancel-all: 401 Unauthorized/Invalid api key\n"
    assert run_outcome(db) == "failed: DELETE /cancel-all: 401 Unauthorized/Invalid api key"
