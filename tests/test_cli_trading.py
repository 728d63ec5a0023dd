"""The signed-trading commands as a newcomer runs them (docs/live-trading.md), as subprocesses
against ``mmbot sim`` on loopback: ``creds derive``, ``run --mode live --dry-run``, ``run --mode
sim``, ``run --mode paper`` and ``cancel-all``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
import sqlite_utils
from tests.sim_process import simulator_process

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat's public test key


@pytest.fixture
def simulator():  # noqa: ANN201
    with simulator_process("--seed", "3", "--speed", "5") as running:
        yield running.ws, running.rest


def mmbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_derive_then_dry_run_live_then_sim_then_cancel_all(simulator, tmp_path) -> None:
    ws, rest = simulator
    derived = mmbot("creds", "derive", "--rest", rest, env={"MMBOT_PRIVATE_KEY": KEY})
    assert derived.returncode == 0, derived.stderr
    env = {"MMBOT_PRIVATE_KEY": KEY} | dict(line.split("=", 1) for line in derived.stdout.splitlines()
                                            if line.startswith("MMBOT_"))
    assert set(env) == {"MMBOT_PRIVATE_KEY", "MMBOT_API_KEY", "MMBOT_API_SECRET", "MMBOT_API_PASSPHRASE"}

    listed = [m["conditionId"] for m in httpx.get(f"{rest}/gamma/markets").json()]
    dry = mmbot("run", "--mode", "live", "--dry-run", "--ws", ws, "--rest", rest, "--duration", "6",
                "--markets", *listed[:2], "--db", str(tmp_path / "dry.db"), env=env)
    assert dry.returncode == 0, dry.stderr
    db = sqlite_utils.Database(tmp_path / "dry.db")
    kinds = {r["kind"]: r["n"] for r in db.query("select kind, count(*) n from events group by kind")}
    assert kinds.get("dry_run_order", 0) > 0 and "startup_dry_run" in kinds and "fill" not in kinds, kinds
    [run] = db["runs"].rows
    assert run["mode"] == "live-dry-run"
    start = json.loads(next(db["events"].rows_where("kind = 'run_start'"))["payload"])
    assert start["cash"] == 10_000_000_000  # the simulator's funding, read from the venue

    sim = mmbot("run", "--mode", "sim", "--ws", ws, "--rest", rest, "--duration", "6", "--db", str(tmp_path / "s.db"),
                env=env)
    assert sim.returncode == 0, sim.stderr
    kinds = {r["kind"]: r["n"] for r in sqlite_utils.Database(tmp_path / "s.db").query(
        "select kind, count(*) n from events group by kind")}
    assert kinds.get("ack", 0) > 0 and "error" not in kinds, kinds

    paper = mmbot("run", "--mode", "paper", "--ws", ws, "--rest", rest, "--duration", "4",
                  "--db", str(tmp_path / "p.db"), env={})
    assert paper.returncode == 0 and "paper run on" in paper.stdout, paper.stderr

    cancelled = mmbot("cancel-all", "--rest", rest, env=env)
    assert cancelled.returncode == 0 and cancelled.stdout.startswith("cancelled "), cancelled.stderr
    for secret in (KEY[2:], env["MMBOT_API_SECRET"], env["MMBOT_API_PASSPHRASE"]):
        for out in (dry, sim, cancelled):
            assert secret not in out.stdout + out.stderr


def test_a_wrong_api_secret_is_one_line_exit_2_and_a_log_closed_as_failed(simulator, tmp_path) -> None:
    """Defect 8: the venue's 401 at start-up printed an ExceptionGroup traceback."""
    ws, rest = simulator
    derived = mmbot("creds", "derive", "--rest", rest, env={"MMBOT_PRIVATE_KEY": KEY})
    assert derived.returncode == 0, derived.stderr
    env = {"MMBOT_PRIVATE_KEY": KEY} | dict(line.split("=", 1) for line in derived.stdout.splitlines()
                                            if line.startswith("MMBOT_"))
    env["MMBOT_API_SECRET"] = "d3JvbmcgYW5kIHNlY3JldA=="  # well-formed base64, not the account's
    config = tmp_path / "no-merges.toml"
    config.write_text("[strategies.merge]\nenabled = false\n[capital]\nredeem = false\n")  # no notice that they are off
    db = tmp_path / "s.db"
    run = mmbot("run", "--mode", "sim", "--ws", ws, "--rest", rest, "--duration", "6", "--db", str(db),
                "--config", str(config), env=env)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("mmbot run: ") and "401" in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    for secret in (KEY[2:], env["MMBOT_API_SECRET"], env["MMBOT_API_PASSPHRASE"]):
        assert secret not in run.stdout + run.stderr
    [row] = sqlite_utils.Database(db)["runs"].rows
    assert row["outcome"].startswith("failed: ") and "401" in row["outcome"]
    last = list(sqlite_utils.Database(db).query("SELECT kind FROM events ORDER BY seq DESC LIMIT 1"))
    assert last == [{"kind": "run_failed"}]
