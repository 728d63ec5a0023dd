"""``mmbot wallet``: the account's wallets. ``address`` derives the owner EOA's (the key in
``MMBOT_PRIVATE_KEY``) two possible deposit-wallet addresses offline and, with ``--rpc``, reads on
chain which one exists; ``deploy``, ``approve``, ``status``, ``merge`` and ``redeem`` act on chain
(``cli_wallet_chain``).

Which of the two deposit-wallet addresses is the owner's is a fact on chain (``eth_getCode``):
a new account's wallet is the beacon one (the relayer's WALLET-CREATE deploys it there). A
missing or malformed key is one line naming the variable, exit code 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mmbot import cli_wallet_chain
from mmbot.cli_errors import UsageError
from mmbot.cli_keys import PRIVATE_KEY_ENV, signing_key

async def _on_chain(rpc_url: str, found: Any) -> dict[str, Any]:
    """Which candidate has code, and which one is the owner's by the documented rule."""
    import httpx

    from mmbot.venues.polymarket.chain_view import ChainView
    from mmbot.venues.polymarket.deposit_wallet import kind_on_chain
    from mmbot.venues.polymarket.rpc import RpcClient

    async with httpx.AsyncClient(base_url=rpc_url, timeout=10) as http:
        view = ChainView(RpcClient(http, ""))
        kind = await kind_on_chain(view, found.owner)
        return {"kind": kind.value, "wallet": found.of_kind(kind),
                "beacon_deployed": bool(await view.code(found.beacon)),
                "legacy_deployed": bool(await view.code(found.legacy))}


def cmd_wallet_address(args: argparse.Namespace) -> int:
    import trio

    from mmbot.venues.polymarket.chain_types import ChainUnreachable
    from mmbot.venues.polymarket.deposit_wallet import FACTORY, addresses

    from mmbot.cli_places import HTTP, check_url

    check_url("--rpc", args.rpc, HTTP, "mmbot wallet address")
    found = addresses(signing_key("mmbot wallet address").address)
    chain = None
    if args.rpc:
        try:
            chain = trio.run(_on_chain, args.rpc, found)
        except ChainUnreachable as exc:
            raise UsageError(f"mmbot wallet address: --rpc {args.rpc}: {exc}") from None
    if args.json:
        print(json.dumps({"owner": found.owner, "deposit_wallet_beacon": found.beacon,
                          "deposit_wallet_legacy": found.legacy, "factory": FACTORY,
                          **({"on_chain": chain} if chain else {})}))
        return 0

    def deployed(flag: str) -> str:
        return "" if chain is None else ("deployed" if chain[flag] else "not deployed")

    rows = ((f"owner (EOA, {PRIVATE_KEY_ENV})", found.owner, ""),
            ("deposit wallet, beacon clone", found.beacon, deployed("beacon_deployed")
             or "every wallet made now: a new account's"),
            ("deposit wallet, legacy UUPS clone", found.legacy, deployed("legacy_deployed")
             or "wallets made before the factory upgrade"))
    for label, address, note in rows:
        print(f"{label:<34} {address}" + (f"  ({note})" if note else ""))
    if chain is None:
        print("offline: which one exists is read on chain (eth_getCode): pass --rpc URL")
    else:
        print(f"the owner's deposit wallet: {chain['wallet']} ({chain['kind']} clone)")
    return 0


def cmd_wallet(args: argparse.Namespace) -> int:
    return {"address": cmd_wallet_address, **cli_wallet_chain.COMMANDS}[args.wallet_command](args)


def _shares(text: str) -> int:
    from mmbot.model import parse_micro

    try:
        value = parse_micro(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive amount (shares or pUSD), got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    wallet = sub.add_parser("wallet", help="the account's wallets on chain: address, deploy, approve, status, merge,"
                                           " redeem")
    actions = wallet.add_subparsers(dest="wallet_command", required=True)
    address = actions.add_parser("address", help=f"the owner EOA ({PRIVATE_KEY_ENV}) and both addresses its deposit"
                                                 " wallet can have (beacon and legacy clones), derived offline")
    address.add_argument("--json", action="store_true", help="one JSON line instead of the labelled lines")
    address.add_argument("--rpc", help="a Polygon JSON-RPC URL: also say which address exists on chain")
    cli_wallet_chain.add_parsers(actions, _shares)
