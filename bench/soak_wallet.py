"""The soak's deposit-wallet account (``soak.py --deposit-wallet``): made from nothing the way
docs/live-trading.md makes one — the relayer key, ``mmbot wallet deploy``, ``mmbot wallet
approve``, ``mmbot sim-admin fund`` — each a subprocess of the real CLI, so the soak's bot then
trades a POLY_1271 account with merges and redemptions on chain through the simulator's relayer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Mapping

# the chain's and the relayer's faults a deposit-wallet run meets (``chain_stuck`` and
# ``chain_nonce_clash`` touch an EOA's own transactions only; ``relayer_slow`` lasts until cleared)
WALLET_FAULT_VALUES = {"chain_revert": "1", "relayer_failed": "1", "relayer_lost_reply": "1", "relayer_busy": "2"}
WALLET_CONFIG = """\
[strategies.merge]
enabled = true
[capital]
sweep_interval_s = 2
retry_after_s = 2
retry_max_s = 30
poll_ms = {poll_ms}
"""  # the bot's clock is real time: the sweep and the polls at the pace of a world run --speed times faster


def _mmbot(args: list[str], env: Mapping[str, str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "mmbot.cli", *args], env=dict(env), cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"mmbot {' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def set_up_wallet(rest: str, env: dict[str, str], cwd: Path, *, funding: int, workdir: Path) -> str:
    """Deploy, approve and fund the deposit wallet of the key in ``env``; the relayer key's two
    variables are added to ``env``. Returns the wallet's address."""
    for line in _mmbot(["sim-admin", "relayer-key", "--rest", rest], env, cwd).splitlines():
        if line.startswith("MMBOT_RELAYER_"):
            name, _, value = line.partition("=")
            env[name] = value
    chain = ["--rpc", f"{rest}/rpc", "--relayer", f"{rest}/relayer"]
    _mmbot(["wallet", "deploy", *chain, "--db", str(workdir / "wallet-deploy.db")], env, cwd)
    _mmbot(["wallet", "approve", *chain, "--db", str(workdir / "wallet-approve.db")], env, cwd)
    wallet = json.loads(_mmbot(["wallet", "address", "--json", "--rpc", f"{rest}/rpc"], env, cwd))["on_chain"]["wallet"]
    _mmbot(["sim-admin", "fund", "--rest", rest, "--address", wallet, "--amount", str(funding)], env, cwd)
    return str(wallet)


def run_arguments(rest: str) -> list[str]:
    return ["--signature-type", "deposit-wallet", "--rpc", f"{rest}/rpc", "--relayer", f"{rest}/relayer"]
