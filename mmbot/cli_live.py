"""The commands that talk to a venue over sockets: ``sim``, ``record``, ``run``, ``status``, ``creds``,
``cancel-all``, and the registration of ``wallet`` (``cli_wallet``)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from mmbot import cli_doctor, cli_markets, cli_run, cli_sim, cli_sim_admin, cli_wallet
from mmbot.cli_errors import UsageError
from mmbot.cli_keys import signing_key
from mmbot.cli_run import _markets, _stop_on_signal, _trading_secrets
from mmbot.cli_places import HTTP, WS, check_out_path, check_url, gamma_url


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
    check_url("--ws", args.ws, WS, "mmbot record")
    check_url("--rest", args.rest, HTTP, "mmbot record")
    check_url("--gamma", args.gamma, HTTP, "mmbot record")
    check_out_path("--out", args.out, "mmbot record", overwrite=False)  # a recording is never replaced

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


def cmd_creds(args: argparse.Namespace) -> int:
    """``mmbot creds derive --rest URL``: API credentials for the key in the environment, printed as
    the environment lines to keep (the one place mmbot prints a secret: you asked for it)."""
    check_url("--rest", args.rest, HTTP, "mmbot creds")
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
    check_url("--rest", args.rest, HTTP, "mmbot cancel-all")
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
    cli_run.add_parser(sub, int_arg)
    cli_sim.add_parser(sub, int_arg)
    cli_wallet.add_parser(sub)
    cli_sim_admin.add_parser(sub)
    cli_markets.add_parser(sub, int_arg)
    cli_doctor.add_parser(sub)

    record = sub.add_parser("record", help="record a live market channel to a recording file")
    record.add_argument("--ws", required=True, help="market channel URL")
    record.add_argument("--rest", required=True, help="CLOB REST base URL (where the market listing is found)")
    record.add_argument("--gamma", help="market listing (Gamma) base URL (default: Polymarket's for its CLOB, else"
                                        " the simulator's, --rest/gamma); the header lists its markets")
    record.add_argument("--markets", nargs="+", help="condition ids or slugs")
    record.add_argument("--all", action="store_true", help="every tradeable market")
    record.add_argument("--out", required=True, help="recording to write (.jsonl or .jsonl.gz), a new file")
    record.add_argument("--duration", type=int_arg("--duration"), help="seconds (default: until Ctrl-C)")

    cancel_all = sub.add_parser("cancel-all", help="cancel every open order of the account in the environment")
    cancel_all.add_argument("--rest", required=True, help="CLOB REST base URL")
    cancel_all.add_argument("--derive", action="store_true", help="derive the API credentials from the key (L1)")

    creds = sub.add_parser("creds", help="API credentials for the signing key in MMBOT_PRIVATE_KEY")
    creds.add_argument("action", choices=["derive"])
    creds.add_argument("--rest", required=True, help="CLOB REST base URL (the simulator's, or Polymarket's)")


COMMANDS = {"sim": cli_sim.cmd_sim, "run": cli_run.cmd_run, "record": cmd_record, "creds": cmd_creds,
            "cancel-all": cmd_cancel_all, "wallet": cli_wallet.cmd_wallet,
            "sim-admin": cli_sim_admin.cmd_sim_admin, "markets": cli_markets.cmd_markets,
            "doctor": cli_doctor.cmd_doctor}
