"""The account's wallet commands as a newcomer runs them (docs/live-trading.md), each a subprocess
against one ``mmbot sim`` on loopback started with ``--funding 0``: a new owner key finds its
deposit wallet's address, gets a relayer key, deploys the wallet, grants the approvals, is funded,
trades with merges and redemptions on, then merges and redeems by hand and follows a command's
story with ``mmbot explain``. Beside it, an EOA newcomer grants its approvals with its own
transactions, gas paid in POL. Every mistake on the way is one line on stderr, exit code 2, no
traceback and no secret.

The chain's state is checked through ``mmbot wallet status`` and, where the command under test
would only be checked by itself, through the simulator's ``/rpc`` and ``/admin/account``. The
simulator's blocks come every 2 s of real time whatever ``--speed`` (a relayer batch is confirmed
in about 8 s, an EOA's approvals are ten transactions of two confirmations each), so the EOA's
story runs in a thread beside the deposit wallet's.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import attrs
import httpx
import pytest
import sqlite_utils
import trio
import trio_websocket

from mmbot.model import ONE, format_micro
from mmbot.venues.polymarket.contracts import ALLOWANCE, CTF, CTF_OPERATORS, IS_APPROVED_FOR_ALL, PUSD, PUSD_SPENDERS
from mmbot.venues.polymarket.deposit_wallet import addresses

# Hardhat's public test keys (never funded anywhere real)
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
OWNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
EOA_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
EOA = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # never deployed
ADMIN_TOKEN = "walkthrough-admin-token-0001"
SECRETS = (KEY[2:], EOA_KEY[2:], OTHER_KEY[2:], ADMIN_TOKEN)
TX_HASH = re.compile(r"0x[0-9a-f]{64}")
CONFIG = """\
[strategies.merge]
min_sets = "5"
[capital]
redeem = false
sweep_interval_s = 1
retry_after_s = 5
retry_max_s = 20
"""  # the run merges on its own; its resolved shares are left for the hand-made redeem below


@attrs.frozen
class Sim:
    ws: str
    rest: str
    rpc: str
    relayer: str


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    proc = subprocess.Popen([sys.executable, "-m", "mmbot.cli", "sim", "--port", "0", "--ws-port", "0", "--seed", "3",
                             "--speed", "10", "--interval", "60", "--funding", "0", "--block-ms", "200"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(MMBOT_SIM_ADMIN_TOKEN=ADMIN_TOKEN))
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    for line in proc.stdout:
        if m := re.match(r"\s+(market channel|REST|chain JSON-RPC|relayer)\s+(\S+)", line):
            urls[m.group(1)] = m.group(2)
        if "Ctrl-C" in line:
            break
    try:
        yield Sim(ws=urls["market channel"], rest=urls["REST"], rpc=urls["chain JSON-RPC"], relayer=urls["relayer"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without any MMBOT_ variable of the machine's, plus ``extra``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")} | extra


def mmbot(*args: str, key: str | None = KEY, **env: str) -> subprocess.CompletedProcess[str]:
    keyed = {"MMBOT_PRIVATE_KEY": key} if key is not None else {}
    done = subprocess.run([sys.executable, "-m", "mmbot.cli", *args], capture_output=True, text=True, timeout=120,
                          env=_env(MMBOT_SIM_ADMIN_TOKEN=ADMIN_TOKEN, **keyed, **env))
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr, (args, "a secret was echoed")
    return done


def refused(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    """``done`` failed as a usage error: exit 2, one line on stderr saying each of ``expected``."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for words in expected:
        assert words in done.stderr, (words, done.stderr)
    return done.stderr


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def status_rows(stdout: str) -> dict[str, str]:
    """``mmbot wallet status``'s labelled lines as {label: value}."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines() if line.strip())


def explain_command(stdout: str) -> list[str]:
    """The ``mmbot explain DB CID`` a wallet command printed for its event log."""
    m = re.search(r"\(mmbot explain (\S+) (\S+)\)", stdout)
    assert m, stdout
    return ["explain", m.group(1), m.group(2)]


def eth_call(sim: Sim, to: str, data: bytes) -> bytes:
    answer = httpx.post(sim.rpc, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                       "params": [{"to": to, "data": "0x" + data.hex()}, "latest"]}).json()
    return bytes.fromhex(answer["result"][2:])


def account(sim: Sim, owner: str) -> dict[str, Any]:
    answer = httpx.get(f"{sim.rest}/admin/account", params={"address": owner},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def listing(sim: Sim) -> list[dict[str, Any]]:
    """Every market the simulator lists, open and resolved (closed)."""
    return [dict(m, tokens=json.loads(m["clobTokenIds"]), prices=json.loads(m["outcomePrices"]))
            for m in httpx.get(f"{sim.rest}/gamma/markets").json()]


def resolved_holding(markets: list[dict[str, Any]], held: dict[str, int]) -> list[dict[str, Any]]:
    """The resolved markets (a winner shown) of which ``held`` has shares."""
    return [m for m in markets if m["closed"] and "1" in m["prices"] and any(held.get(t) for t in m["tokens"])]


def wait_for_a_resolution_of(sim: Sim, tokens: list[str], within_s: int = 60) -> list[dict[str, Any]]:
    """The listing once a market of one of ``tokens`` has resolved: at once if one has, else after
    the market channel tells of the resolution (within ``within_s``: the simulator resolves a
    window every 6 s here)."""

    def held_resolved(markets: list[dict[str, Any]]) -> bool:
        return bool(resolved_holding(markets, dict.fromkeys(tokens, 1)))

    async def wait() -> list[dict[str, Any]]:
        async with trio_websocket.open_websocket_url(sim.ws) as ws:  # subscribed before the check: none missed
            await ws.send_message(json.dumps({"assets_ids": tokens, "type": "market", "custom_feature_enabled": True}))
            with trio.fail_after(within_s):
                while not held_resolved(markets := listing(sim)):
                    while '"market_resolved"' not in await ws.get_message():
                        pass
        return markets

    return trio.run(wait)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relayer_env(sim: Sim, key: str) -> dict[str, str]:
    """``mmbot sim-admin relayer-key``'s two environment lines, as a newcomer keeps them."""
    out = ok(mmbot("sim-admin", "relayer-key", "--rest", sim.rest, key=key))
    env = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("MMBOT_"))
    assert set(env) == {"MMBOT_RELAYER_API_KEY", "MMBOT_RELAYER_API_KEY_ADDRESS"}, out
    return env


# ---------------------------------------------------------------------- the EOA, beside


def _eoa_newcomer(sim: Sim, tmp: Path) -> None:
    """Fund an EOA with pUSD and POL, grant its approvals by its own EIP-1559 transactions."""
    chain = ("--signature-type", "eoa", "--rpc", sim.rpc)
    before = status_rows(ok(mmbot("wallet", "status", *chain, key=EOA_KEY)))
    assert before["owner (EOA)"] == EOA and "deposit wallet" not in before
    assert before["approvals"] == "10 missing: run mmbot wallet approve", before
    funded = ok(mmbot("sim-admin", "fund", "--rest", sim.rest, "--address", EOA, "--amount", "100", "--pol", "1"))
    pol = float(re.search(r"([0-9.]+) POL", funded).group(1))  # float-ok: the display's four places
    assert funded.startswith(f"{EOA}: 100 pUSD, ") and pol >= 1, funded
    refused(mmbot("wallet", "deploy", *chain, "--db", str(tmp / "deploy.db"), key=EOA_KEY), "an EOA has nothing to deploy")

    granted = ok(mmbot("wallet", "approve", *chain, "--db", str(tmp / "approve.db"), key=EOA_KEY))
    assert granted.count("granted ") == 10, granted
    after = status_rows(ok(mmbot("wallet", "status", *chain, key=EOA_KEY)))
    assert after["approvals"] == "all in place" and after["pUSD"] == "100", after
    assert 0 < pol - float(after["POL (gas, owner)"]) < 0.5, (pol, after)  # float-ok: gas spent, displayed
    for spender in PUSD_SPENDERS:
        assert int.from_bytes(eth_call(sim, PUSD, ALLOWANCE.calldata(EOA, spender))) > 10**30
    rows = sqlite_utils.Database(tmp / "approve.db")
    submitted = [json.loads(r["payload"]) for r in rows["events"].rows_where("kind = 'chain_submitted'")]
    assert len(submitted) == 10 and all(TX_HASH.fullmatch(p["tx_hash"]) for p in submitted), submitted
    assert ok(mmbot("wallet", "approve", *chain, "--db", str(tmp / "again.db"), key=EOA_KEY)).startswith(
        f"every approval is already in place for {EOA}")


@pytest.fixture(scope="module", autouse=True)
def eoa_story(sim: Sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[concurrent.futures.Future[None]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(_eoa_newcomer, sim, tmp_path_factory.mktemp("eoa"))


# ---------------------------------------------------------------------- mistakes


def test_mistakes_are_one_line_exit_2_without_a_secret(sim: Sim, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/rpc"
    refused(mmbot("wallet", "address", key=None), "mmbot wallet address: MMBOT_PRIVATE_KEY is not set")
    refused(mmbot("wallet", "status", "--rpc", sim.rpc, key="0x1234"), "MMBOT_PRIVATE_KEY", "not 32 bytes of hex")
    refused(mmbot("wallet", "address", key="0x" + "zz" * 32), "MMBOT_PRIVATE_KEY", "not 32 bytes of hex")
    refused(mmbot("wallet", "address", "--rpc", closed), f"--rpc {closed}", "unreachable")
    refused(mmbot("wallet", "status", "--rpc", closed), "mmbot wallet status: ", f"--rpc {closed}", "unreachable")
    run = ("run", "--mode", "sim", "--ws", sim.ws, "--rest", sim.rest, "--duration", "5", "--db", str(tmp_path / "r.db"))
    refused(mmbot(*run, "--signature-type", "deposit-wallet"), "expected --rpc and --relayer")
    refused(mmbot(*run, "--signature-type", "deposit-wallet", "--rpc", sim.rpc, "--relayer", sim.relayer,
                  "--funder", OWNER), "leave out --funder")
    env = relayer_env(sim, OTHER_KEY)
    acting = ("--rpc", sim.rpc, "--relayer", sim.relayer, "--rest", sim.rest)
    refused(mmbot("wallet", "merge", "--market", "0x" + "ab" * 32, *acting, "--db", str(tmp_path / "m.db"),
                  key=OTHER_KEY, **env), "mmbot wallet merge: --market 0x" + "ab" * 32, "not in the listing")
    refused(mmbot("wallet", "merge", "--market", "0x" + "ab" * 32, "--size", "0", *acting, key=OTHER_KEY, **env),
            "--size", "expected a positive amount (shares or pUSD)")
    assert not (tmp_path / "r.db").exists()  # refused before a log was opened


# ---------------------------------------------------------------------- the deposit wallet's walkthrough


def test_a_newcomer_deploys_approves_funds_trades_merges_and_redeems(sim: Sim, tmp_path: Path) -> None:
    found = addresses(OWNER)
    logs = iter(range(1, 100))

    def acting() -> tuple[str, ...]:  # each action keeps its own event log (an existing one is never overwritten)
        return ("--rpc", sim.rpc, "--relayer", sim.relayer, "--db", str(tmp_path / f"wallet-{next(logs)}.db"))

    # 1. where the wallet is: offline, then on chain (not deployed yet; a new account's is the beacon one)
    offline = ok(mmbot("wallet", "address"))
    assert OWNER in offline and found.beacon in offline and found.legacy in offline and "offline" in offline
    online = ok(mmbot("wallet", "address", "--rpc", sim.rpc))
    assert online.count("(not deployed)") == 2 and f"the owner's deposit wallet: {found.beacon} (beacon clone)" in online
    as_json = json.loads(ok(mmbot("wallet", "address", "--json", "--rpc", sim.rpc)))
    assert as_json["owner"] == OWNER and as_json["deposit_wallet_beacon"] == found.beacon
    assert as_json["on_chain"] == {"kind": "beacon", "wallet": found.beacon, "beacon_deployed": False,
                                   "legacy_deployed": False}

    # 2. deploy: first without the relayer's key, then with the lines sim-admin prints; twice
    refused(mmbot("wallet", "deploy", *acting()), "mmbot wallet deploy: ", "MMBOT_RELAYER_API_KEY")
    env = relayer_env(sim, KEY)
    assert env["MMBOT_RELAYER_API_KEY_ADDRESS"] == OWNER
    refused(mmbot("wallet", "approve", *acting(), **env), "not deployed: run mmbot wallet deploy first")
    deployed = ok(mmbot("wallet", "deploy", *acting(), **env))
    assert deployed.startswith(f"deposit wallet {found.beacon} deployed for {OWNER}"), deployed
    story = ok(mmbot(*explain_command(deployed)))
    assert "chain_submitted" in story and "STATE_CONFIRMED" in story, story
    assert ok(mmbot("wallet", "deploy", *acting(), **env)).startswith(f"deposit wallet {found.beacon} of {OWNER} is"
                                                                     " already deployed")
    assert f"{found.beacon}  (deployed)" in ok(mmbot("wallet", "address", "--rpc", sim.rpc)).splitlines()[1]

    # 3. approvals: none yet, so a run is refused at start-up; granted in one batch; again, nothing to do
    before = status_rows(ok(mmbot("wallet", "status", "--rpc", sim.rpc)))
    assert before["deposit wallet"] == f"{found.beacon} (beacon clone)" and before["deployed"] == "yes"
    assert before["batch nonce"] == "0" and before["pUSD"] == "0"
    assert before["approvals"] == "10 missing: run mmbot wallet approve", before
    config = tmp_path / "capital.toml"
    config.write_text(CONFIG)
    trade = ("run", "--mode", "sim", "--ws", sim.ws, "--rest", sim.rest, "--signature-type", "deposit-wallet",
             "--rpc", sim.rpc, "--relayer", sim.relayer, "--config", str(config))
    early = tmp_path / "early.db"
    refused(mmbot(*trade, "--duration", "5", "--db", str(early), **env), "mmbot run: ", "run mmbot wallet approve")
    [row] = sqlite_utils.Database(early)["runs"].rows
    assert row["outcome"].startswith("failed: ") and "approval" in row["outcome"], row
    granted = ok(mmbot("wallet", "approve", *acting(), **env))
    assert granted.count("granted ") == 10, granted
    after = status_rows(ok(mmbot("wallet", "status", "--rpc", sim.rpc)))
    assert after["approvals"] == "all in place" and after["batch nonce"] == "1", after
    for spender in PUSD_SPENDERS:  # read on chain, not through the command under test
        assert int.from_bytes(eth_call(sim, PUSD, ALLOWANCE.calldata(found.beacon, spender))) > 10**30
    for operator in CTF_OPERATORS:
        assert eth_call(sim, CTF, IS_APPROVED_FOR_ALL.calldata(found.beacon, operator))[-1] == 1
    assert ok(mmbot("wallet", "approve", *acting(), **env)).startswith("every approval is already in place")

    # 4. funded: 500 pUSD at the wallet
    assert ok(mmbot("sim-admin", "fund", "--rest", sim.rest, "--address", found.beacon, "--amount", "500")).startswith(
        f"{found.beacon}: 500 pUSD")
    assert status_rows(ok(mmbot("wallet", "status", "--rpc", sim.rpc)))["pUSD"] == "500"

    # 5. a run trades through the wallet, merges complete sets on chain, and ends with the venue's cash
    run_db = tmp_path / "run.db"
    ran = mmbot(*trade, "--duration", "6", "--db", str(run_db), **env)
    assert ran.returncode == 0 and "sim run on" in ran.stdout, ran.stderr
    rows = sqlite_utils.Database(run_db)

    def kinds(kind: str) -> list[dict[str, Any]]:
        return [json.loads(r["payload"]) for r in rows["events"].rows_where("kind = ?", [kind])]

    assert kinds("chain_ready") and kinds("fill"), ran.stdout
    merges = kinds("merge")
    assert merges and all(TX_HASH.fullmatch(m["tx_hash"]) and m["size"] >= 5 * ONE for m in merges), merges
    confirmed = kinds("chain_confirmed")
    assert {m["tx_hash"] for m in merges} <= {c.get("tx_hash") for c in confirmed}
    [end] = kinds("run_end")
    venue = account(sim, OWNER)
    assert end["cash"] == venue["cash"], (end["cash"], venue["cash"])
    assert status_rows(ok(mmbot("wallet", "status", "--rpc", sim.rpc)))["pUSD"] == format_micro(venue["cash"])

    # 6. by hand: redeem a resolved market held, merge the complete sets left. The run holds a
    # resolved window's shares or not, by the phase of its 6 s against the windows' (what it holds
    # may be merged away, or be the long shot, which never ends here): if not, hold sets of the
    # window that ends first and wait for its resolution on the market channel
    held = venue["positions"]
    markets = listing(sim)
    if not resolved_holding(markets, held):
        first = min((m for m in markets if not m["closed"] and m["endDate"]), key=lambda m: m["endDate"])
        ok(mmbot("wallet", "split", "--market", first["conditionId"], "--amount", "3", "--rest", sim.rest,
                 *acting(), **env))
        venue = account(sim, OWNER)
        held = venue["positions"]
        markets = wait_for_a_resolution_of(sim, first["tokens"])
    resolved = resolved_holding(markets, held)
    redeemed = False
    if resolved:
        market = resolved[0]
        winner = market["tokens"][market["prices"].index("1")]
        said = ok(mmbot("wallet", "redeem", "--market", market["conditionId"], "--rest", sim.rest, *acting(), **env))
        assert said.startswith(f"redeemed {market['conditionId']}: {format_micro(held.get(winner, 0))} pUSD"), said
        now = account(sim, OWNER)
        assert now["cash"] == venue["cash"] + held.get(winner, 0)
        assert not any(now["positions"].get(t) for t in market["tokens"]), now["positions"]
        nothing = ok(mmbot("wallet", "redeem", "--market", market["conditionId"], "--rest", sim.rest, *acting(), **env))
        assert nothing.startswith(f"nothing held in {market['conditionId']}: nothing to redeem"), nothing
        venue, redeemed = now, True
    sets = {m["conditionId"]: min(venue["positions"].get(t, 0) for t in m["tokens"]) for m in markets}
    with_sets = [c for c, n in sets.items() if n]
    if not with_sets:  # the run merged every set it had: make three by hand, from pUSD
        cid = next(m["conditionId"] for m in markets if not m["closed"])
        said = ok(mmbot("wallet", "split", "--market", cid, "--amount", "3", "--rest", sim.rest, *acting(), **env))
        assert said.startswith(f"split 3 pUSD into 3 complete sets of {cid}"), said
        now = account(sim, OWNER)
        assert now["cash"] == venue["cash"] - 3 * ONE
        venue, sets, with_sets = now, {cid: 3 * ONE}, [cid]
    if with_sets:
        cid = with_sets[0]
        said = ok(mmbot("wallet", "merge", "--market", cid, "--rest", sim.rest, *acting(), **env))
        assert said.startswith(f"merged {format_micro(sets[cid])} complete sets of {cid} into"), said
        now = account(sim, OWNER)
        assert now["cash"] == venue["cash"] + sets[cid]
        # 8. the command's story, by the explain line it printed: its batch through the relayer
        story = ok(mmbot(*explain_command(said)))
        for kind in ("wallet_command", "merge_requested", "chain_submitted", "chain_confirmed", "merge"):
            assert kind in story, (kind, story)
        assert ok(mmbot("wallet", "merge", "--market", cid, "--rest", sim.rest, *acting(), **env)).startswith(
            f"no complete sets of {cid} held: nothing to merge")
        refused(mmbot("wallet", "merge", "--market", cid, "--size", "1", "--rest", sim.rest, *acting(), **env),
                "0 complete sets held, cannot merge 1")
    assert redeemed, "the run left no resolved market's shares for the hand-made redeem"


def test_an_eoa_grants_its_approvals_with_its_own_transactions(eoa_story: concurrent.futures.Future[None]) -> None:
    eoa_story.result(timeout=120)
