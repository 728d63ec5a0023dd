"""``mmbot doctor`` as an operator runs it: a subprocess against ``mmbot sim`` on loopback. Every
check passes on a funded account with its credentials; each check that can be provoked fails on
its own (wrong credentials, a closed websocket port, an unfunded account, an undeployed deposit
wallet, a missing key); bad input is one line and exit code 2. No secret is ever printed."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from tests.sim_process import simulator_process

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat's public test key


@pytest.fixture(scope="module")
def sim():  # noqa: ANN201
    with simulator_process("--seed", "3") as running:
        yield running.urls


@pytest.fixture(scope="module")
def env(sim):  # noqa: ANN201
    """The key and its API credentials, as ``mmbot creds derive`` prints them."""
    return creds_env(sim["REST"])


def mmbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    return subprocess.run([sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**base, **env})


def creds_env(rest: str) -> dict[str, str]:
    derived = mmbot("creds", "derive", "--rest", rest, env={"MMBOT_PRIVATE_KEY": KEY})
    assert derived.returncode == 0, derived.stderr
    return {"MMBOT_PRIVATE_KEY": KEY} | dict(line.split("=", 1) for line in derived.stdout.splitlines()
                                             if line.startswith("MMBOT_"))


def doctor(urls: dict[str, str], *extra: str, env: dict[str, str]) -> tuple[int, dict[str, dict]]:
    run = mmbot("doctor", "--rest", urls["REST"], "--ws", urls["market channel"], "--json", *extra, env=env)
    assert run.returncode in (0, 1), run.stderr
    assert run.stderr == "", run.stderr
    for secret in (KEY[2:], *(v for k, v in env.items() if k in ("MMBOT_API_SECRET", "MMBOT_API_PASSPHRASE"))):
        assert secret not in run.stdout
    report = json.loads(run.stdout)
    assert report["ok"] is (run.returncode == 0)
    return run.returncode, {c["name"]: c for c in report["checks"]}


def statuses(checks: dict[str, dict]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items()}


EVERY_CHECK = {"signing key", "venue version", "clock skew", "api credentials", "balance", "allowances", "heartbeat",
               "market channel", "user channel"}


def test_every_check_passes_on_a_funded_account_with_its_credentials(sim, env) -> None:
    code, checks = doctor(sim, env=env)
    assert code == 0 and statuses(checks) == {name: "ok" for name in EVERY_CHECK}, checks
    assert checks["balance"]["detail"] == "10000 pUSD"
    assert checks["signing key"]["detail"].startswith("owner 0x")
    human = mmbot("doctor", "--rest", sim["REST"], "--ws", sim["market channel"], env=env)
    assert human.returncode == 0 and human.stdout.splitlines()[-1] == "every check passed", human.stdout
    assert all(line.startswith("ok    ") for line in human.stdout.splitlines()[:-1]), human.stdout


def test_credentials_left_out_are_derived_with_a_warning_and_wrong_ones_fail(sim, env) -> None:
    code, checks = doctor(sim, env={"MMBOT_PRIVATE_KEY": KEY})
    assert code == 0 and checks["api credentials"]["status"] == "warn"
    assert "mmbot creds derive" in checks["api credentials"]["fix"]
    wrong = env | {"MMBOT_API_SECRET": "d3JvbmcgYW5kIHNlY3JldA=="}  # base64, not the account's
    code, checks = doctor(sim, env=wrong)
    assert code == 1
    assert checks["api credentials"]["status"] == "fail" and "401" in checks["api credentials"]["detail"]
    assert checks["user channel"]["status"] == "fail" and "1008" in checks["user channel"]["detail"]
    assert checks["balance"]["status"] == checks["heartbeat"]["status"] == "skip"
    partial = {"MMBOT_PRIVATE_KEY": KEY, "MMBOT_API_KEY": "k"}
    code, checks = doctor(sim, env=partial)
    assert code == 1 and "MMBOT_API_SECRET" in checks["api credentials"]["detail"]


def test_a_closed_websocket_port_fails_both_channels(sim, env) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    run = mmbot("doctor", "--rest", sim["REST"], "--ws", f"ws://127.0.0.1:{port}/ws/market", "--json",
                env=env)
    assert run.returncode == 1, run.stderr
    checks = {c["name"]: c for c in json.loads(run.stdout)["checks"]}
    assert checks["market channel"]["status"] == checks["user channel"]["status"] == "fail"
    assert checks["balance"]["status"] == checks["heartbeat"]["status"] == "ok"


def test_an_unfunded_account_fails_the_balance() -> None:
    with simulator_process("--seed", "3", "--funding", "0") as running:
        code, checks = doctor(running.urls, env=creds_env(running.rest))
    assert code == 1 and checks["balance"]["status"] == "fail", checks
    assert checks["balance"]["detail"] == "the account holds no pUSD"
    assert {name for name, c in checks.items() if c["status"] == "fail"} == {"balance"}


def test_an_undeployed_deposit_wallet_fails_and_says_how_to_deploy_it(sim, env) -> None:
    code, checks = doctor(sim, "--signature-type", "deposit-wallet", "--rpc", sim["chain JSON-RPC"], env=env)
    assert code == 1 and checks["deposit wallet"]["status"] == "fail"
    assert "not deployed" in checks["deposit wallet"]["detail"] and "mmbot wallet deploy" in checks["deposit wallet"]["fix"]
    assert checks["approvals on chain"]["status"] == "skip"


def test_the_approvals_on_chain_are_read_with_rpc(sim, env) -> None:
    code, checks = doctor(sim, "--rpc", sim["chain JSON-RPC"], env=env)
    # the simulator's chain: the key's own address has not approved the exchanges
    assert checks["approvals on chain"]["status"] == "fail", checks["approvals on chain"]
    assert re.match(r"\d+ missing for 0x", checks["approvals on chain"]["detail"]), checks["approvals on chain"]
    assert "mmbot wallet approve" in checks["approvals on chain"]["fix"] and code == 1


@pytest.mark.parametrize("key", [None, "0x1234"])
def test_a_missing_or_malformed_key_fails_and_what_needs_it_is_skipped(sim, key) -> None:
    code, checks = doctor(sim, env={} if key is None else {"MMBOT_PRIVATE_KEY": key})
    assert code == 1 and checks["signing key"]["status"] == "fail"
    assert checks["venue version"]["status"] == checks["market channel"]["status"] == "ok"
    assert {checks[n]["status"] for n in ("api credentials", "balance", "heartbeat", "user channel")} == {"skip"}


@pytest.mark.parametrize("args, message", [
    (["--rest", "localhost:1", "--ws", "ws://127.0.0.1:1/ws/market"], "mmbot doctor: --rest: expected a http://"),
    (["--rest", "http://127.0.0.1:1", "--ws", "http://127.0.0.1:1"], "mmbot doctor: --ws: expected a ws://"),
    (["--rest", "http://127.0.0.1:1", "--ws", "ws://127.0.0.1:1", "--signature-type", "deposit-wallet"],
     "mmbot doctor: --signature-type deposit-wallet: expected --rpc"),
])
def test_bad_input_is_one_line_and_exit_2(args, message) -> None:
    run = mmbot("doctor", *args, env={"MMBOT_PRIVATE_KEY": KEY})
    assert run.returncode == 2 and run.stderr.startswith(message), run.stderr
    assert run.stderr.count("\n") == 1 and run.stdout == ""


def test_an_unreachable_rest_url_fails_the_venue_checks_without_a_traceback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = mmbot("doctor", "--rest", f"http://127.0.0.1:{port}", "--ws", f"ws://127.0.0.1:{port}/ws/market",
                env={"MMBOT_PRIVATE_KEY": KEY})
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    assert re.search(r"^fail  venue version +ConnectError", run.stdout, re.M), run.stdout
