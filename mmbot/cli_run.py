"""``mmbot run``: trade on a live market channel — paper, or signed orders to the simulator or
Polymarket — with the operator's cockpit (the terminal view, ``--http``'s dashboard, alerts)."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, Any

from mmbot.cli_errors import UsageError
from mmbot.cli_keys import API_ENV, PRIVATE_KEY_ENV, SIGNATURE_TYPES, signing_key
from mmbot.cli_places import HTTP, WS, check_url, event_log_path, gamma_url, load_config_or_refuse

if TYPE_CHECKING:  # the run's modules are imported when it starts, not for every command's --help or refusal
    from mmbot.config import Config
    from mmbot.model import MarketInfo


async def _stop_on_signal(stop: Any) -> None:
    import trio

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


async def _selected(gamma: str, config: Config) -> list[MarketInfo]:
    """The markets a run without ``--markets`` starts with: those the ``[select]`` rules choose
    (every tradeable one when the section is empty); every ``[[markets]]`` override must name one."""
    import httpx

    from mmbot.app_select import check_overrides, initial_selection
    from mmbot.clock import wall_ns
    from mmbot.config import ConfigError

    try:
        async with httpx.AsyncClient(base_url=gamma, timeout=10) as client:
            markets = await initial_selection(client, config.select, wall_ns())
    except (httpx.HTTPError, ValueError) as exc:
        raise UsageError(f"mmbot: market listing {gamma}: cannot list markets: {exc}") from None
    if not markets:
        raise UsageError(f"mmbot: market listing {gamma}: no tradeable market matches the [select] rules")
    try:
        check_overrides(config, markets)
    except ConfigError as exc:
        raise UsageError(f"mmbot: {exc}") from None
    return markets


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
    from mmbot.memory.report import summary
    from mmbot.report_view import print_summary

    signed = args.mode in ("sim", "live")
    if args.dry_run and not signed:
        raise UsageError("mmbot run: --dry-run: expected with --mode live or sim (paper sends nothing anyway)")
    for flag, url, schemes in (("--ws", args.ws, WS), ("--user-ws", args.user_ws, WS), ("--rest", args.rest, HTTP),
                               ("--gamma", args.gamma, HTTP), ("--rpc", args.rpc, HTTP),
                               ("--relayer", args.relayer, HTTP)):
        check_url(flag, url, schemes, "mmbot run")
    from mmbot.venues.polymarket.auth import EOA, POLY_1271, POLY_GNOSIS_SAFE, POLY_PROXY, SigningError, parse_address

    try:
        funder = None if args.funder is None else parse_address(args.funder)
    except SigningError as exc:
        raise UsageError(f"mmbot run: --funder: {exc}") from None
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
    config = load_config_or_refuse(args.config, "mmbot run")
    from mmbot.config import SelectConfig

    if args.mode == "live" and not args.markets and config.select == SelectConfig():
        raise UsageError("mmbot run --mode live: expected --markets (condition ids or slugs) or a [select] section in"
                         " the config (with real money there is no default of every market)")
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
    from mmbot import cli_cockpit

    cockpit = cli_cockpit.prepare(args, config)  # a port in use, a bad alert URL: refused before anything starts
    db = event_log_path(args.db, args.mode, "mmbot run")  # never an existing log: a new timestamped name by default
    args.event_log = db  # a run that fails is told in one line by cli.main, its log closed as failed

    async def main() -> None:
        gamma = gamma_url(args.gamma, args.rest)
        if args.markets:
            markets = await _markets(gamma, args.markets)
            from mmbot.app_select import check_overrides
            from mmbot.config import ConfigError

            try:
                check_overrides(config, markets)
            except ConfigError as exc:
                raise UsageError(f"mmbot: {exc}") from None
        else:
            markets = await _selected(gamma, config)
        select = None if args.markets else config.select  # --markets: an explicit set, kept as it is
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, stop)
            what = f"{args.mode} (dry run: orders signed and logged, none sent)" if args.dry_run else args.mode
            print(f"{what} trading {len(markets)} markets from {args.ws}; event log {db}; Ctrl-C stops"
                  " (SIGUSR1 pauses quoting, SIGUSR2 resumes)", flush=True)
            cli_cockpit.announce(cockpit)
            try:
                if args.mode == "paper":
                    await app.run_paper(config=config, markets=markets, ws_url=args.ws, db_path=db,
                                        duration_s=args.duration, stop=stop, gamma_url=gamma,
                                        extra_services=cockpit.services, select=select)
                else:
                    user_ws = args.user_ws or args.ws.replace("/ws/market", "/ws/user")
                    await app_live.run_trading(config=config, markets=markets, ws_url=args.ws, user_ws_url=user_ws,
                                               rest_url=args.rest, key=key, creds=creds, db_path=db, mode=args.mode,
                                               duration_s=args.duration, stop=stop, dry_run=args.dry_run,
                                               signature_type=signature_type, funder=funder, gamma_url=gamma,
                                               rpc_url=args.rpc, relayer_url=args.relayer,
                                               extra_services=cockpit.services, select=select)
            finally:
                with trio.CancelScope(shield=True):
                    await cockpit.flush_alerts()  # a failed run's alert goes out before the error is told
            nursery.cancel_scope.cancel()

    trio.run(main)
    print_summary(summary(db), title=f"{args.mode} run on {args.ws}")
    print(f"event log: {db}")
    return 0


def add_parser(sub: Any, int_arg: Any) -> None:
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
    run.add_argument("--db", help="the event log to write, a new file (default: out/<mode>-YYYYMMDD-HHMMSS.db, UTC)")
    run.add_argument("--user-ws", help="user channel URL (default: --ws with /ws/market -> /ws/user)")
    run.add_argument("--http", metavar="HOST:PORT",
                     help="serve the dashboard, /metrics and /healthz there (loopback unless a host is given;"
                          " port 0: any free port); actions need the token printed at start or MMBOT_HTTP_TOKEN")
    run.add_argument("--quiet", action="store_true",
                     help="plain log lines instead of the live terminal view (also when stdout is not a terminal)")

