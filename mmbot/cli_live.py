"""The commands that talk to a venue over sockets: ``sim``, ``record``, ``run``, ``status``, ``creds``,
``cancel-all``, and the registration of ``wallet`` (``cli_wallet``)."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path
from typing import Any

from mmbot import cli_sim, cli_sim_admin, cli_wallet
from mmbot.cli_errors import UsageError
from mmbot.cli_keys import PRIVATE_KEY_ENV, signing_key
from mmbot.cli_places import fresh_db, gamma_url


async def _stop_on_signal(stop: Any) -> None:
    import trio

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


async def _markets(gamma: str, wanted: list[str] | None) -> list[Any]:
    import httpx

    from mmbot.venues.polymarket.discovery import list_markets

    try:
        async with httpx.AsyncClient(base_url=gamma, timeout=10) as client:
            markets, _ = await list_markets(client)
    except httpx.HTTPError as exc:
        raise UsageError(f"mmbot: market listing {gamma}: cannot list markets: {exc}") from None
    if wanted is not None:
        markets = [m for m in markets if m.market in wanted or m.slug in wanted]
        if not markets:
            raise UsageError("mmbot: --markets: none of the markets named is listed and tradeable")
    return markets


def cmd_record(args: argparse.Namespace) -> int:
    import random

    import trio

    from mmbot.clock import TrioClock
    from mmbot.config import FeedConfig
    from mmbot.facts.recorder import Recorder
    from mmbot.facts.recording import RecordingHeader, RecordingWriter
    from mmbot.venues.polymarket.ws import MarketChannel

    if not args.all and not args.markets:
        raise UsageError("mmbot record: give --markets ID... or --all")

    class _Quiet:
        def record(self, kind: str, cid: str, payload: Any = None, **_: Any) -> None:
            if kind == "feed_down":
                print(f"record: {payload['connection']} down: {payload['reason']}", file=sys.stderr)

    async def main() -> int:
        markets = await _markets(gamma_url(args.gamma, args.rest), None if args.all else args.markets)
        clock = TrioClock()
        header = RecordingHeader(start_ns=clock.now_ns(), markets=tuple(markets), source=f"mmbot record {args.ws}")
        recorder = Recorder(RecordingWriter(args.out), header)
        channel = MarketChannel(
            url=args.ws, on_frame=lambda text, t: recorder.on_frame("market", text, t),
            on_gap=lambda tokens, reason: None, sink=_Quiet(), clock=clock, config=FeedConfig(),
            rng=random.Random(0),
        )
        channel.subscribe(t for m in markets for t in m.tokens)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(recorder.run)
            await nursery.start(channel.run)
            nursery.start_soon(_stop_on_signal, stop)
            with trio.move_on_after(args.duration or math.inf):
                await stop.wait()
            nursery.cancel_scope.cancel()
        print(f"wrote {args.out}: {recorder.frames_written} frames, {len(markets)} markets,"
              f" {len(channel.connections)} connection(s)")
        return 0

    return trio.run(main)


API_ENV = ("MMBOT_API_KEY", "MMBOT_API_SECRET", "MMBOT_API_PASSPHRASE")
# auth.EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271, in that order
SIGNATURE_TYPES = ("eoa", "poly-proxy", "gnosis-safe", "deposit-wallet")


def _trading_secrets(mode: str, who: str = "") -> tuple[Any, Any]:
    """The signing key and API credentials from the environment; one line naming what is missing.
    In sim mode the credentials may be left out: they are derived from the key (L1)."""
    from mmbot.config import secret_from_env
    from mmbot.venues.polymarket.auth import ApiCredentials

    missing = [name for name in (PRIVATE_KEY_ENV, *API_ENV) if secret_from_env(name) is None]
    if PRIVATE_KEY_ENV in missing or (mode == "live" and missing):
        raise UsageError(f"{who or f'mmbot run --mode {mode}'}: missing from the environment: {', '.join(missing)}")
    key = signing_key("mmbot run")
    if any(name in missing for name in API_ENV):
        return key, None
    api_key, secret, passphrase = (secret_from_env(name) for name in API_ENV)
    return key, ApiCredentials(api_key=api_key.reveal(), secret=secret, passphrase=passphrase)


def cmd_run(args: argparse.Namespace) -> int:
    import trio

    from mmbot import app, app_live
    from mmbot.config import ConfigError, load_config
    from mmbot.memory.report import summary
    from mmbot.report_view import print_summary

    signed = args.mode in ("sim", "live")
    if args.dry_run and not signed:
        raise UsageError("mmbot run: --dry-run: expected with --mode live or sim (paper sends nothing anyway)")
    from mmbot.venues.polymarket.auth import EOA, POLY_1271, POLY_GNOSIS_SAFE, POLY_PROXY, SigningError, parse_address

    try:
        funder = None if args.funder is None else parse_address(args.funder)
    except SigningError as exc:
        raise UsageError(f"mmbot run: --funder: {exc}") from None
    if args.mode == "live" and not args.markets:
        raise UsageError("mmbot run --mode live: --markets: expected the condition ids or slugs to trade (with real"
                         " money there is no default of every market)")
    signature_type = dict(zip(SIGNATURE_TYPES, (EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271)))[args.signature_type]
    if signature_type in (POLY_PROXY, POLY_GNOSIS_SAFE) and funder is None:
        raise UsageError(f"mmbot run: --signature-type {args.signature_type}: expected --funder, the proxy"
                         " wallet or Safe that holds the funds")
    if signature_type == POLY_1271:
        if funder is not None:
            raise UsageError("mmbot run: --signature-type deposit-wallet: the wallet is the owner's own (read on"
                             " chain): leave out --funder")
        if not args.rpc or not args.relayer:
            raise UsageError("mmbot run: --signature-type deposit-wallet: expected --rpc and --relayer (the wallet"
                             " is found on chain; merges and redemptions go through the relayer)")
    if args.rpc and signature_type in (POLY_PROXY, POLY_GNOSIS_SAFE):
        raise UsageError(f"mmbot run: --rpc: on-chain actions are built for deposit wallets and EOAs, not for"
                         f" --signature-type {args.signature_type}")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(f"mmbot: {exc}") from None
    key, creds = _trading_secrets(args.mode) if signed else (None, None)
    if signed and (not args.rpc or args.dry_run) and (config.strategies.merge.enabled or config.capital.redeem):
        import attrs

        # merges and redemptions are on-chain actions: without chain access (or in a dry run, which
        # sends nothing) they could never be made
        why = "a dry run sends nothing" if args.dry_run else "no --rpc"
        print(f"mmbot run: {why}: merges and redemptions are off (shares of resolved markets stay held until"
              " redeemed with mmbot wallet redeem)", file=sys.stderr)
        config = attrs.evolve(config, capital=attrs.evolve(config.capital, redeem=False), strategies=attrs.evolve(
            config.strategies, merge=attrs.evolve(config.strategies.merge, enabled=False)))
    db = fresh_db(Path(args.db))
    args.event_log = db  # a run that fails is told in one line by cli.main, its log closed as failed

    async def main() -> None:
        gamma = gamma_url(args.gamma, args.rest)
        markets = await _markets(gamma, args.markets)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, stop)
            what = f"{args.mode} (dry run: orders signed and logged, none sent)" if args.dry_run else args.mode
            print(f"{what} trading {len(markets)} markets from {args.ws}; event log {db}; Ctrl-C stops", flush=True)
            if args.mode == "paper":
                await app.run_paper(config=config, markets=markets, ws_url=args.ws, db_path=db,
                                    duration_s=args.duration, stop=stop, gamma_url=gamma)
            else:
                user_ws = args.user_ws or args.ws.replace("/ws/market", "/ws/user")
                await app_live.run_trading(config=config, markets=markets, ws_url=args.ws, user_ws_url=user_ws,
                                           rest_url=args.rest, key=key, creds=creds, db_path=db, mode=args.mode,
                                           duration_s=args.duration, stop=stop, dry_run=args.dry_run,
                                           signature_type=signature_type, funder=funder, gamma_url=gamma,
                                           rpc_url=args.rpc, relayer_url=args.relayer)
            nursery.cancel_scope.cancel()

    trio.run(main)
    print_summary(summary(db), title=f"{args.mode} run on {args.ws}")
    print(f"event log: {db}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mmbot.memory.log import COMPLETED, run_outcome
    from mmbot.memory.status import status
    from mmbot.model import format_micro

    if not Path(args.db).is_file():
        raise UsageError(f"mmbot status: {args.db}: no such event log")
    now = status(args.db)
    outcome = run_outcome(args.db)
    table = Table(title=f"status of {args.db}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("figures")
    ended = ("running, or killed before it could close its log" if outcome is None
             else "stopped cleanly" if outcome == COMPLETED else outcome)
    table.add_row("run", escape(f"{now['mode']}, {ended}"))
    table.add_row("events / frames", f"{now['events']} / {now['frames']}")
    for name, feed in sorted(now["feeds"].items()):
        state = "up" if feed["up"] else f"down ({feed['last_down']})"
        table.add_row(f"feed {name}", f"{state}, {feed.get('assets', '?')} assets, {feed['sessions']} session(s)")
    table.add_row("open orders", str(now["open_orders"]))
    money = {k: ("-" if now[k] is None else format_micro(now[k])) for k in ("cash", "realised", "unrealised")}
    table.add_row("cash / realised / marked", f"{money['cash']} / {money['realised']} / {money['unrealised']}")
    table.add_row("positions", ", ".join(f"{t[:10]}… {format_micro(n)}" for t, n in now["positions"].items()) or "none")
    table.add_row("counts", ", ".join(f"{k} {v}" for k, v in sorted(now["counts"].items())) or "none")
    for problem in now["problems"]:  # what makes the figures above doubtful
        table.add_row("problem", problem, style="red")
    Console().print(table)
    return 0


def cmd_creds(args: argparse.Namespace) -> int:
    """``mmbot creds derive --rest URL``: API credentials for the key in the environment, printed as
    the environment lines to keep (the one place mmbot prints a secret: you asked for it)."""
    import httpx
    import trio

    from mmbot.clock import TrioClock
    from mmbot.ports import VenueError
    from mmbot.venues.polymarket.rest import ClobRest

    key = signing_key("mmbot creds")

    async def main() -> Any:
        async with httpx.AsyncClient(base_url=args.rest, timeout=10) as client:
            return await ClobRest.create_or_derive_api_key(client, key, TrioClock())

    try:
        creds = trio.run(main)
    except VenueError as exc:
        raise UsageError(f"mmbot creds: {args.rest}: {exc}") from None
    print(f"# API credentials of {key.address}")
    print(f"MMBOT_API_KEY={creds.api_key}")
    print(f"MMBOT_API_SECRET={creds.secret.reveal()}")
    print(f"MMBOT_API_PASSPHRASE={creds.passphrase.reveal()}")
    return 0


def cmd_cancel_all(args: argparse.Namespace) -> int:
    """``mmbot cancel-all --rest URL``: cancel every open order of the account, now."""
    import httpx
    import trio

    from mmbot.clock import TrioClock
    from mmbot.ports import VenueError
    from mmbot.venues.polymarket.rest import ClobRest
    from mmbot.venues.polymarket.rest_answers import CancelAnswer

    key, creds = _trading_secrets("sim" if args.derive else "live", "mmbot cancel-all")

    async def main() -> CancelAnswer:
        async with httpx.AsyncClient(base_url=args.rest, timeout=10) as client:
            clock = TrioClock()
            found = creds or await ClobRest.create_or_derive_api_key(client, key, clock)
            return await ClobRest(client=client, creds=found, address=key.address, clock=clock).cancel_all()

    try:
        answer = trio.run(main)
    except (VenueError, httpx.HTTPError) as exc:
        raise UsageError(f"mmbot cancel-all: {args.rest}: {exc}") from None
    print(f"cancelled {len(answer.canceled)} order(s); not cancelled: {answer.not_canceled or 'none'}")
    return 0


def add_parsers(sub: Any, int_arg: Any) -> None:
    cli_sim.add_parser(sub, int_arg)
    cli_wallet.add_parser(sub)
    cli_sim_admin.add_parser(sub)

    record = sub.add_parser("record", help="record a live market channel to a recording file")
    record.add_argument("--ws", required=True, help="market channel URL")
    record.add_argument("--rest", required=True, help="CLOB REST base URL (where the market listing is found)")
    record.add_argument("--gamma", help="market listing (Gamma) base URL (default: Polymarket's for its CLOB, else"
                                        " the simulator's, --rest/gamma); the header lists its markets")
    record.add_argument("--markets", nargs="+", help="condition ids or slugs")
    record.add_argument("--all", action="store_true", help="every tradeable market")
    record.add_argument("--out", required=True, help="recording to write (.jsonl or .jsonl.gz)")
    record.add_argument("--duration", type=int_arg("--duration"), help="seconds (default: until Ctrl-C)")

    run = sub.add_parser("run", help="trade on a live market channel: paper, or signed orders (the simulator or"
                                     " Polymarket)")
    run.add_argument("--mode", choices=["paper", "live", "sim"], required=True,
                     help="paper: simulated fills; sim: signed orders to the simulator; live: signed orders to"
                          " Polymarket (real money)")
    run.add_argument("--ws", required=True, help="market channel URL")
    run.add_argument("--rest", required=True, help="CLOB REST base URL")
    run.add_argument("--gamma", help="market listing (Gamma) base URL (default: Polymarket's for its CLOB, else"
                                     " the simulator's, --rest/gamma)")
    run.add_argument("--dry-run", action="store_true", help="sign and log every order, send none (sim, live)")
    run.add_argument("--signature-type", choices=SIGNATURE_TYPES, default="eoa",
                     help="how the funds are held: eoa (the key's own address), poly-proxy, gnosis-safe,"
                          " deposit-wallet (the owner's deposit wallet: every new Polymarket account)")
    run.add_argument("--rpc", help="a Polygon JSON-RPC URL: merges and redemptions on chain, approvals checked at"
                                   " start-up (the simulator's: REST/rpc)")
    run.add_argument("--relayer", help="the relayer's base URL, for a deposit wallet (the simulator's: REST/relayer)")
    run.add_argument("--funder", help="the proxy wallet or Safe holding the funds (with poly-proxy, gnosis-safe)")
    run.add_argument("--config", help="a TOML config file (defaults otherwise)")
    run.add_argument("--markets", nargs="+", help="condition ids or slugs (default: every tradeable market)")
    run.add_argument("--duration", type=int_arg("--duration"), help="seconds (default: until Ctrl-C)")
    run.add_argument("--db", default="out/paper.db", help="the event log to write")
    run.add_argument("--user-ws", help="user channel URL (default: --ws with /ws/market -> /ws/user)")

    status_ = sub.add_parser("status", help="a run's current state, from its event log (live or finished)")
    status_.add_argument("db")

    cancel_all = sub.add_parser("cancel-all", help="cancel every open order of the account in the environment")
    cancel_all.add_argument("--rest", required=True, help="CLOB REST base URL")
    cancel_all.add_argument("--derive", action="store_true", help="derive the API credentials from the key (L1)")

    creds = sub.add_parser("creds", help="API credentials for the signing key in MMBOT_PRIVATE_KEY")
    creds.add_argument("action", choices=["derive"])
    creds.add_argument("--rest", required=True, help="CLOB REST base URL (the simulator's, or Polymarket's)")


COMMANDS = {"sim": cli_sim.cmd_sim, "record": cmd_record, "run": cmd_run, "status": cmd_status, "creds": cmd_creds,
            "cancel-all": cmd_cancel_all, "wallet": cli_wallet.cmd_wallet,
            "sim-admin": cli_sim_admin.cmd_sim_admin}
