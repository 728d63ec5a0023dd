"""The simulator's HTTP routes, grouped by concern: public market data (``market``), the
Gamma-like listing (``gamma``), API keys (``auth``), signed trading (``trading``) and the
operator's admin endpoints (``admin``). Each is a small class given the state it serves;
``server.SimServer.http_app`` puts their routes together."""

from __future__ import annotations

from starlette.responses import JSONResponse


def error(status: int, text: str) -> JSONResponse:
    """The venue's shape for a refused request: ``{"error": text}``."""
    return JSONResponse({"error": text}, status_code=status)
