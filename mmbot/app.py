"""Composition root: config + mode → wired objects and the nursery tree (DESIGN §6, §7).

Modes differ only in what is injected. The root is split by concept, and this module names what
it offers in one place:

- ``app_engine``: the engine (every object one run wires together), the gateway factory of the
  paper venue, supervision of services, and the memory nursery that closes a failed run's log;
- ``app_replay``: replay of a recording on Trio's MockClock;
- ``app_tree``: the nursery tree of a run on a live feed, its market channel and Gamma services,
  and paper trading;
- ``app_live``: signed trading (``--mode sim`` and ``--mode live``).
"""

from __future__ import annotations

from mmbot.app_engine import (
    SHUTDOWN_GRACE_S,
    Engine,
    book_updates,
    build_engine,
    memory_nursery,
    paper_gateway,
    run_decisions,
    stop_safely,
    supervised,
)
from mmbot.app_replay import replay
from mmbot.app_tree import (
    follow_listings,
    gamma_services,
    listing_details,
    market_channel,
    market_feed,
    resolution_watch,
    run_live_tree,
    run_paper,
)

__all__ = [
    "SHUTDOWN_GRACE_S",
    "Engine",
    "book_updates",
    "build_engine",
    "follow_listings",
    "gamma_services",
    "listing_details",
    "market_channel",
    "market_feed",
    "memory_nursery",
    "paper_gateway",
    "replay",
    "resolution_watch",
    "run_decisions",
    "run_live_tree",
    "run_paper",
    "stop_safely",
    "supervised",
]
