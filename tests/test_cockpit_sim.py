"""The cockpit of signed trading (``--mode sim``) over loopback against the simulator: what only a
venue session has — the user channel, heartbeats, REST requests and their latency — reaches
``/metrics``, ``/healthz`` and the alerts, as ``mmbot run`` wires them (``cli_cockpit``)."""

from __future__ import annotations

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from mmbot.app_alerts import build_alerting
from mmbot.app_cockpit import Cockpit
from mmbot.app_live import run_trading
from mmbot.app_metrics import cockpit_http
from mmbot.clock import TrioClock
from mmbot.config import AlertsConfig, Config, MergeConfig, StrategiesConfig
from mmbot.model import ONE
from mmbot.venues.simulator.server import Fault
from mmbot.venues.simulator.trading import credentials_for
from tests.test_sim_mode import KEY, START_NS, start_sim

TOKEN = "sim-cockpit-token-0123456789"
CONFIG = Config(seed=2, strategies=StrategiesConfig(merge=MergeConfig(enabled=False)),
                alerts=AlertsConfig(feed_down_after_s=10, min_interval_s=600))


def families(text: str) -> dict[str, dict[tuple, float]]:
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_signed_trading_shows_its_user_channel_heartbeats_and_rest_latency(nursery, autojump_clock, tmp_path):
    server, urls, markets = await start_sim(nursery, interval_s=60)
    clock = TrioClock(anchor_ns=START_NS)
    bound: list[tuple[str, int]] = []
    cockpits: list[Cockpit] = []

    def services(engine, live):  # noqa: ANN001, ANN202  as cli_cockpit.CockpitPlan.services does
        cockpit = Cockpit(engine, mode="sim", wall=clock.now_ns)
        cockpit.watch.add_expected("user", "user")
        cockpits.append(cockpit)
        alerting = build_alerting(cockpit, CONFIG.alerts, {"MMBOT_ALERT_URL": f"{urls.rest}/inbox"})
        assert alerting is not None
        return [cockpit_http(cockpit, host="127.0.0.1", port=0, token=TOKEN, user=live.user, rest=live.rest,
                             services=live.services, on_started=bound.append), *alerting.services]

    stop = trio.Event()
    async with trio.open_nursery() as inner:
        inner.start_soon(lambda: run_trading(
            config=CONFIG, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url, rest_url=urls.rest, key=KEY,
            creds=None, db_path=tmp_path / "sim.db", mode="sim", clock=clock, stop=stop, extra_services=services))
        await trio.sleep(40)
        (host, port), = bound
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=None) as cockpit_http_client:
            assert (await cockpit_http_client.get("/healthz")).json() == {"status": "ok"}
            seen = families((await cockpit_http_client.get("/metrics")).text)
            requests = sum(seen["mmbot_rest_request_seconds_count"].values())
            assert requests > 10  # orders, cancels, heartbeats: every REST call timed
            assert any(dict(labels).get("endpoint", "").startswith("POST ") for labels in seen["mmbot_rest_requests_total"])
            assert seen["mmbot_heartbeats_total"][(("result", "ok"),)] > 0
            assert seen["mmbot_feed_up"][(("connection", "user"), ("kind", "user"))] == 1
            assert sum(seen["mmbot_connection_frames_total"][k] for k in seen["mmbot_connection_frames_total"]
                       if ("connection", "user") in k) > 0
            state = (await cockpit_http_client.get("/api/state")).json()
            assert {f["name"]: f["up"] for f in state["feeds"]} == {"market-1": True, "user": True}

            server.inject(Fault(kind="outage", value="20"))  # both channels: the user channel too
            await trio.sleep(15)
            health = (await cockpit_http_client.get("/healthz")).json()
            assert health["status"] == "down" and any(r.startswith("user channel down") for r in health["reasons"]), health
            assert not (await cockpit_http_client.get("/api/state")).json()["gate_open"]  # no order while blind
            await trio.sleep(30)
            assert (await cockpit_http_client.get("/healthz")).json() == {"status": "ok"}
        stop.set()
    kinds = [alert["kind"] for alert in server.inbox.received]
    assert kinds[:2] in (["feed_down", "user_down"], ["user_down", "feed_down"]), kinds
    assert {"feed_up", "user_up"} <= set(kinds)


async def test_the_daily_loss_flatten_in_signed_trading_sells_back_stops_and_leaves_the_ledger_equal_to_the_venue(
        nursery, autojump_clock, tmp_path):
    """``on_daily_loss = "flatten"`` against the simulator's venue: the shares the account held are
    sold back at the venue's bids, the run stops by itself, nothing of ours stays open there, and
    the ledger equals the venue's account to the micro-unit. The loss is made sure of, not hoped
    for: a taker told to buy complete sets up to 1.5 pUSD a set buys them at once above 1, fees on
    top, while the maker rests its quotes (the flatten cancels them).)"""
    import attrs
    import sqlite_utils

    server, urls, markets = await start_sim(nursery, interval_s=300)
    creds = credentials_for(KEY.address)
    held = {markets[0].tokens[0]: 30 * ONE, markets[1].tokens[1]: 12_500_000}  # from before this run
    server.trading.give(creds.api_key, shares=held)
    losing = attrs.evolve(CONFIG.strategies.taker, min_edge=-500_000)  # what no config file may say (range-checked)
    config = attrs.evolve(CONFIG, risk=attrs.evolve(CONFIG.risk, max_daily_loss=ONE // 2, on_daily_loss="flatten",
                                                    min_edge=-500_000),
                          strategies=attrs.evolve(CONFIG.strategies, taker=losing))
    db = tmp_path / "flatten.db"
    # It stops itself within seconds. The duration is only a net: no fail_after here, as the autojump
    # clock leaps to the nearest deadline whenever every task waits, a worker thread's write included.
    engine = await run_trading(
        config=config, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url, rest_url=urls.rest, key=KEY,
        creds=None, db_path=db, mode="sim", clock=TrioClock(anchor_ns=START_NS), duration_s=3_600)
    rows = sqlite_utils.Database(db)
    kinds = [r["kind"] for r in rows["events"].rows_where(
        "kind IN ('daily_loss_flatten', 'flatten_done', 'stop_requested', 'run_end') ORDER BY seq")]
    assert kinds == ["daily_loss_flatten", "flatten_done", "stop_requested", "run_end"], kinds
    (ended,) = [r["ts_ns"] for r in rows["events"].rows_where("kind = 'run_end'")]
    assert ended - START_NS < 3_000 * 1_000_000_000  # stopped by the flatten, not by the hour's net
    import json

    (start,) = [json.loads(r["payload"]) for r in rows["events"].rows_where("kind = 'daily_loss_flatten'")]
    (done,) = [json.loads(r["payload"]) for r in rows["events"].rows_where("kind = 'flatten_done'")]
    assert set(held) <= set(start["positions"]) and done["sold"] > 0, (start, done)  # it held shares, sold them back
    assert start["daily_pnl"] <= -ONE // 2
    assert not [r for r in rows["events"].rows_where("kind = 'submit' AND seq > (SELECT seq FROM events WHERE"
                                                     " kind = 'daily_loss_flatten')")
                if '"side":"BUY"' in r["payload"]]  # no buy after the flatten began
    api_key = creds.api_key
    account = server.trading._accounts[api_key]
    ledger = engine.executor.ledger
    assert ledger.cash == server.trading.cash(account)
    truth = server.venue.user_feed.positions.get(api_key, {})
    assert {t: n for t, n in truth.items() if n} == {t: n for t, n in ledger.snapshot()["positions"].items() if n}
    assert engine.executor.orders.open_count() == 0
    assert server.trading.open_orders(account) == []  # nothing of ours left resting at the venue
    ledger.check()
