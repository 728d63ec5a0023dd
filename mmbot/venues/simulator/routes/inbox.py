"""A webhook receiver for trying mmbot's alerts against the simulator (not the venue's): ``POST
/inbox`` takes any JSON body an alert webhook sends (generic, Slack, Discord or Telegram shaped),
keeps the last ``KEPT`` and tells each as one line through ``on_alert``; ``GET /inbox`` lists them,
newest last. Loopback clients only (else 403): it stands in for Slack or Telegram on the
operator's own machine, ``MMBOT_ALERT_URL=http://127.0.0.1:8080/inbox``."""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.venues.simulator.routes import error
from mmbot.venues.simulator.routes.admin import loopback

KEPT = 100


def alert_line(body: Any) -> str:
    """The text a person reads of one alert body, whichever format sent it."""
    if isinstance(body, dict):
        for key in ("text", "content"):  # slack / telegram, discord
            if isinstance(body.get(key), str):
                return " ".join(body[key].split())[:300]
        if isinstance(body.get("title"), str):  # mmbot's generic JSON
            return f"{body.get('level', '')} {body['title']}: {body.get('text', '')}".strip()[:300]
    return json.dumps(body)[:300]


class AlertInbox:
    def __init__(self, on_alert: Callable[[str], None] = lambda line: None) -> None:
        self.received: deque[Any] = deque(maxlen=KEPT)
        self._on_alert = on_alert

    def routes(self) -> list[Route]:
        return [Route("/inbox", self.receive, methods=["POST"]), Route("/inbox", self.listing, methods=["GET"])]

    async def receive(self, request: Request) -> Response:
        if not loopback(request.client.host if request.client else ""):
            return error(403, "inbox: only from loopback")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "inbox: expected a JSON body")
        self.received.append(body)
        self._on_alert(alert_line(body))
        return JSONResponse({"ok": True})

    async def listing(self, request: Request) -> Response:
        if not loopback(request.client.host if request.client else ""):
            return error(403, "inbox: only from loopback")
        return JSONResponse({"alerts": list(self.received)})
