"""Where the commands that talk to a venue find things and write: the market listing's URL for a
CLOB, and a fresh event-log path (its own module, so that ``cli_live`` and ``cli_wallet_chain``
share them without importing each other)."""

from __future__ import annotations

from pathlib import Path

GAMMA_FOR = {"https://clob.polymarket.com": "https://gamma-api.polymarket.com"}  # Polymarket lists elsewhere


def gamma_url(gamma: str | None, rest: str) -> str:
    """The market listing's base URL: ``--gamma``; else Polymarket's Gamma for its CLOB; else the
    simulator's, ``{rest}/gamma`` (any other CLOB is taken for a simulator)."""
    rest = rest.rstrip("/")
    return gamma or GAMMA_FOR.get(rest, f"{rest}/gamma")


def fresh_db(path: Path) -> Path:
    """``path`` ready for a new event log: its directory made, an old log (and its WAL) removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    return path
