"""``mmbot wallet``: the account's wallets on chain. For now ``address``: the owner EOA (the key in
``MMBOT_PRIVATE_KEY``) and both addresses its deposit wallet can have, derived offline.

Which of the two deposit-wallet addresses is the owner's is a fact on chain (``eth_getCode``), not
checked here: a new account's wallet is the beacon one (the relayer's WALLET-CREATE deploys it
there). A missing or malformed key is one line naming the variable, exit code 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mmbot.cli_errors import UsageError

PRIVATE_KEY_ENV = "MMBOT_PRIVATE_KEY"  # the same variable every command signs with (cli_live)


def _owner(who: str) -> str:
    """The owner's address, from the key in the environment (the key itself is never shown)."""
    from mmbot.config import secret_from_env
    from mmbot.venues.polymarket.auth import SigningError, SigningKey

    secret = secret_from_env(PRIVATE_KEY_ENV)
    if secret is None:
        raise UsageError(f"{who}: {PRIVATE_KEY_ENV} is not set: expected the owner key's 32 bytes of hex")
    try:
        if len(secret.reveal().removeprefix("0x")) != 64:  # SigningKey would left-pad a short one
            raise SigningError("the private key is not 32 bytes of hex")
        return SigningKey(secret).address
    except SigningError as exc:
        raise UsageError(f"{who}: {PRIVATE_KEY_ENV}: {exc}") from None


def cmd_wallet_address(args: argparse.Namespace) -> int:
    from mmbot.venues.polymarket.deposit_wallet import FACTORY, addresses

    found = addresses(_owner("mmbot wallet address"))
    if args.json:
        print(json.dumps({"owner": found.owner, "deposit_wallet_beacon": found.beacon,
                          "deposit_wallet_legacy": found.legacy, "factory": FACTORY}))
        return 0
    rows = ((f"owner (EOA, {PRIVATE_KEY_ENV})", found.owner, ""),
            ("deposit wallet, beacon clone", found.beacon, "every wallet made now: a new account's"),
            ("deposit wallet, legacy UUPS clone", found.legacy, "wallets made before the factory upgrade"))
    for label, address, note in rows:
        print(f"{label:<34} {address}" + (f"  ({note})" if note else ""))
    print("offline: which one exists is read on chain (eth_getCode), not checked here")
    return 0


def cmd_wallet(args: argparse.Namespace) -> int:
    return {"address": cmd_wallet_address}[args.wallet_command](args)


def add_parser(sub: Any) -> None:
    wallet = sub.add_parser("wallet", help="the account's wallets: the deposit wallet's address")
    actions = wallet.add_subparsers(dest="wallet_command", required=True)
    address = actions.add_parser("address", help=f"the owner EOA ({PRIVATE_KEY_ENV}) and both addresses its deposit"
                                                 " wallet can have (beacon and legacy clones), derived offline")
    address.add_argument("--json", action="store_true", help="one JSON line instead of the labelled lines")
