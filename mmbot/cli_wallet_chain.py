"""``mmbot wallet deploy | approve | status | split | merge | redeem``: the account on chain, by hand.

Each reads the chain over ``--rpc`` and acts through the account's adapter (``app_chain``): a
deposit wallet's relayer batches, or an EOA's own transactions. Nothing is granted or moved
without the command being given; every action is written to an event log (``--db``) under one
correlation id, which ``mmbot explain DB ID`` follows. A failed or refused action is one line and
exit code 2; the event log keeps the whole story.
"""

from __future__ import annotations

import argparse
from typing import Any, Awaitable, Callable

from mmbot.cli_errors import UsageError
from mmbot.cli_keys import signing_key
from mmbot.venues.polymarket.auth import POLY_1271

PUSD_PLACES = 6


def _money(micro: int) -> str:
    from mmbot.model import format_micro

    return format_micro(micro)


def _run(args: argparse.Namespace, who: str, action: Callable[[Any, Any, str], Awaitable[int]], *,
         acts: bool) -> int:
    """Open the event log (when the command acts) and chain access, then run ``action(access,
    log, cid)``; chain and set-up errors become one line."""
    import trio

    from mmbot import __version__
    from mmbot.app_chain import WALLET_TYPES, ChainSetupError, open_chain
    from mmbot.clock import TrioClock, wall_ns
    from mmbot.memory.log import EventLog
    from mmbot.venues.polymarket.chain_types import ChainUnreachable
    from mmbot.venues.polymarket.rpc import RpcError

    from mmbot.cli_places import HTTP, check_url

    for flag in ("rpc", "relayer", "rest", "gamma"):
        check_url(f"--{flag}", getattr(args, flag, None), HTTP, who)
    key = signing_key(who)
    signature_type = WALLET_TYPES[args.signature_type]
    db = None
    if acts:
        from mmbot.cli_places import event_log_path

        db = event_log_path(args.db, f"wallet-{args.wallet_command}", who)  # never an earlier action's log
        args.event_log = db

    async def main() -> int:
        clock = TrioClock()
        log: Any = None
        if db is not None:
            log = EventLog(db, clock=clock, wall=wall_ns)
            log.start_run(mode=f"wallet-{args.wallet_command}", seed=0, recording="", config_hash="",
                          code_version=__version__)
        sink = log if log is not None else _NoLog()
        cid = f"w-{args.wallet_command}-{clock.now_ns() // 1_000_000}"
        try:
            async with open_chain(rpc_url=args.rpc, relayer_url=getattr(args, "relayer", None), key=key,
                                  signature_type=signature_type, sink=sink, read_only=not acts) as access:
                sink.record("wallet_command", cid, {"command": args.wallet_command, "owner": access.owner,
                                                    "wallet": access.wallet, "signature_type": signature_type})
                result = await action(access, sink, cid)
        except BaseException as exc:
            if log is not None:
                await log.close(failed=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise
        if log is not None:
            await log.close()
            print(f"event log: {db} (mmbot explain {db} {cid})")
        return result

    try:
        return trio.run(main)
    except ChainSetupError as exc:
        raise UsageError(f"{who}: {exc}") from None
    except RpcError as exc:
        raise UsageError(f"{who}: the node refused: {exc}") from None
    except ChainUnreachable as exc:
        raise UsageError(f"{who}: --rpc {args.rpc}: {exc}") from None


def _acting(access: Any) -> Any:
    """The adapter of access opened to act (never None there)."""
    assert access.adapter is not None
    return access.adapter


class _NoLog:
    """Read-only commands keep no event log."""

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "",
               token: str = "") -> None:
        return None


def cmd_deploy(args: argparse.Namespace) -> int:
    async def action(access: Any, sink: Any, cid: str) -> int:
        if access.relayer is None:
            raise UsageError("mmbot wallet deploy: an EOA has nothing to deploy (use --signature-type deposit-wallet)")
        if await access.view.code(access.wallet):
            print(f"deposit wallet {access.wallet} of {access.owner} is already deployed: nothing to do")
            return 0
        receipt = await access.relayer.deploy(cid=cid)
        where = f" in block {receipt.block}" if receipt.block else ""
        print(f"deposit wallet {access.wallet} deployed for {access.owner}{where}")
        return 0

    return _run(args, "mmbot wallet deploy", action, acts=True)


def cmd_approve(args: argparse.Namespace) -> int:
    async def action(access: Any, sink: Any, cid: str) -> int:
        if access.signature_type == POLY_1271 and not await access.view.code(access.wallet):
            raise UsageError(f"mmbot wallet approve: the deposit wallet {access.wallet} is not deployed: run mmbot"
                             " wallet deploy first")
        missing = await access.view.missing_approvals(access.wallet)
        if not missing:
            print(f"every approval is already in place for {access.wallet}")
            return 0
        sink.record("approvals_requested", cid, {"calls": [c.describe() for c in missing]})
        receipt = await _acting(access).execute(missing, cid=cid)
        still = await access.view.missing_approvals(access.wallet)
        sink.record("approvals_granted", cid, {"tx_hash": receipt.tx_hash, "still_missing": len(still)})
        for call in missing:
            print(f"granted {call.describe()}")
        if still:
            raise UsageError(f"mmbot wallet approve: {len(still)} approval(s) still missing after the transaction")
        return 0

    return _run(args, "mmbot wallet approve", action, acts=True)


def cmd_status(args: argparse.Namespace) -> int:
    from mmbot.venues.polymarket.contracts import CTF_OPERATORS, MAX_UINT256, PUSD_SPENDERS

    async def action(access: Any, sink: Any, cid: str) -> int:
        view = access.view
        deployed = bool(await view.code(access.wallet))
        rows: list[tuple[str, str]] = [("owner (EOA)", access.owner)]
        if access.signature_type == POLY_1271:
            rows += [("deposit wallet", f"{access.wallet} ({access.kind.value if access.kind else '?'} clone)"),
                     ("deployed", "yes" if deployed else "no: run mmbot wallet deploy")]
            if deployed:
                rows.append(("batch nonce", str(await view.wallet_nonce(access.wallet))))
        rows.append(("pUSD", _money(await view.pusd(access.wallet))))
        rows.append(("POL (gas, owner)", f"{await view.rpc.balance(access.owner) / 10**18:.4f}"))  # float-ok: display
        for spender in PUSD_SPENDERS:
            allowance = await view.allowance(access.wallet, spender)
            rows.append((f"pUSD allowance {spender[:10]}…",
                         "unlimited" if allowance >= MAX_UINT256 // 2 else _money(allowance)))
        for operator in CTF_OPERATORS:
            rows.append((f"CTF operator {operator[:10]}…", "yes" if await view.approved(access.wallet, operator) else "no"))
        missing = await view.missing_approvals(access.wallet)
        rows.append(("approvals", "all in place" if not missing else f"{len(missing)} missing: run mmbot wallet approve"))
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            print(f"{label:<{width}}  {value}")
        return 0

    return _run(args, "mmbot wallet status", action, acts=False)


async def _market(args: argparse.Namespace, who: str) -> Any:
    import httpx

    from mmbot.cli_places import gamma_url
    from mmbot.venues.polymarket.discovery import DiscoveryError, gamma_entries, list_markets, market_info

    if not args.rest and not args.gamma:
        raise UsageError(f"{who}: expected --rest (or --gamma): where the market's tokens are listed")
    gamma = gamma_url(args.gamma, args.rest or "")
    try:
        async with httpx.AsyncClient(base_url=gamma, timeout=10) as client:
            markets, _ = await list_markets(client)
            found = [m for m in markets if args.market in (m.market, m.slug)]
            if not found:  # a resolved market is closed, left out of the tradeable ones: asked for by its id
                found = [market_info(e) for e in await gamma_entries(client, [args.market], closed=True)
                         if e.get("conditionId") == args.market]
    except httpx.HTTPError as exc:
        raise UsageError(f"{who}: market listing {gamma}: {exc}") from None
    except (DiscoveryError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{who}: market listing {gamma}: --market {args.market}: {exc}") from None
    if not found:
        raise UsageError(f"{who}: --market {args.market}: not in the listing at {gamma}")
    return found[0]


def cmd_merge(args: argparse.Namespace) -> int:
    from mmbot.venues.polymarket.contracts import merge_call

    who = "mmbot wallet merge"

    async def action(access: Any, sink: Any, cid: str) -> int:
        info = await _market(args, who)
        held = await access.view.shares(access.wallet, list(info.tokens))
        sets = min(held)
        if args.size is None and not sets:
            print(f"no complete sets of {info.market} held: nothing to merge")
            return 0
        size = sets if args.size is None else args.size
        if size <= 0 or size > sets:
            raise UsageError(f"{who}: {info.market}: {_money(sets)} complete sets held, cannot merge {_money(size)}")
        sink.record("merge_requested", cid, {"size": size, "held": held}, market=info.market)
        receipt = await _acting(access).execute([merge_call(info.market, size, neg_risk=info.neg_risk)], cid=cid)
        sink.record("merge", cid, {"size": size, "tx_hash": receipt.tx_hash}, market=info.market)
        print(f"merged {_money(size)} complete sets of {info.market} into {_money(size)} pUSD ({receipt.tx_hash})")
        return 0

    return _run(args, who, action, acts=True)


def cmd_split(args: argparse.Namespace) -> int:
    from mmbot.venues.polymarket.contracts import split_call

    who = "mmbot wallet split"

    async def action(access: Any, sink: Any, cid: str) -> int:
        info = await _market(args, who)
        cash = await access.view.pusd(access.wallet)
        if args.amount > cash:
            raise UsageError(f"{who}: {_money(cash)} pUSD held, cannot split {_money(args.amount)}")
        sink.record("split_requested", cid, {"amount": args.amount, "pusd": cash}, market=info.market)
        receipt = await _acting(access).execute([split_call(info.market, args.amount, neg_risk=info.neg_risk)],
                                                cid=cid)
        sink.record("split", cid, {"amount": args.amount, "tx_hash": receipt.tx_hash}, market=info.market)
        print(f"split {_money(args.amount)} pUSD into {_money(args.amount)} complete sets of {info.market}"
              f" ({receipt.tx_hash})")
        return 0

    return _run(args, who, action, acts=True)


def cmd_redeem(args: argparse.Namespace) -> int:
    from mmbot.venues.polymarket.contracts import redeem_call

    who = "mmbot wallet redeem"

    async def action(access: Any, sink: Any, cid: str) -> int:
        info = await _market(args, who)
        held = await access.view.shares(access.wallet, list(info.tokens))
        if not any(held):
            print(f"nothing held in {info.market}: nothing to redeem")
            return 0
        before = await access.view.pusd(access.wallet)
        sink.record("redeem_requested", cid, {"held": held}, market=info.market)
        receipt = await _acting(access).execute([redeem_call(info.market, neg_risk=info.neg_risk)], cid=cid)
        payout = await access.view.pusd(access.wallet) - before
        sink.record("redeem", cid, {"payout": payout, "tx_hash": receipt.tx_hash}, market=info.market)
        print(f"redeemed {info.market}: {_money(payout)} pUSD ({receipt.tx_hash})")
        return 0

    return _run(args, who, action, acts=True)


COMMANDS = {"deploy": cmd_deploy, "approve": cmd_approve, "status": cmd_status, "split": cmd_split,
            "merge": cmd_merge, "redeem": cmd_redeem}


def add_parsers(actions: Any, size_arg: Callable[[str], int]) -> None:
    def chain_args(parser: Any, *, acts: bool, relayer: bool = True) -> None:
        parser.add_argument("--rpc", required=True, help="a Polygon JSON-RPC URL (the simulator's: REST/rpc)")
        if relayer:
            parser.add_argument("--relayer", help="the relayer's base URL (deposit wallets; the simulator's: REST/relayer)")
        parser.add_argument("--signature-type", choices=("deposit-wallet", "eoa"), default="deposit-wallet",
                            help="where the funds are: the owner's deposit wallet (default) or the key's own address")
        if acts:
            parser.add_argument("--db", help="the event log of the action (default: a new"
                                             " out/wallet-<command>-<UTC time>.db; an existing one is refused)")

    deploy = actions.add_parser("deploy", help="deploy the owner's deposit wallet through the relayer (WALLET-CREATE)")
    chain_args(deploy, acts=True)
    approve = actions.add_parser("approve", help="grant the missing pUSD allowances and CTF approvals to the"
                                                 " exchanges and collateral adapters")
    chain_args(approve, acts=True)
    status = actions.add_parser("status", help="deployed or not, balances, nonce and approvals, read on chain")
    chain_args(status, acts=False, relayer=False)
    for name, what in (("split", "split pUSD into complete sets of a market (a YES and a NO share each)"),
                       ("merge", "merge complete sets of a market back into pUSD"),
                       ("redeem", "redeem every share of a resolved market for pUSD")):
        parser = actions.add_parser(name, help=what)
        chain_args(parser, acts=True)
        parser.add_argument("--market", required=True, help="condition id or slug")
        parser.add_argument("--rest", help="CLOB REST base URL (the market listing is found from it)")
        parser.add_argument("--gamma", help="market listing (Gamma) base URL")
        if name == "merge":
            parser.add_argument("--size", type=size_arg, help="sets to merge (default: every complete set held)")
        if name == "split":
            parser.add_argument("--amount", type=size_arg, required=True, help="pUSD to split (as many sets)")
