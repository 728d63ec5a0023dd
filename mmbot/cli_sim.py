"""``mmbot sim``: the venue simulator on loopback, until Ctrl-C.

A bad option, a port already taken and an admin token of the wrong shape are each one line on
stderr and exit code 2 (``UsageError``), never a traceback. The admin endpoints' token comes from
``MMBOT_SIM_ADMIN_TOKEN`` when set (then it is not printed), else the server makes a random one
and it is printed at start.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
from typing import Any

from mmbot.cli_errors import UsageError
from mmbot.cli_places import check_port_free, port_in_use_error

ADMIN_TOKEN_ENV = "MMBOT_SIM_ADMIN_TOKEN"
_ADMIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,200}")
MAX_INTERVAL_S = 30 * 86_400
MAX_SPEED = 100_000  # the world's clock stays within the calendar for a long run
HOST = "127.0.0.1"  # loopback only


def parse_fault(text: str) -> Any:
    """``KIND@SECONDS[:VALUE]``, e.g. ``drop@30``, ``stall@60:10``, ``tick@90:0x…:0.001``."""
    from mmbot.venues.simulator.server import Fault

    kind, _, rest = text.partition("@")
    seconds, _, value = rest.partition(":")
    try:
        return Fault(kind=kind, at_s=int(seconds), value=value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--fault expects KIND@SECONDS[:VALUE]: {exc}") from None


def admin_token_from_env() -> str:
    """The admin token from the environment ("" if unset: the server makes a random one)."""
    token = os.environ.get(ADMIN_TOKEN_ENV, "")
    if token and not _ADMIN_TOKEN.fullmatch(token):
        raise UsageError(f"mmbot sim: {ADMIN_TOKEN_ENV}: expected 16 to 200 characters of A-Z a-z 0-9 . _ ~ + / = -")
    return token


def check_options(args: argparse.Namespace) -> None:
    if args.markets < 1 or args.speed < 1 or (args.rate is not None and args.rate < 1):
        raise UsageError("mmbot sim: --markets, --speed and --rate expect at least 1")
    if args.speed > MAX_SPEED:
        raise UsageError(f"mmbot sim: --speed: expected at most {MAX_SPEED}")
    if not 1 <= args.block_ms <= 60_000:
        raise UsageError("mmbot sim: --block-ms: expected milliseconds from 1 to 60000")
    if args.funding < 0:
        raise UsageError("mmbot sim: --funding: expected pUSD, at least 0")
    if not 10 <= args.interval <= MAX_INTERVAL_S:
        raise UsageError(f"mmbot sim: --interval: expected seconds from 10 to {MAX_INTERVAL_S}")
    for name, port in (("--port", args.port), ("--ws-port", args.ws_port)):
        if not 0 <= port <= 65535:
            raise UsageError(f"mmbot sim: {name} {port}: expected a port from 0 to 65535 (0: any free port)")
    if args.port == args.ws_port != 0:
        raise UsageError(f"mmbot sim: --port and --ws-port are both {args.port}: expected two ports (or 0)")
    for name, port in (("--port", args.port), ("--ws-port", args.ws_port)):
        check_port_free(name, HOST, port, "mmbot sim")


def cmd_sim(args: argparse.Namespace) -> int:
    import trio

    from mmbot.clock import wall_ns
    from mmbot.failure import leaves, only
    from mmbot.model import ONE
    from mmbot.venues.simulator.server import SimServer, SimSettings
    from mmbot.venues.simulator.venue import LiveVenue

    check_options(args)
    admin_token = admin_token_from_env()
    venue = LiveVenue(seed=args.seed, markets=args.markets, start_ns=wall_ns(), interval_s=args.interval)
    speed = args.speed
    settings = SimSettings(seed=args.seed, markets=args.markets, interval_s=args.interval, speed=speed,
                           rate=args.rate or 0, funding=args.funding * ONE, faults=tuple(args.fault or ()),
                           batched_price_changes=args.batched_price_changes, block_ms=args.block_ms)

    async def main() -> None:
        server = SimServer(venue, settings=settings, admin_token=admin_token,
                           on_alert=lambda line: print(f"alert received: {line}", flush=True))
        async with trio.open_nursery() as nursery:
            try:
                urls = await nursery.start(lambda task_status: server.run(
                    http_port=args.port, ws_port=args.ws_port, task_status=task_status))
            except Exception as exc:  # a port taken (since the check), or refused by the system
                if not only(exc, (OSError,)):
                    raise
                for name, port in (("--port", args.port), ("--ws-port", args.ws_port)):
                    taken = port_in_use_error(name, HOST, port, "mmbot sim")
                    if taken is not None:
                        raise taken from None
                raise UsageError(f"mmbot sim: cannot listen on 127.0.0.1 (--port {args.port}, --ws-port "
                                 f"{args.ws_port}): {leaves(exc)[0]}") from None
            pace = f"{args.rate} frames/s" if args.rate else f"speed x{speed}"
            print(f"mmbot simulator: {len(venue.markets())} markets, seed {args.seed}, {pace}")
            for line in urls.lines():
                print(f"  {line}")
            token = f"from {ADMIN_TOKEN_ENV}" if admin_token else server.admin_token
            print(f"  admin token     {token} (/admin/*, from loopback: Authorization: Bearer <token>)")
            print(f"  alert inbox     {urls.rest}/inbox (a webhook receiver for trying alerts: MMBOT_ALERT_URL)")
            print("  Ctrl-C stops it", flush=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()
        print(f"stopped: {server.statistics()}")

    try:
        trio.run(main)
    except BaseExceptionGroup as group:  # a UsageError from inside the nursery
        if only(group, (UsageError,)):
            raise leaves(group)[0] from None
        raise
    return 0


def add_parser(sub: Any, int_arg: Any) -> None:
    sim = sub.add_parser("sim", help="run the Polymarket-compatible venue simulator on loopback")
    sim.add_argument("--port", type=int_arg("--port"), default=8080, help="REST port (0: any free port)")
    sim.add_argument("--ws-port", type=int_arg("--ws-port"), default=8081, help="market channel port")
    sim.add_argument("--markets", type=int_arg("--markets"), default=4, help="markets at a time")
    sim.add_argument("--seed", type=int_arg("--seed"), default=0, help="seeds the markets and their flow")
    sim.add_argument("--rate", type=int_arg("--rate"), help="market frames per second (the world runs as fast as that needs)")
    sim.add_argument("--speed", type=int_arg("--speed"), default=1, help="simulated seconds per real second")
    sim.add_argument("--interval", type=int_arg("--interval"), default=300, help="Up/Down window seconds")
    sim.add_argument("--funding", type=int_arg("--funding"), default=10_000,
                     help="pUSD each trading account starts with")
    sim.add_argument("--fault", type=parse_fault, action="append",
                     help="KIND@SECONDS[:VALUE]: drop, stall (seconds), outage (seconds), delay (ms), tick (market:tick), malformed")
    sim.add_argument("--block-ms", type=int_arg("--block-ms"), default=2_000,
                     help="the simulated chain's block time in ms (default 2000, Polygon's; less keeps pace with"
                          " --speed)")
    sim.add_argument("--batched-price-changes", action="store_true",
                     help="one price_change per market and step, many entries (default: the venue's one or two)")
