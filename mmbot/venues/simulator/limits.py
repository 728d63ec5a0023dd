"""The size of a request the simulator will read: ``BodyLimit``, an ASGI middleware in front of
every HTTP route.

The largest body the venue has a use for is a ``DELETE /orders`` of 3,000 order ids (about
210 kB as JSON: 66 characters an id, quotes and separators) or a batch of 15 signed orders
(about 15 kB); ``MAX_BODY_BYTES`` leaves room above that. A longer body is answered 413 without
being read to its end, and one whose ``Content-Length`` already says so is answered at once.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 256 * 1024
TOO_LARGE = "request body too large"


class BodyLimit:
    """Reads each HTTP request's body whole, up to ``limit`` bytes, before the app sees it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = [value for name, value in scope["headers"] if name == b"content-length"]
        if any(v.isdigit() and int(v) > self._limit for v in declared):  # h11 refuses one that is no number
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"error": TOO_LARGE}, status_code=413, headers={"Connection": "close"})(scope, receive, send)
