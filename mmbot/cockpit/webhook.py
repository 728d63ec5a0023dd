"""Alerts out of the process: the request bodies of each webhook format, and ``AlertSender``, the
service that posts them.

Formats (``[alerts] format`` or ``MMBOT_ALERT_FORMAT``):

- ``generic``: ``{"kind", "level", "title", "text", "run", "at", "at_ms", "fields", "more"}``;
- ``slack``: ``{"text", "blocks"}`` (Slack incoming webhooks; Discord takes it at its ``/slack`` URL);
- ``discord``: ``{"content", "allowed_mentions"}`` (Discord's own webhook; mentions never ping);
- ``telegram``: ``{"chat_id", "text"}`` to ``<api>/bot<TOKEN>/sendMessage`` (the Bot API).

The sender keeps a bounded queue (the oldest alert goes when it is full, counted), posts with a
timeout, retries a 429, a 5xx or a transport error with the shared ``Backoff`` (a ``Retry-After``
is a floor), and records ``alert_sent`` / ``alert_failed`` rows with the alert's kind, the format
and the HTTP status — never the URL, which is a secret (Slack's and Discord's URLs carry their
token, Telegram's the bot token), nor an exception's message, which may quote it.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from datetime import datetime, timezone
from typing import Any

import attrs
import httpx
import trio

from mmbot.backoff import Backoff
from mmbot.cockpit.alerts import Alert
from mmbot.config import Secret
from mmbot.ports import EventSink

FORMATS = ("generic", "slack", "discord", "telegram")
_ICON = {"error": "\U0001F534", "warning": "\U0001F7E0", "info": "\U0001F7E2"}  # red, orange, green circles
_LIMITS = {"discord": 2000, "telegram": 4096}  # characters a message may have


@attrs.frozen(repr=False)
class Target:
    """Where alerts go: the format and the URL to post to (a secret), and Telegram's chat."""

    format: str
    url: Secret
    chat_id: str = ""

    def __attrs_post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"alert format: expected one of {', '.join(FORMATS)}, got {self.format!r}")

    def __repr__(self) -> str:
        return f"Target(format={self.format!r}, url='***')"


def _at(wall_ns: int) -> str:
    seconds, rest = divmod(wall_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1_000_000:03d}Z"


def plain_text(alert: Alert, run: str) -> str:
    lines = [f"{_ICON.get(alert.level, '')} {alert.level.upper()} · {alert.title}".strip(), alert.full_text]
    lines += [f"{name}: {value}" for name, value in alert.fields]
    lines.append(f"mmbot {run} · {_at(alert.at_wall_ns)}")
    return "\n".join(lines)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body(alert: Alert, fmt: str, *, run: str, chat_id: str = "") -> dict[str, Any]:
    """The JSON body of ``alert`` in format ``fmt``; ``run`` names the run (its mode and log)."""
    if fmt == "generic":
        return {"kind": alert.kind, "level": alert.level, "title": alert.title, "text": alert.full_text, "run": run,
                "at": _at(alert.at_wall_ns), "at_ms": alert.at_wall_ns // 1_000_000, "fields": dict(alert.fields),
                "more": alert.more}
    if fmt == "slack":
        icon = _ICON.get(alert.level, "")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": f"{icon} {alert.title}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(alert.full_text)[:3000]}},
        ]
        if alert.fields:
            blocks.append({"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*{_slack_escape(name)}*\n{_slack_escape(value)}"[:2000]}
                for name, value in alert.fields[:10]]})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _slack_escape(f"mmbot {run} · {alert.level} · {_at(alert.at_wall_ns)}")}]})
        text = _slack_escape(f"{icon} {alert.title}: {alert.full_text}")
        return {"text": text[:3000], "blocks": blocks}
    if fmt not in _LIMITS:
        raise ValueError(f"alert format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    text = plain_text(alert, run)
    limit = _LIMITS[fmt]
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    if fmt == "discord":
        return {"content": text, "allowed_mentions": {"parse": []}}
    return {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}


class _Redact(logging.Filter):
    """httpx logs each request's URL at INFO: should anyone turn that on, the secret URLs show as ***."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(secret in message for secret in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, ()
        return True


_REDACT = _Redact()
logging.getLogger("httpx").addFilter(_REDACT)


def _retry_after(response: httpx.Response) -> float | None:  # float-ok: a delay
    header = response.headers.get("retry-after", "")
    if header.isdigit():
        return min(int(header), 300)
    try:  # Telegram: {"ok": false, "parameters": {"retry_after": N}}
        value = response.json().get("parameters", {}).get("retry_after")
    except (ValueError, AttributeError):
        return None
    return min(value, 300) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class AlertSender:
    """One target's queue and sender. ``offer`` (sync, from any task on the run's thread) queues an
    alert; ``run`` is the supervised service that posts them in order."""

    def __init__(self, target: Target, *, run: str, sink: EventSink, rng: random.Random, capacity: int = 100,
                 timeout_s: float = 10, attempts: int = 5, backoff_base_s: float = 1, backoff_cap_s: float = 30,
                 grace_s: float = 5, transport: httpx.AsyncBaseTransport | None = None) -> None:  # float-ok: delays
        self.target = target
        self._run = run
        self._sink = sink
        self._queue: deque[Alert] = deque()
        self._capacity = capacity
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._backoff = Backoff(base_s=backoff_base_s, cap_s=backoff_cap_s, rng=rng)
        self._grace_s = grace_s
        self._transport = transport
        self._wake = trio.Event()
        self._dropped: Counter[str] = Counter()  # kinds dropped from a full queue, not recorded yet
        self._current: Alert | None = None
        self._rows = 0
        self._log_closed = False
        self.counts: Counter[str] = Counter()  # offered, sent, failed, dropped, retries
        _REDACT.secrets.add(target.url.reveal())

    def offer(self, alert: Alert) -> None:
        self.counts["offered"] += 1
        if len(self._queue) >= self._capacity:
            lost = self._queue.popleft()
            self._dropped[lost.kind] += 1
            self.counts["dropped"] += 1
        self._queue.append(alert)
        self._wake.set()

    def statistics(self) -> dict[str, int]:
        return {**self.counts, "queued": len(self._queue)}

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport,
                                     follow_redirects=False) as client:
            task_status.started()
            try:
                while True:
                    self._record_dropped()
                    if not self._queue:
                        await self._wake.wait()
                        self._wake = trio.Event()
                        continue
                    self._current = self._queue.popleft()
                    await self._deliver(client, self._current, self._attempts)
                    self._current = None
            except trio.Cancelled:
                # The run is stopping: what is queued (the alerts of its last moments, such as
                # chain_unsettled) gets one try each, for a short while.
                with trio.move_on_after(self._grace_s, shield=True):
                    if self._current is not None:
                        self._queue.appendleft(self._current)
                        self._current = None
                    while self._queue:
                        await self._deliver(client, self._queue.popleft(), 1)
                    self._record_dropped()
                raise

    async def flush(self, grace_s: float | None = None) -> None:  # float-ok: a delay
        """Post what is queued, one try each, within ``grace_s``: after the run's services stopped,
        for what its last rows raised (``run_failed``). The run's log is closed by then, so no
        ``alert_sent`` / ``alert_failed`` rows: the counts say how it went."""
        self._log_closed = True
        async with httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport,
                                     follow_redirects=False) as client:
            with trio.move_on_after(self._grace_s if grace_s is None else grace_s):
                while self._queue:
                    await self._deliver(client, self._queue.popleft(), 1)

    def _record_dropped(self) -> None:
        for kind, n in sorted(self._dropped.items()):
            self._record("alert_failed", {"kind": kind, "format": self.target.format, "status": None,
                                          "error": "queue full: dropped", "dropped": n, "attempts": 0})
        self._dropped.clear()

    def _record(self, kind: str, payload: dict[str, Any]) -> None:
        if self._log_closed:
            return
        self._rows += 1
        self._sink.record(kind, f"alert{self._rows}", payload)

    async def _deliver(self, client: httpx.AsyncClient, alert: Alert, attempts: int) -> None:
        fmt = self.target.format
        payload = body(alert, fmt, run=self._run, chat_id=self.target.chat_id)
        status: int | None = None
        error = ""
        for attempt in range(1, attempts + 1):
            advised = None
            try:
                response = await client.post(self.target.url.reveal(), json=payload)
            except httpx.HTTPError as exc:
                status, error = None, type(exc).__name__  # never str(exc): it may quote the URL
            else:
                status = response.status_code
                if status < 300:
                    self._backoff.reset()
                    self.counts["sent"] += 1
                    self._record("alert_sent", {"kind": alert.kind, "format": fmt, "status": status,
                                                "attempts": attempt, "more": alert.more})
                    return
                error = f"HTTP {status}"
                if status != 429 and status < 500:
                    break  # the receiver refuses this body or URL: trying again changes nothing
                advised = _retry_after(response)
            if attempt < attempts:
                self.counts["retries"] += 1
                await trio.sleep(self._backoff.next_s(advised))
        self._backoff.reset()
        self.counts["failed"] += 1
        self._record("alert_failed", {"kind": alert.kind, "format": fmt, "status": status, "error": error,
                                      "attempts": attempt})
