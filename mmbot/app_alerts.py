"""Alerts wired to a run (composition level): where they go, from the environment only, and the
services that make and send them — a row observer on the event log (``cockpit/alerts.py``'s rules)
and a ticker, every second of the run's clock, for the feeds that stay down too long.

Environment (never the config file, never logged):

- ``MMBOT_ALERT_URL``: a webhook; its format is ``MMBOT_ALERT_FORMAT`` or ``[alerts] format``
  (generic, slack, discord);
- ``MMBOT_TELEGRAM_TOKEN`` and ``MMBOT_TELEGRAM_CHAT``: the Telegram Bot API (``sendMessage``), at
  ``MMBOT_TELEGRAM_API`` (default https://api.telegram.org; tests point it at a local receiver).

Both may be set: each alert then goes to both.
"""

from __future__ import annotations

import random
import re
from typing import Any, Mapping

import attrs
import httpx
import trio

from mmbot.app_cockpit import Cockpit
from mmbot.cockpit.alerts import Alerts
from mmbot.cockpit.webhook import FORMATS, AlertSender, Target
from mmbot.config import AlertsConfig, Secret
from mmbot.supervisor import Service

URL_ENV, FORMAT_ENV = "MMBOT_ALERT_URL", "MMBOT_ALERT_FORMAT"
TELEGRAM_TOKEN_ENV, TELEGRAM_CHAT_ENV, TELEGRAM_API_ENV = "MMBOT_TELEGRAM_TOKEN", "MMBOT_TELEGRAM_CHAT", "MMBOT_TELEGRAM_API"
TELEGRAM_API = "https://api.telegram.org"
_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
_CHAT = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,64}")
TICK_S = 1


def _url_problem(name: str, value: str) -> str | None:
    """What is wrong with the URL in variable ``name``, naming the variable and never the value."""
    if value != value.strip() or any(c.isspace() for c in value):
        return f"{name}: expected an http:// or https:// URL without spaces"
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError):
        return f"{name}: expected an http:// or https:// URL"
    if url.scheme not in ("http", "https") or not url.host:
        return f"{name}: expected an http:// or https:// URL with a host"
    return None


def alert_targets(environ: Mapping[str, str], config: AlertsConfig | None = None) -> list[Target]:
    """Where alerts go; empty when nothing is configured. A bad value is a ``ValueError`` whose
    one-line message names the variable, never its value."""
    targets = []
    fmt = environ.get(FORMAT_ENV) or (config or AlertsConfig()).format
    if environ.get(FORMAT_ENV) and fmt not in FORMATS:
        raise ValueError(f"{FORMAT_ENV}: expected one of {', '.join(FORMATS)}")
    url = environ.get(URL_ENV, "")
    if url:
        problem = _url_problem(URL_ENV, url)
        if problem:
            raise ValueError(problem)
        if fmt == "telegram":
            raise ValueError(f"{URL_ENV}: the telegram format posts to the Bot API: set {TELEGRAM_TOKEN_ENV} and "
                             f"{TELEGRAM_CHAT_ENV} instead, or {FORMAT_ENV} to generic, slack or discord")
        targets.append(Target(format=fmt, url=Secret(value=url)))
    token, chat = environ.get(TELEGRAM_TOKEN_ENV, ""), environ.get(TELEGRAM_CHAT_ENV, "")
    if token or chat:
        if not token or not chat:
            missing = TELEGRAM_CHAT_ENV if token else TELEGRAM_TOKEN_ENV
            raise ValueError(f"{missing}: missing (Telegram alerts need both {TELEGRAM_TOKEN_ENV} and {TELEGRAM_CHAT_ENV})")
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"{TELEGRAM_TOKEN_ENV}: expected a bot token as BotFather gives it (<digits>:<letters>)")
        if not _CHAT.fullmatch(chat):
            raise ValueError(f"{TELEGRAM_CHAT_ENV}: expected a numeric chat id or an @channel name")
        api = environ.get(TELEGRAM_API_ENV) or TELEGRAM_API
        problem = _url_problem(TELEGRAM_API_ENV, api)
        if problem:
            raise ValueError(problem)
        targets.append(Target(format="telegram", url=Secret(value=f"{api.rstrip('/')}/bot{token}/sendMessage"),
                              chat_id=chat))
    elif environ.get(TELEGRAM_API_ENV):
        raise ValueError(f"{TELEGRAM_API_ENV}: set without {TELEGRAM_TOKEN_ENV} and {TELEGRAM_CHAT_ENV}")
    return targets


def check_alert_env(environ: Mapping[str, str], config: AlertsConfig | None = None) -> None:
    """At start-up: ``ValueError`` with a one-line message naming the variable if the alert
    environment is malformed (the CLI turns it into a ``UsageError``)."""
    alert_targets(environ, config)


@attrs.define
class Alerting:
    """A run's alerts: the rules, one sender per target, and the services to supervise."""

    alerts: Alerts
    senders: list[AlertSender]
    services: list[tuple[str, Service]]

    async def flush(self, grace_s: float = 5) -> None:  # float-ok: a delay
        """After the run: post what its last rows raised (``run_failed``), one try each."""
        for sender in self.senders:
            await sender.flush(grace_s)


def build_alerting(cockpit: Cockpit, config: AlertsConfig, environ: Mapping[str, str], *,
                   transport: httpx.AsyncBaseTransport | None = None, **sender_options: Any) -> Alerting | None:
    """``None`` when no alert target is configured. Else the observer is registered on the run's
    log now, and the services (a sender per target, the ticker) are to be supervised with the
    run's others."""
    targets = alert_targets(environ, config)
    if not targets:
        return None
    engine = cockpit.engine
    seed = engine.config.seed

    def label_market(market: str) -> str:
        info = engine.markets.get(market)
        return market[:12] if info is None else (info.slug or market[:12])

    alerts = Alerts(describe=cockpit.describe, label_market=label_market, feed_down_after_s=config.feed_down_after_s,
                    min_interval_s=config.min_interval_s, max_per_hour=config.max_per_hour)
    run = f"{cockpit.mode} run"
    senders = [AlertSender(target, run=run, sink=engine.log, rng=random.Random(seed ^ 0xA1E7 ^ i),
                           transport=transport, **sender_options) for i, target in enumerate(targets)]

    def offer(found: list[Any]) -> None:
        for alert in found:
            for sender in senders:
                sender.offer(alert)

    engine.log.observe(lambda row, payload: offer(alerts.on_row(row, payload)))
    clock, watch = engine.clock, cockpit.watch

    def wall(now_ns: int) -> int:  # wall time from the run's clock, as the log's last row paired them
        return watch.last_wall_ns + (now_ns - watch.last_ns) if watch.last_wall_ns else now_ns

    async def ticker(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(TICK_S)
            now = clock.now_ns()
            offer(alerts.tick(now, wall(now), watch.down_for_ns(now)))

    services: list[tuple[str, Service]] = [
        (f"alerts-{target.format}" if len(targets) > 1 else "alerts", sender.run)
        for target, sender in zip(targets, senders)]
    services.append(("alert-rules", ticker))
    return Alerting(alerts=alerts, senders=senders, services=services)


def alert_services(cockpit: Cockpit, config: AlertsConfig, environ: Mapping[str, str],
                   **options: Any) -> list[tuple[str, Service]]:
    """The services to supervise with the run's others; empty when no alert target is configured."""
    alerting = build_alerting(cockpit, config, environ, **options)
    return [] if alerting is None else alerting.services
