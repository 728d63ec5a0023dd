"""The operator's cockpit of ``mmbot run``, as its options choose it: the live terminal view (or
plain lines with ``--quiet`` or when stdout is not a terminal), the HTTP server of ``--http``
(dashboard, API, ``/metrics``, ``/healthz``), webhook alerts from the environment, and pause /
resume by SIGUSR1 / SIGUSR2. Everything that can be refused is refused before the run starts
(``prepare``): a port in use, a malformed alert URL — one line, exit 2."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Sequence

import attrs
import trio

from mmbot.cli_errors import UsageError
from mmbot.config import Config, Secret, secret_from_env

if TYPE_CHECKING:  # the run's pieces, imported when the run starts (not for `mmbot --help`)
    from mmbot.app_alerts import Alerting
    from mmbot.app_cockpit import Cockpit
    from mmbot.app_engine import Engine
    from mmbot.app_tree import LiveParts
    from mmbot.cockpit.http import Sockets
    from mmbot.supervisor import Service

HTTP_TOKEN_ENV = "MMBOT_HTTP_TOKEN"
DEFAULT_HTTP_HOST = "127.0.0.1"
TERMINAL_MARKETS = 40  # market rows the live view is given (it shows what fits the screen, busy ones first)


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (loopback by default); one line naming what is wrong."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or DEFAULT_HTTP_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"mmbot run: --http {text}: expected HOST:PORT, e.g. 127.0.0.1:8080") from None
    if not 0 <= port <= 65_535:
        raise UsageError(f"mmbot run: --http {text}: the port must be 0-65535")
    return host, port


@attrs.define
class CockpitPlan:
    """What the run's cockpit will be, settled before the run starts."""

    mode: str
    config: Config
    live_view: bool  # the rich terminal view; else plain lines
    http: tuple[str, int] | None = None
    sockets: Sockets | None = None  # bound for --http before the run starts
    token: Secret | None = None
    token_printed: bool = False
    alerting: Alerting | None = None  # once the engine is built
    url: str = ""

    # ------------------------------------------------------------------ the services

    def services(self, engine: Engine, live: LiveParts | None) -> Sequence[tuple[str, Service]]:
        """``extra_services`` of the run: built once the engine is (the cockpit observes its log
        from its first rows on)."""
        from mmbot.app_alerts import build_alerting
        from mmbot.app_cockpit import Cockpit
        from mmbot.clock import wall_ns

        cockpit = Cockpit(engine, mode=self.mode, wall=wall_ns)
        if live is not None:
            cockpit.watch.add_expected("user", "user")
        services: list[tuple[str, Service]] = [("operator-signals", operator_signals(cockpit))]
        if self.live_view:
            from rich.console import Console

            from mmbot.cockpit.terminal import TerminalView

            # a terminal shows a screenful of markets: the snapshot need not carry more
            services.append(("terminal", TerminalView(lambda: cockpit.snapshot(markets=TERMINAL_MARKETS), Console()).run))
        else:
            from mmbot.cockpit.terminal_plain import PlainLines

            plain = PlainLines(sys.stdout, snapshot=lambda: cockpit.snapshot(markets=0),
                               every_s=self.config.log.pnl_interval_s,
                               describe=cockpit.describe)
            engine.log.observe(plain.on_row)
            services.append(("plain-lines", plain.run))
        if self.http is not None:
            from mmbot.app_metrics import cockpit_http

            host, port = self.http
            services.append(cockpit_http(
                cockpit, host=host, port=port, token=self.token, sockets=self.sockets,
                user=None if live is None else live.user, rest=None if live is None else live.rest,
                services=() if live is None else live.services))
        self.alerting = build_alerting(cockpit, self.config.alerts, os.environ)
        if self.alerting is not None:
            services += self.alerting.services
        return services

    async def flush_alerts(self) -> None:
        """After the run: what its last rows raised (a failed run's alert) goes out, one try each."""
        if self.alerting is not None:
            await self.alerting.flush(5)


def prepare(args: argparse.Namespace, config: Config) -> CockpitPlan:
    """Check and bind what the cockpit needs, before the run starts."""
    from mmbot.app_alerts import check_alert_env

    try:
        check_alert_env(os.environ, config.alerts)
    except ValueError as exc:
        raise UsageError(f"mmbot run: {exc}") from None
    plan = CockpitPlan(mode=args.mode, config=config, live_view=sys.stdout.isatty() and not args.quiet)
    if args.http:
        from mmbot.cockpit.http import bind, new_token

        plan.http = parse_http(args.http)
        host, port = plan.http
        try:
            plan.sockets = bind(host, port)
        except OSError as exc:
            why = "the port is in use" if exc.errno in (98, 48) else (exc.strerror or str(exc))
            raise UsageError(f"mmbot run: --http {args.http}: cannot listen there: {why}") from None
        bound = plan.sockets.insecure_sockets[0].getsockname()
        plan.http = (host, bound[1])
        plan.token = secret_from_env(HTTP_TOKEN_ENV)
        if plan.token is None:
            plan.token = Secret(value=new_token())
            plan.token_printed = True
        shown = f"[{host}]" if ":" in host else host
        plan.url = f"http://{shown}:{bound[1]}/"
    return plan


def announce(plan: CockpitPlan) -> None:
    """The dashboard's address at start: with a generated token, as a link carrying it in the
    fragment (never sent to the server); a token from the environment is not printed."""
    if plan.http is None:
        return
    if plan.token_printed and plan.token is not None:
        print(f"dashboard: {plan.url}#token={plan.token.reveal()}  (actions need this token; set {HTTP_TOKEN_ENV}"
              " to choose it)", flush=True)
    else:
        print(f"dashboard: {plan.url}  (actions need the token in {HTTP_TOKEN_ENV})", flush=True)
    print(f"metrics: {plan.url}metrics   health: {plan.url}healthz", flush=True)


def operator_signals(cockpit: Cockpit) -> Service:
    """SIGUSR1 pauses quoting, SIGUSR2 resumes it (as the dashboard's buttons do)."""

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGUSR1:
                    cockpit.pause("signal", "SIGUSR1")
                else:
                    cockpit.resume("signal", "SIGUSR2")

    return run
