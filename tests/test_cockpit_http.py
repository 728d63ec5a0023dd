"""The run's HTTP server over real loopback sockets: a paper run on the simulator with the server
as one of its services (port 0), driven with httpx — the state, the live stream, the token-guarded
controls acting on the decision task (seen in the log), /metrics parsed by prometheus-client and
/healthz going degraded when the simulator stalls the feed, down when a breaker trips. Then the
app alone, with a fake snapshot and controls: the token's rules, cross-site posts, bad bodies,
the page, a port in use."""

from __future__ import annotations

import contextlib

import functools
import json

import httpx
import pytest
import sqlite_utils
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mmbot import app
from mmbot.app_cockpit import Cockpit
from mmbot.app_metrics import cockpit_http
from mmbot.clock import TrioClock
from mmbot.cockpit.http import MAX_STREAMS, bind, make_app, new_token, serve_http
from mmbot.cockpit.snapshot import FeedRow, Snapshot
from mmbot.config import Config, Secret
from mmbot.venues.simulator.faults import Fault
from tests.test_paper_live import START_NS, serve

TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAMILIES = {  # every family issue 13 item 4 lists, by its name in the exposition (counters without _total)
    "mmbot_frames", "mmbot_messages", "mmbot_frames_malformed", "mmbot_books", "mmbot_books_stale",
    "mmbot_book_staleness_seconds", "mmbot_feed_lag_seconds", "mmbot_bus_slot_drops", "mmbot_bus_stream_backlog",
    "mmbot_bus_stream_peak_backlog", "mmbot_intents", "mmbot_rejections", "mmbot_orders", "mmbot_fills",
    "mmbot_fees_pusd", "mmbot_cash_pusd", "mmbot_reserved_pusd", "mmbot_pnl_pusd", "mmbot_position_shares",
    "mmbot_rest_request_seconds", "mmbot_rest_throttled", "mmbot_corrections", "mmbot_unknown_outcomes",
    "mmbot_restarts", "mmbot_breaker_tripped", "mmbot_heartbeats", "mmbot_health",
}


def rows(db, kind: str) -> list[tuple[int, dict]]:
    return [(t, json.loads(p)) for t, p in sqlite_utils.Database(db).execute(
        "SELECT ts_ns, payload FROM events WHERE kind = ? ORDER BY seq", [kind]).fetchall()]


def samples(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(families: dict[str, list], name: str, sample: str | None = None, **labels: str) -> float:
    return sum(s.value for s in families[name] if s.name == (sample or name) and all(
        s.labels.get(k) == v for k, v in labels.items()))


async def health_until(http: httpx.AsyncClient, status: str, *, within_s: int) -> dict:
    for _ in range(within_s * 10):
        answer = await http.get("/healthz")
        if answer.json()["status"] == status:
            return {"code": answer.status_code, **answer.json()}
        await trio.sleep(0.1)
    raise AssertionError(f"/healthz never said {status} in {within_s} s; last {answer.json()}")


async def test_a_paper_runs_state_stream_controls_metrics_and_health_over_http(nursery, autojump_clock, tmp_path):
    server, urls, markets = await serve(nursery, markets=4, seed=5)
    clock = TrioClock(anchor_ns=START_NS)
    db = tmp_path / "paper.db"
    bound: list[tuple[str, int]] = []
    engines = []
    explode = trio.Event()

    async def fragile(*, task_status=trio.TASK_STATUS_IGNORED) -> None:  # a service that keeps crashing
        task_status.started()
        await explode.wait()
        raise RuntimeError("crashed on purpose")

    def services(engine, live=None):
        engines.append(engine)
        cockpit = Cockpit(engine, mode="paper", wall=clock.now_ns)
        return [cockpit_http(cockpit, host="127.0.0.1", port=0, token=Secret(value=TOKEN), on_started=bound.append,
                             services=("fragile",)), ("fragile", fragile)]

    stop = trio.Event()
    async with trio.open_nursery() as inner:
        inner.start_soon(functools.partial(app.run_paper, config=Config(seed=2), markets=markets, ws_url=urls.ws,
                                           db_path=db, clock=clock, stop=stop, extra_services=services))
        while not bound:
            await trio.sleep(0.1)
        ((host, port),), (engine,) = bound, engines
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=600) as http:
            await trio.sleep(60)
            state = (await http.get("/api/state")).json()
            assert state["mode"] == "paper" and len(state["markets"]) == len(markets) and state["fills"] > 0
            assert {m["slug"] for m in state["markets"]} == {m.slug for m in markets}
            assert state["pnl_history"] and isinstance(state["pnl"], str) and state["health"]["status"] == "ok"
            assert (await http.get("/healthz")).json() == {"status": "ok"}

            events = []  # the live stream: a state at once, then one a second
            async with http.stream("GET", "/api/stream") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                        if len(events) == 3:
                            break
            assert len({e["now_ms"] for e in events}) == 3 and all("health" in e for e in events)

            server.pause()  # the world holds still: the figures scraped are the engine's now
            await trio.sleep(1)
            families = samples((await http.get("/metrics")).text)
            assert FAMILIES <= set(families), FAMILIES - set(families)
            assert value(families, "mmbot_frames", "mmbot_frames_total", channel="market") == engine.frames.frames > 0
            assert value(families, "mmbot_fills", "mmbot_fills_total") == engine.executor.counts["fills"] > 0
            assert value(families, "mmbot_feed_lag_seconds", "mmbot_feed_lag_seconds_count") > 0
            assert value(families, "mmbot_cash_pusd") == engine.executor.ledger.cash / 1e6  # float-ok: exposition
            assert value(families, "mmbot_breaker_tripped", service="fragile") == 0
            assert sum(s.value for s in families["mmbot_position_shares"]) > 0
            assert all(s.labels["slug"] in {m.slug for m in markets} for s in families["mmbot_position_shares"])
            assert value(families, "mmbot_books", state="synced") == 2 * len(markets)
            server.resume()

            assert (await http.post("/api/pause")).status_code == 401
            assert (await http.post("/api/pause", headers={"Authorization": "Bearer wrong"})).status_code == 401
            assert (await http.get("/api/pause", headers=AUTH)).status_code == 405
            answer = await http.post("/api/pause", headers=AUTH, json={"reason": "lunch"})
            assert answer.status_code == 200 and answer.json() == {"ok": True, "action": "pause"}
            await trio.sleep(1)
            paused_at = clock.now_ns()
            verdict = await health_until(http, "degraded", within_s=2)
            assert verdict["code"] == 200 and "paused by the operator" in verdict["reasons"]
            await trio.sleep(30)
            answer = await http.post("/api/resume", headers={"X-MMBOT-Token": TOKEN})
            assert answer.json() == {"ok": True, "action": "resume"}
            resumed_at = clock.now_ns()
            await health_until(http, "ok", within_s=30)

            server.inject(Fault(kind="stall"))  # the feed goes silent: the run gives the connection up
            # its only connection given up after 30 s silent, replaced within a second: every feed down
            verdict = await health_until(http, "down", within_s=60)
            assert verdict["code"] == 503 and verdict["reasons"][0].startswith("every market feed down: market-")
            await health_until(http, "ok", within_s=60)  # reconnected, books fresh again

            explode.set()  # three crashes in a row: the breaker trips, the run stops quoting
            verdict = await health_until(http, "down", within_s=60)
            assert verdict["code"] == 503 and any("breaker tripped: fragile" in r for r in verdict["reasons"])
            families = samples((await http.get("/metrics")).text)
            assert value(families, "mmbot_breaker_tripped", service="fragile") == 1
            assert value(families, "mmbot_health") == 2 and value(families, "mmbot_restarts", "mmbot_restarts_total") >= 2
        stop.set()
    submits = [t for t, _ in rows(db, "submit")]
    assert not [t for t in submits if paused_at <= t < resumed_at]  # nothing new while paused
    assert [t for t in submits if t >= resumed_at]  # quoting came back
    commands = [(p["action"], p["source"], p["reason"]) for _, p in rows(db, "operator_command")]
    assert commands[0] == ("pause", "http", "lunch") and commands[1][:2] == ("resume", "http")


# --------------------------------------------------------------------------- the app alone


def _snapshot(**changes) -> Snapshot:
    base = dict(mode="paper", started_wall_ns=1_000_000, wall_ns=2_000_000, cash=10_000_000, reserved=0,
                realised=0, unrealised=0, fees=0, start_cash=10_000_000, fills=0, maker_fills=0, taker_fills=0,
                orders_by_state={}, intents_by_strategy={}, rejections={}, paused=False, halted=False,
                gate_open=True, tripped=(), markets=(),
                feeds=(FeedRow(name="market-0", kind="market", up=True, since_wall_ns=1, reason="", sessions=1,
                               assets=8),),
                notices=(), recent_fills=(), pnl_history=(), counts={})
    return Snapshot(**{**base, **changes})


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def pause(self, source: str, reason: str = "") -> None:
        self.calls.append(("pause", source, reason))

    def resume(self, source: str, reason: str = "") -> None:
        self.calls.append(("resume", source, reason))

    def cancel_all(self, source: str, reason: str = "") -> None:
        self.calls.append(("cancel_all", source, reason))


@pytest.fixture
async def alone(nursery):
    controls = Recorder()
    current = {"snap": _snapshot()}
    application = make_app(snapshot=lambda: current["snap"], controls=controls, metrics=CollectorRegistry(),
                           token=TOKEN, stream_interval_s=40)
    host, port = await nursery.start(serve_http, application, "127.0.0.1", 0)
    # no client timeout: with nothing else scheduled, the autojump clock would jump straight to it
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=None) as http:
        yield http, controls, current, (host, port)


async def test_actions_need_the_token_and_a_same_site_origin(alone, autojump_clock):
    http, controls, _, (host, port) = alone
    assert (await http.post("/api/cancel-all", headers={"Authorization": "Basic " + TOKEN})).status_code == 401
    assert (await http.post("/api/cancel-all", headers={"X-MMBOT-Token": TOKEN[:-1]})).status_code == 401
    assert (await http.post("/api/cancel-all", headers={**AUTH, "Origin": "http://evil.example"})).status_code == 403
    assert (await http.post("/api/cancel-all", headers={**AUTH, "Origin": "null"})).status_code == 403
    assert (await http.post("/api/cancel-all", headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
                            content=b"reason=x")).status_code == 400
    assert (await http.post("/api/cancel-all", headers=AUTH, json=["not", "an", "object"])).status_code == 400
    assert controls.calls == []
    answer = await http.post("/api/cancel-all", headers={**AUTH, "Origin": f"http://{host}:{port}"},
                             json={"reason": "  too\nmuch   risk " + "x" * 500})
    assert answer.json() == {"ok": True, "action": "cancel_all"}
    assert (await http.post("/api/resume", headers=AUTH)).json() == {"ok": True, "action": "resume"}
    (action, source, reason), resume = controls.calls
    assert (action, source) == ("cancel_all", "http") and reason.startswith("too much risk x") and len(reason) == 200
    assert resume == ("resume", "http", "")
    for path in ("/api/pause", "/api/resume", "/api/cancel-all"):
        assert (await http.get(path)).status_code == 405


async def test_health_codes_the_page_static_files_and_a_quiet_stream(alone, autojump_clock):
    http, _, current, _ = alone
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    current["snap"] = _snapshot(paused=True)
    answer = await http.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "degraded", "reasons": ["paused by the operator"]}
    current["snap"] = _snapshot(tripped=("decisions",), halted=True)
    answer = await http.get("/healthz")
    assert answer.status_code == 503 and answer.json()["status"] == "down"
    assert (await http.get("/api/state")).json()["health"]["status"] == "down"
    page = await http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (await http.get("/static/no-such-file.js")).status_code == 404
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    lines = []  # a 40 s interval: a state, pings every 15 s, the next state
    async with http.stream("GET", "/api/stream") as stream:
        async for line in stream.aiter_lines():
            lines.append(line)
            if len([x for x in lines if x.startswith("event: state")]) == 2:
                break
    assert lines.count(": ping") == 2


async def test_live_views_are_capped_and_a_closed_one_frees_its_place(alone, autojump_clock):
    """Each live view builds a snapshot a second on the run's thread: at most MAX_STREAMS at once,
    the next refused (503), and a view the browser closed gives its place back."""
    http, _, _, _ = alone

    async def first_event(lines) -> None:  # noqa: ANN001
        async for line in lines:
            if line.startswith("event: state"):
                return

    readers = []  # kept: an abandoned line iterator closes its response, as a browser closing the view
    async with contextlib.AsyncExitStack() as open_views:
        for _ in range(MAX_STREAMS):
            view = await open_views.enter_async_context(http.stream("GET", "/api/stream"))
            assert view.status_code == 200
            readers.append(view.aiter_lines())
            await first_event(readers[-1])
        async with http.stream("GET", "/api/stream") as refused:  # headers only: a stream would never end
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        readers.clear()
    for _ in range(MAX_STREAMS + 8):  # closed ones, over and over: never refused
        async with http.stream("GET", "/api/stream") as view:
            assert view.status_code == 200
            await first_event(view.aiter_lines())
        await trio.sleep(1)


async def test_a_stop_ends_the_streams_cleanly_and_a_port_in_use_is_an_oserror(nursery, autojump_clock):
    stop = trio.Event()
    application = make_app(snapshot=_snapshot, controls=Recorder(), metrics=CollectorRegistry(), token=new_token())
    host, port = await nursery.start(functools.partial(serve_http, application, "127.0.0.1", 0, stop=stop))
    with pytest.raises(OSError):
        bind("127.0.0.1", port)
    with pytest.raises(OSError):
        await serve_http(application, "127.0.0.1", port)
    states = 0
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=None) as http:
        async with http.stream("GET", "/api/stream") as stream:
            async for line in stream.aiter_lines():  # ends when the server ends the response, not by error
                if line.startswith("event: state"):
                    states += 1
                    if states == 2:
                        stop.set()
    assert states >= 2
    sockets = bind("127.0.0.1", 0)  # bound ahead (the CLI's check), then served
    port2 = sockets.insecure_sockets[0].getsockname()[1]
    assert await nursery.start(functools.partial(serve_http, application, "127.0.0.1", 0, sockets=sockets)) == (
        "127.0.0.1", port2)
    assert len(new_token()) >= 32 and new_token() != new_token()
