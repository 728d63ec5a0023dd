"""The cockpit of ``mmbot run`` through its public surface: the command as a subprocess against the
simulator (also a subprocess) on loopback — plain lines when stdout is not a terminal, the live
view on a terminal, the HTTP server's metrics, health and controls, pause and resume by signal, an
alert in the simulator's inbox when its feed is cut — and the bad inputs refused before a run."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlite_utils
from prometheus_client.parser import text_string_to_metric_families
from tests.sim_process import simulator_process

MMBOT = [sys.executable, "-m", "mmbot.cli"]


@pytest.fixture(scope="module")
def simulator():  # noqa: ANN201
    with simulator_process("--seed", "3", "--markets", "4") as running:
        yield running.urls


def run_args(sim: dict[str, str], db: Path, *more: str) -> list[str]:
    return [*MMBOT, "run", "--mode", "paper", "--ws", sim["market channel"], "--rest", sim["REST"], "--db", str(db),
            *more]


def rows(db: Path, kind: str) -> list[dict]:
    return [json.loads(p) for (p,) in sqlite_utils.Database(db).execute(
        "SELECT payload FROM events WHERE kind = ? ORDER BY seq", [kind]).fetchall()]


def read_until(stream, pattern: str, timeout_s: float = 20) -> tuple[re.Match, list[str]]:  # float-ok: a timeout
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if m := re.search(pattern, line):
            return m, seen
    raise AssertionError(f"no line matching {pattern!r} in {seen}")


def wait_for(http: httpx.Client, check, what: str, timeout_s: float = 30):  # noqa: ANN001, ANN201  float-ok
    """Follow the run's own live view (``/api/stream``, a state a second) until ``check(state)``
    holds: paced by the run's events, not by sleeps."""
    deadline = time.monotonic() + timeout_s
    with http.stream("GET", "api/stream", timeout=timeout_s) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: ") and (found := check(json.loads(line[6:]))):
                return found
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"timed out waiting for {what}")


def test_a_piped_run_prints_plain_lines_serves_its_cockpit_obeys_signals_and_alerts_a_cut_feed(
        simulator, tmp_path) -> None:
    rest = simulator["REST"]
    config = tmp_path / "alerts.toml"
    config.write_text("[alerts]\nfeed_down_after_s = 2\nmin_interval_s = 600\n")
    db = tmp_path / "run.db"
    env = {**os.environ, "MMBOT_ALERT_URL": f"{rest}/inbox"}
    env.pop("MMBOT_HTTP_TOKEN", None)
    proc = subprocess.Popen(run_args(simulator, db, "--http", "127.0.0.1:0", "--duration", "60", "--config",
                                     str(config)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        link, _ = read_until(proc.stdout, r"dashboard: (http://127\.0\.0\.1:\d+/)#token=(\S+)")
        url, token = link.group(1), link.group(2)
        with httpx.Client(base_url=url, timeout=10) as http:
            wait_for(http, lambda state: state["health"]["status"] == "ok", "a healthy run")
            metrics = {f.name: f for f in text_string_to_metric_families(http.get("metrics").text)}
            assert {"mmbot_frames", "mmbot_fills", "mmbot_cash_pusd", "mmbot_feed_lag_seconds", "mmbot_health",
                    "mmbot_orders", "mmbot_rejections", "mmbot_breaker_tripped"} <= set(metrics)
            assert http.get("api/state").json()["mode"] == "paper"
            assert http.post("api/pause").status_code == 401
            assert http.post("api/pause", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert http.post("api/pause", headers={"Authorization": f"Bearer {token}"}).json()["ok"]
            wait_for(http, lambda state: "paused by the operator" in state["health"]["reasons"], "paused")
            proc.send_signal(signal.SIGUSR2)
            wait_for(http, lambda state: state["health"]["status"] == "ok", "resumed by SIGUSR2")
            proc.send_signal(signal.SIGUSR1)
            wait_for(http, lambda state: state["paused"], "paused by SIGUSR1")
            proc.send_signal(signal.SIGUSR2)
            # the network between the run and the venue goes for 6 s: longer than feed_down_after_s
            admin = {"Authorization": f"Bearer {simulator['admin token']}"}
            assert httpx.post(f"{rest}/admin/fault", headers=admin, json={"kind": "outage", "value": "6"}).is_success
            wait_for(http, lambda state: state["health"]["status"] == "down", "down while every feed is")
            assert http.get("healthz").status_code == 503
            alerts = wait_for(http, lambda state: httpx.get(f"{rest}/inbox").json()["alerts"], "an alert in the inbox")
            assert alerts[0]["kind"] == "feed_down" and "market-1" in alerts[0]["text"], alerts
            wait_for(http, lambda state: state["health"]["status"] != "down", "healthy again after the outage")
            assert http.get("healthz").status_code == 200
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, before the duration's net
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "SUMMARY pnl" in out and "WARNING market feed market-1 down" in out and "paused by the operator" in out
    assert "\x1b[" not in out  # plain lines: no terminal codes in a log file
    assert [(r["action"], r["source"]) for r in rows(db, "operator_command")] == [
        ("pause", "http"), ("resume", "signal"), ("pause", "signal"), ("resume", "signal")]
    assert [r["kind"] for r in rows(db, "alert_sent")][:1] == ["feed_down"]
    assert token not in db.read_bytes().decode("latin-1")  # the token is nowhere in the log


def test_a_run_on_a_terminal_draws_the_live_view(simulator, tmp_path) -> None:
    slugs = [m["slug"] for m in httpx.get(f"{simulator['REST']}/gamma/markets").json()]
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    proc = subprocess.Popen(run_args(simulator, tmp_path / "tty.db", "--duration", "5"), stdout=follower,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "160", "LINES": "50"})
    os.close(follower)
    screen = b""
    try:
        while proc.poll() is None or select.select([leader], [], [], 0)[0]:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    screen += os.read(leader, 65536)
                except OSError:  # the terminal closed with the process
                    break
        proc.wait(timeout=30)
    finally:
        proc.kill()
        os.close(leader)
    text = screen.decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "\x1b[" in text  # drawn, redrawn in place
    assert "quoting" in text.lower() and "market-1" in text
    assert all(slug[:20] in text for slug in slugs), slugs


@pytest.mark.parametrize("more, env, says", [
    (["--http", "127.0.0.1:PORT_IN_USE"], {}, "--http 127.0.0.1:{port}: cannot listen there: the port is in use"),
    (["--http", "localhost:http"], {}, "--http localhost:http: expected HOST:PORT"),
    (["--http", "127.0.0.1:70000"], {}, "the port must be 0-65535"),
    ([], {"MMBOT_ALERT_URL": "ftp://example"}, "MMBOT_ALERT_URL"),
])
def test_what_the_cockpit_cannot_have_is_refused_in_one_line_before_the_run(tmp_path, more, env, says) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        more = [arg.replace("PORT_IN_USE", str(port)) for arg in more]
        db = tmp_path / "refused.db"
        done = subprocess.run(run_args({"market channel": "ws://127.0.0.1:9/ws/market", "REST": "http://127.0.0.1:9"},
                                       db, *more), capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and says.format(port=port) in lines[0], done.stderr
    assert not db.exists()  # nothing was started, no log made


@pytest.mark.parametrize("toml, says", [
    ('[select]\nslugs = ["no-such-market-*"]\n', "no tradeable market matches the [select] rules"),
    ('[[markets]]\nmarket = "no-such-slug"\n[markets.maker]\nenabled = false\n', "markets[0].market"),
])
def test_a_selection_or_an_override_naming_nothing_is_refused_in_one_line(simulator, tmp_path, toml, says) -> None:
    config = tmp_path / "select.toml"
    config.write_text(toml)
    db = tmp_path / "none.db"
    done = subprocess.run(run_args(simulator, db, "--config", str(config), "--duration", "5"), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr
