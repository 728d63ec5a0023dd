"""Safety rails on input (issue 13 item 8) and the CLI's basics (item 9), each through the command
as a subprocess: an event log is never overwritten (timestamped default names, an existing --db
refused, a directory refused, a missing directory made); a directory as --out; a bad URL; a port
in use; a malformed MMBOT_PRIVATE_KEY (never echoed); --version, bare mmbot, --help with defaults.
Every refusal is one line on stderr and exit code 2, and leaves what was there untouched."""

from __future__ import annotations

import calendar
import hashlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mmbot.cli_places import default_db, event_log_path, timestamp, url_problem
from mmbot.cli_errors import UsageError
from tests.sim_process import simulator_process

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "recordings" / "sim-7.jsonl.gz"
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat's public test key
STAMPED = r"(\d{8}-\d{6})(-\d+)?\.db"


def mmbot(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    return subprocess.run([sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd or ROOT, env={**clean, "PYTHONPATH": str(ROOT), **env})


def refused(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)
    return done.stderr


def digest_line(out: str) -> str:
    return re.search(r"^digest: ([0-9a-f]{64})$", out, re.MULTILINE).group(1)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- event logs are never overwritten


def test_the_readme_replay_twice_in_a_row_writes_two_timestamped_logs(tmp_path) -> None:
    first = mmbot("replay", str(RECORDING), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [log] = (tmp_path / "out").iterdir()
    assert re.fullmatch(f"sim-7-{STAMPED}", log.name), log.name
    assert f"event log: out/{log.name}" in first.stdout
    before = sha(log)
    second = mmbot("replay", str(RECORDING), "--quiet", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    logs = sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".db")
    assert len(logs) == 2 and all(re.fullmatch(f"sim-7-{STAMPED}", name) for name in logs), logs
    assert sha(log) == before  # the first run's log is untouched
    assert digest_line(first.stdout) == digest_line(second.stdout)


def test_an_existing_db_is_refused_and_left_as_it_was(tmp_path) -> None:
    db = tmp_path / "kept.db"
    db.write_bytes(b"an earlier run's log")
    refused(mmbot("replay", str(RECORDING), "--quiet", "--db", str(db)),
            f"mmbot replay: --db {db}: exists; choose another --db or delete it")
    assert db.read_bytes() == b"an earlier run's log"
    run = ("run", "--mode", "paper", "--ws", "ws://127.0.0.1:9/ws/market", "--rest", "http://127.0.0.1:9")
    refused(mmbot(*run, "--db", str(db)), f"mmbot run: --db {db}: exists; choose another --db or delete it")
    assert db.read_bytes() == b"an earlier run's log"
    # a write-ahead log left beside a missing database still holds a run's rows: it counts as taken
    orphan = tmp_path / "orphan.db"
    (tmp_path / "orphan.db-wal").write_bytes(b"pages")
    refused(mmbot("replay", str(RECORDING), "--quiet", "--db", str(orphan)), f"--db {orphan}-wal: exists")


def test_a_directory_as_db_is_refused_and_a_missing_directory_is_made(tmp_path) -> None:
    refused(mmbot("replay", str(RECORDING), "--quiet", "--db", str(tmp_path)), f"--db {tmp_path}: is a directory")
    refused(mmbot("run", "--mode", "paper", "--ws", "ws://127.0.0.1:9", "--rest", "http://127.0.0.1:9", "--db",
                  str(tmp_path)), "mmbot run: --db", "is a directory")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    refused(mmbot("replay", str(RECORDING), "--quiet", "--db", str(blocker / "a.db")), "cannot make its directory")
    deep = tmp_path / "new" / "dirs" / "r.db"
    done = mmbot("replay", str(RECORDING), "--quiet", "--db", str(deep))
    assert done.returncode == 0 and deep.is_file(), done.stderr


def test_a_taken_default_name_gets_the_next_suffix(tmp_path) -> None:
    noon = calendar.timegm((2026, 8, 13, 4, 14, 0)) * 1_000_000_000 + 999_999_999  # UTC, not local time
    assert timestamp(noon) == "20260813-041400"
    first = default_db("paper", wall=lambda: noon, directory=tmp_path)
    assert first == tmp_path / "paper-20260813-041400.db"
    first.write_text("")
    second = default_db("paper", wall=lambda: noon, directory=tmp_path)
    assert second.name == "paper-20260813-041400-2.db"
    (tmp_path / "paper-20260813-041400-2.db-wal").write_text("")  # a WAL alone takes the name too
    assert default_db("paper", wall=lambda: noon, directory=tmp_path).name == "paper-20260813-041400-3.db"
    with pytest.raises(UsageError, match="exists; choose another --db"):
        event_log_path(str(first), "paper")


# ---------------------------------------------------------------------- files to write


def test_a_directory_as_out_is_refused(tmp_path) -> None:
    refused(mmbot("generate", "--out", str(tmp_path), "--duration", "10", "--markets", "1"),
            f"mmbot generate: --out {tmp_path}: is a directory")
    refused(mmbot("generate", "--out", f"{tmp_path}/", "--duration", "10", "--markets", "1"), "is a directory")
    refused(mmbot("record", "--ws", "ws://127.0.0.1:9", "--rest", "http://127.0.0.1:9", "--all", "--out",
                  str(tmp_path)), f"mmbot record: --out {tmp_path}: is a directory")
    kept = tmp_path / "live.jsonl.gz"
    kept.write_bytes(b"irreplaceable")
    refused(mmbot("record", "--ws", "ws://127.0.0.1:9", "--rest", "http://127.0.0.1:9", "--all", "--out", str(kept)),
            "exists; choose another --out or delete it")
    assert kept.read_bytes() == b"irreplaceable"
    made = tmp_path / "new" / "g.jsonl"
    done = mmbot("generate", "--out", str(made), "--duration", "10", "--markets", "1")
    assert done.returncode == 0 and made.is_file(), done.stderr


# ---------------------------------------------------------------------- URLs


RUN = ("run", "--mode", "paper", "--ws", "ws://127.0.0.1:9/ws/market", "--rest", "http://127.0.0.1:9")


def _with(args: tuple[str, ...], flag: str, value: str) -> list[str]:
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


@pytest.mark.parametrize(
    "flag, value, needle",
    [
        ("--ws", "http://127.0.0.1:9/ws/market", "expected a ws:// or wss://host URL, got 'http://127.0.0.1:9/ws/market'"),
        ("--ws", "ws://", "with a host"),
        ("--ws", "localhost:8081", "expected a ws:// or wss://host URL"),
        ("--user-ws", "wss:// space", "expected a ws:// or wss://host URL"),
        ("--rest", "ftp://127.0.0.1", "expected a http:// or https://host URL, got 'ftp://127.0.0.1'"),
        ("--rest", "http://127.0.0.1:99999", "expected a http:// or https://host URL"),
        ("--gamma", "gamma-api.polymarket.com", "expected a http:// or https://host URL"),
        ("--rpc", "ws://127.0.0.1:8545", "expected a http:// or https://host URL"),
        ("--relayer", "http://:8080", "with a host"),
    ],
)
def test_a_bad_url_is_one_line_before_anything_starts(tmp_path, flag, value, needle) -> None:
    db = tmp_path / "r.db"
    refused(mmbot(*_with(RUN, flag, value), "--db", str(db)), f"mmbot run: {flag}: expected a ", needle)
    assert not db.exists()


def test_record_and_sim_admin_check_their_urls_too(tmp_path) -> None:
    refused(mmbot("record", "--ws", "127.0.0.1:8081", "--rest", "http://127.0.0.1:9", "--all", "--out",
                  str(tmp_path / "r.jsonl")), "mmbot record: --ws: expected a ws:// or wss://host URL")
    refused(mmbot("record", "--ws", "ws://127.0.0.1:9", "--rest", "127.0.0.1:9", "--all", "--out",
                  str(tmp_path / "r.jsonl")), "mmbot record: --rest: expected a http:// or https://host URL")
    refused(mmbot("sim-admin", "fund", "--rest", "localhost", "--address", "0x" + "11" * 20, "--amount", "5",
                  MMBOT_SIM_ADMIN_TOKEN="t" * 20), "mmbot sim-admin fund: --rest: expected a http:// or https://")


def test_good_urls_pass() -> None:
    for value in ("ws://127.0.0.1:8081/ws/market", "wss://ws-subscriptions-clob.polymarket.com/ws/market", "ws://[::1]:80"):
        assert url_problem(value, ("ws", "wss")) is None
    for value in ("http://127.0.0.1:8080", "https://clob.polymarket.com/", "HTTPS://gamma-api.polymarket.com"):
        assert url_problem(value, ("http", "https")) is None


# ---------------------------------------------------------------------- a port in use


def test_a_port_in_use_for_the_simulator_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(mmbot("sim", "--port", str(port), "--ws-port", "0"), f"mmbot sim: --port: port {port} is in use")
        refused(mmbot("sim", "--port", "0", "--ws-port", str(port)), f"mmbot sim: --ws-port: port {port} is in use")


def test_paper_runs_on_the_simulator_twice_write_two_logs(tmp_path) -> None:
    """The default event log of `mmbot run` is new for every run; and a second simulator on the
    first one's port is refused in one line."""
    with simulator_process("--seed", "3", "--speed", "5") as running:
        ws, rest = running.ws, running.rest
        port = rest.rsplit(":", 1)[1].strip("/")
        refused(mmbot("sim", "--port", port, "--ws-port", "0"), f"port {port} is in use")
        for _ in range(2):
            done = mmbot("run", "--mode", "paper", "--ws", ws, "--rest", rest, "--duration", "2", cwd=tmp_path)
            assert done.returncode == 0, done.stderr
        logs = sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".db")
        assert len(logs) == 2 and all(re.fullmatch(f"paper-{STAMPED}", name) for name in logs), logs


# ---------------------------------------------------------------------- the signing key


@pytest.mark.parametrize(
    "value",
    [
        "0x1234",  # short
        KEY + "00",  # long
        KEY[2:-1],  # 63 digits
        "0x" + "zz" * 32,  # not hex
        "0x" + " ".join([KEY[2:][i:i + 2] for i in range(0, 64, 2)]),  # bytes.fromhex would take it
        " " + KEY,  # a stray space
        "0X" + KEY[2:],
        "0x" + "00" * 32,  # zero: no key
        "0x" + "ff" * 32,  # beyond the curve order
    ],
    ids=["short", "long", "63-digits", "not-hex", "spaced", "leading-space", "0X", "zero", "past-order"],
)
def test_a_malformed_private_key_is_one_line_naming_the_variable_never_the_value(value) -> None:
    for args in (("wallet", "address"), ("creds", "derive", "--rest", "http://127.0.0.1:9")):
        err = refused(mmbot(*args, MMBOT_PRIVATE_KEY=value), "MMBOT_PRIVATE_KEY: the private key is not 32 bytes of hex")
        assert value.strip() not in err and value[2:12] not in err


def test_a_good_key_with_or_without_0x_is_taken() -> None:
    for value in (KEY, KEY[2:], KEY.upper().replace("0X", "0x")):
        done = mmbot("wallet", "address", MMBOT_PRIVATE_KEY=value)
        assert done.returncode == 0 and "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in done.stdout, done.stderr


# ---------------------------------------------------------------------- --version, bare mmbot, --help


def test_version_and_bare_mmbot() -> None:
    from mmbot import __version__

    version = mmbot("--version")
    assert version.returncode == 0 and version.stdout == f"mmbot {__version__}\n"
    bare = mmbot()
    assert bare.returncode == 2 and bare.stderr.startswith("usage: mmbot")
    assert "replay" in bare.stderr and "required" not in bare.stderr


def _commands() -> list[tuple[str, ...]]:
    import argparse

    from mmbot.cli import _parser

    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found.append((*path, name))
                    walk(child, (*path, name))

    walk(_parser(), ())
    return found


def test_every_subcommand_help_shows_its_defaults() -> None:
    commands = _commands()
    assert {("replay",), ("run",), ("sim",), ("generate",), ("record",), ("sim-admin", "fund")} <= set(commands)
    # one interpreter for all of them (each a subprocess would cost a second apiece)
    script = ("import sys\nfrom mmbot.cli import main\nfor args in " + repr(commands) + ":\n"
              "    print('=== ' + ' '.join(args))\n"
              "    try:\n        main([*args, '--help'])\n    except SystemExit as e:\n"
              "        assert e.code == 0, (args, e.code)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    helps = dict(re.findall(r"^=== (.*)\n((?:(?!=== ).*\n)*)", done.stdout, re.MULTILINE))
    assert set(helps) == {" ".join(c) for c in commands}
    assert "(default: 8080)" in helps["sim"] and "(default: 0)" in helps["sim"]  # --seed had no help text
    assert "(default: 7)" in helps["generate"] and "(default: 720)" in helps["generate"]
    assert "(default: eoa)" in helps["run"] and "out/<mode>-YYYYMMDD-HHMMSS.db" in helps["run"]
    assert "(default: None)" not in done.stdout and "(default: False)" not in done.stdout
    assert "default: the config's) (default" not in done.stdout  # a help text that says it is left alone


def test_check_event_log_refuses_what_is_not_an_sqlite_file(tmp_path) -> None:
    """For the reading commands (status, report, explain): the helper they are given."""
    from mmbot.cli_places import check_event_log

    text = tmp_path / "notes.db"
    text.write_text("hello")
    for value, needle in ((str(text), "not an SQLite database"), (str(tmp_path), "is a directory"),
                          (str(tmp_path / "none.db"), "no such event log")):
        with pytest.raises(UsageError, match=needle):
            check_event_log(value, "mmbot status")
    done = mmbot("replay", str(RECORDING), "--quiet", "--db", str(tmp_path / "real.db"))
    assert done.returncode == 0, done.stderr
    assert check_event_log(str(tmp_path / "real.db")) == tmp_path / "real.db"
