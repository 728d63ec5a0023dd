"""The alert webhook (cockpit/webhook.py) against a local receiver: a small Starlette app served
by hypercorn on Trio at 127.0.0.1:0, recording every body it is posted and answering as it is
told (a status list: 503s, 429s with Retry-After, 404). Each format's body, the retries and
their backoff, the bounded queue, the flush at cancellation, and that neither the URL nor the
token shows in a row or a log line."""

from __future__ import annotations

import functools
import json
import logging
import random
from typing import Any

import attrs
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mmbot.cockpit.alerts import Alert
from mmbot.cockpit.webhook import AlertSender, Target, body
from mmbot.config import Secret

TOKEN = "123456:AAsekritsekritsekritsekrit"
WALL = 1_760_000_000_123_000_000
ALERT = Alert(kind="feed_down", level="error", title="Market feed down", text="market-1 down for 31 s <&>",
              fields=(("connections", "market-1"), ("down for", "31 s")), at_wall_ns=WALL, more=2)


@attrs.define
class Receiver:
    """What was posted (path, JSON body), and the answers to give, in order (then 200)."""

    url: str = ""
    got: list[tuple[str, Any]] = attrs.field(factory=list)
    answers: list[tuple[int, dict[str, str]]] = attrs.field(factory=list)
    hang: bool = False

    async def post(self, request: Request) -> JSONResponse:
        self.got.append((request.url.path, json.loads(await request.body())))
        if self.hang:
            await trio.sleep_forever()
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return JSONResponse({"ok": status < 300}, status_code=status, headers=headers)

    def bodies(self) -> list[Any]:
        return [b for _, b in self.got]


async def receive(nursery: trio.Nursery) -> Receiver:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.post, methods=["POST"])])
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    binds = await nursery.start(functools.partial(hypercorn_serve, app, config))
    receiver.url = binds[0]
    return receiver


async def creep() -> None:
    """Keep the autojump clock to small steps while a real socket is waited on (else it jumps
    straight to the request's timeout)."""
    while True:
        await trio.sleep(0.01)


@attrs.define
class Sink:
    rows: list[tuple[str, dict]] = attrs.field(factory=list)

    def record(self, kind: str, cid: str, payload: dict | None = None, *, market: str = "", token: str = "") -> None:
        self.rows.append((kind, dict(payload or {})))

    def of(self, kind: str) -> list[dict]:
        return [p for k, p in self.rows if k == kind]


def sender(target: Target, sink: Sink, **kw: Any) -> AlertSender:
    return AlertSender(target, run="paper run", sink=sink, rng=random.Random(1), **kw)


async def until(condition, limit_s: int = 120) -> None:
    with trio.fail_after(limit_s):
        while not condition():
            await trio.sleep(0.05)


# --------------------------------------------------------------------------- the formats


def test_each_format_has_the_fields_its_receiver_reads():
    generic = body(ALERT, "generic", run="paper run")
    assert generic == {"kind": "feed_down", "level": "error", "title": "Market feed down",
                       "text": "market-1 down for 31 s <&> (and 2 more since the last alert of this kind)",
                       "run": "paper run", "at": "2025-10-09T08:53:20.123Z", "at_ms": WALL // 1_000_000,
                       "fields": {"connections": "market-1", "down for": "31 s"}, "more": 2}
    slack = body(ALERT, "slack", run="paper run")
    assert "&lt;&amp;&gt;" in slack["text"] and "<&>" not in slack["text"]  # Slack's three escapes
    assert [b["type"] for b in slack["blocks"]] == ["header", "section", "section", "context"]
    assert slack["blocks"][2]["fields"][0]["text"] == "*connections*\nmarket-1"
    discord = body(ALERT, "discord", run="paper run")
    assert discord["allowed_mentions"] == {"parse": []} and discord["content"].splitlines()[1:] == [
        "market-1 down for 31 s <&> (and 2 more since the last alert of this kind)", "connections: market-1",
        "down for: 31 s", "mmbot paper run · 2025-10-09T08:53:20.123Z"]
    telegram = body(ALERT, "telegram", run="paper run", chat_id="-100")
    assert telegram["chat_id"] == "-100" and telegram["text"] == discord["content"]
    long = attrs.evolve(ALERT, text="x" * 5000, more=0)
    assert len(body(long, "discord", run="r")["content"]) == 2000 and len(body(long, "telegram", run="r")["text"]) == 4096
    assert len(body(long, "slack", run="r")["text"]) <= 3000
    with pytest.raises(ValueError):
        body(ALERT, "teams", run="r")


@pytest.mark.parametrize("fmt", ["generic", "slack", "discord", "telegram"])
async def test_every_format_reaches_a_local_receiver_and_the_row_names_no_url(nursery, autojump_clock, fmt):
    receiver = await receive(nursery)
    nursery.start_soon(creep)
    url = f"{receiver.url}/bot{TOKEN}/sendMessage" if fmt == "telegram" else f"{receiver.url}/hooks/{TOKEN}"
    sink = Sink()
    out = sender(Target(format=fmt, url=Secret(value=url), chat_id="-100" if fmt == "telegram" else ""), sink)
    await nursery.start(out.run)
    out.offer(ALERT)
    await until(lambda: sink.rows)
    (path, got), = receiver.got
    assert got == body(ALERT, fmt, run="paper run", chat_id=out.target.chat_id)
    assert path == (f"/bot{TOKEN}/sendMessage" if fmt == "telegram" else f"/hooks/{TOKEN}")
    assert sink.rows == [("alert_sent", {"kind": "feed_down", "format": fmt, "status": 200, "attempts": 1, "more": 2})]
    assert TOKEN not in repr(out.target) and TOKEN not in json.dumps(sink.rows)


# --------------------------------------------------------------------------- retries and failures


async def test_5xx_and_429_are_retried_with_backoff_and_retry_after_is_a_floor(nursery, autojump_clock):
    receiver = await receive(nursery)
    nursery.start_soon(creep)
    receiver.answers = [(503, {}), (429, {"Retry-After": "7"}), (502, {})]
    sink = Sink()
    out = sender(Target(format="generic", url=Secret(value=receiver.url + "/h")), sink, backoff_base_s=1)
    await nursery.start(out.run)
    started = trio.current_time()
    out.offer(ALERT)
    await until(lambda: sink.rows)
    assert len(receiver.got) == 4 and sink.of("alert_sent")[0]["attempts"] == 4
    assert trio.current_time() - started >= 0.5 + 7 + 2  # jittered 1 s (at least half), the 7 s floor, 2 s
    assert out.counts["retries"] == 3 and out.counts["sent"] == 1


async def test_a_refusal_is_not_retried_and_a_dead_receiver_fails_after_the_attempts(nursery, autojump_clock):
    receiver = await receive(nursery)
    nursery.start_soon(creep)
    receiver.answers = [(404, {})]
    sink = Sink()
    out = sender(Target(format="slack", url=Secret(value=receiver.url + f"/{TOKEN}")), sink)
    await nursery.start(out.run)
    out.offer(ALERT)
    await until(lambda: sink.rows)
    assert sink.rows == [("alert_failed", {"kind": "feed_down", "format": "slack", "status": 404, "error": "HTTP 404",
                                           "attempts": 1})]
    # nothing listens on the port of a closed socket: a transport error, tried `attempts` times
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = sender(Target(format="generic", url=Secret(value=f"http://127.0.0.1:{port}/{TOKEN}")), Sink(), attempts=3)
    await nursery.start(dead.run)
    dead.offer(ALERT)
    await until(lambda: dead.counts["failed"])
    (failed,) = dead._sink.of("alert_failed")
    assert failed == {"kind": "feed_down", "format": "generic", "status": None, "error": "ConnectError", "attempts": 3}
    # a receiver that never answers: the timeout, as a transport error
    receiver.hang = True
    slow = sender(Target(format="generic", url=Secret(value=receiver.url + "/x")), Sink(), attempts=2, timeout_s=3)
    await nursery.start(slow.run)
    slow.offer(ALERT)
    await until(lambda: slow.counts["failed"])
    assert slow._sink.of("alert_failed")[0]["error"] == "ReadTimeout"


async def test_the_queue_keeps_the_newest_and_counts_what_it_dropped(nursery, autojump_clock):
    receiver = await receive(nursery)
    nursery.start_soon(creep)
    sink = Sink()
    out = sender(Target(format="generic", url=Secret(value=receiver.url + "/h")), sink, capacity=10)
    for i in range(13):
        out.offer(attrs.evolve(ALERT, kind=f"k{i}"))
    assert out.statistics() == {"offered": 13, "dropped": 3, "queued": 10}
    await nursery.start(out.run)
    await until(lambda: len(sink.of("alert_sent")) == 10)
    assert [b["kind"] for b in receiver.bodies()] == [f"k{i}" for i in range(3, 13)]
    assert [(p["kind"], p["dropped"]) for p in sink.of("alert_failed")] == [("k0", 1), ("k1", 1), ("k2", 1)]


async def test_what_is_queued_when_the_run_stops_is_still_sent(nursery, autojump_clock):
    receiver = await receive(nursery)
    nursery.start_soon(creep)
    sink = Sink()
    out = sender(Target(format="generic", url=Secret(value=receiver.url + "/h")), sink)
    async with trio.open_nursery() as inner:
        await inner.start(out.run)
        out.offer(ALERT)
        out.offer(attrs.evolve(ALERT, kind="chain_unsettled"))
        inner.cancel_scope.cancel()  # before the sender got to either
    assert [b["kind"] for b in receiver.bodies()] == ["feed_down", "chain_unsettled"]
    assert [p["kind"] for p in sink.of("alert_sent")] == ["feed_down", "chain_unsettled"]
    # and after the run: flush() posts what its last rows raised
    out.offer(attrs.evolve(ALERT, kind="run_failed"))
    rows = len(sink.rows)
    await out.flush()
    assert receiver.bodies()[-1]["kind"] == "run_failed"
    assert len(sink.rows) == rows and out.counts["sent"] == 3  # the log is closed by then: counted, no row


async def test_httpx_log_lines_show_no_secret_url(nursery, autojump_clock, caplog):
    receiver = await receive(nursery)
    nursery.start_soon(creep)
    sink = Sink()
    out = sender(Target(format="telegram", url=Secret(value=f"{receiver.url}/bot{TOKEN}/sendMessage"), chat_id="1"),
                 sink)
    await nursery.start(out.run)
    with caplog.at_level(logging.INFO, logger="httpx"):
        out.offer(ALERT)
        await until(lambda: sink.rows)
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all(TOKEN not in line for line in lines) and "***" in lines[0]


# --------------------------------------------------------------------------- end to end


@attrs.define
class Cable:
    """A loopback TCP relay in front of the simulator's websocket port: ``sever`` closes every
    connection through it and refuses new ones (a network outage, for as long as the test wants:
    the simulator's own faults end when the client reconnects); ``mend`` lets them through again."""

    port: int
    cut: bool = False
    scopes: set = attrs.field(factory=set)

    async def _handle(self, client: trio.SocketStream) -> None:
        if self.cut:
            await client.aclose()
            return
        with trio.CancelScope() as scope:
            self.scopes.add(scope)
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.port)
                async with client, upstream, trio.open_nursery() as pipes:
                    for source, sink in ((client, upstream), (upstream, client)):
                        pipes.start_soon(self._pipe, source, sink, pipes.cancel_scope)
            finally:
                self.scopes.discard(scope)

    @staticmethod
    async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
        try:
            while data := await source.receive_some(65536):
                await sink.send_all(data)
        except trio.BrokenResourceError:
            pass
        done.cancel()

    async def serve(self, nursery: trio.Nursery) -> int:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1"))
        return listeners[0].socket.getsockname()[1]

    def sever(self) -> None:
        self.cut = True
        for scope in list(self.scopes):
            scope.cancel()

    def mend(self) -> None:
        self.cut = False


async def test_a_paper_run_whose_feed_is_cut_alerts_once_then_once_more_when_it_is_back(nursery, autojump_clock,
                                                                                        tmp_path, monkeypatch):
    from urllib.parse import urlsplit

    import sqlite_utils

    from mmbot import app
    from mmbot.app_alerts import alert_services
    from mmbot.app_cockpit import Cockpit
    from mmbot.clock import TrioClock
    from mmbot.config import AlertsConfig, Config
    from tests.test_paper_live import START_NS, serve

    receiver = await receive(nursery)
    _, urls, markets = await serve(nursery, markets=4, seed=5)
    ws = urlsplit(urls.ws)
    cable = Cable(port=ws.port)
    relay_port = await cable.serve(nursery)
    clock = TrioClock(anchor_ns=START_NS)
    db = tmp_path / "paper.db"
    config = Config(seed=2, alerts=AlertsConfig(feed_down_after_s=10, min_interval_s=600, max_per_hour=30))
    environ = {"MMBOT_ALERT_URL": f"{receiver.url}/hook/{TOKEN}"}
    cockpits: list[Cockpit] = []

    def extra(engine, live=None):
        cockpit = Cockpit(engine, mode="paper", wall=clock.now_ns)
        cockpits.append(cockpit)
        return alert_services(cockpit, config.alerts, environ)

    stop = trio.Event()
    async with trio.open_nursery() as inner:
        inner.start_soon(lambda: app.run_paper(config=config, markets=markets, ws_url=f"ws://127.0.0.1:{relay_port}{ws.path}",
                                               db_path=db, clock=clock, stop=stop, extra_services=extra))
        await trio.sleep(20)
        assert receiver.got == []  # nothing to tell while all is well
        for _ in range(2):  # two outages of 30 s, each longer than the 10 s threshold
            cable.sever()
            await trio.sleep(30)
            cable.mend()
            await trio.sleep(70)  # the reconnect's backoff has grown meanwhile (up to 32 s)
            assert cockpits[0].watch.down_for_ns(clock.now_ns()) == {}
        stop.set()
    kinds = [b["kind"] for b in receiver.bodies()]
    assert kinds == ["feed_down", "feed_up"]  # the second outage's pair is held back: 600 s between two of a kind
    down = receiver.bodies()[0]
    assert down["level"] == "error" and down["fields"]["connections"] == "market-1" and down["run"] == "paper run"
    assert int(down["fields"]["down for"].split()[0]) >= 10
    assert all(path == f"/hook/{TOKEN}" for path, _ in receiver.got)
    events = sqlite_utils.Database(db).execute(
        "SELECT kind, payload FROM events WHERE kind LIKE 'alert_%' ORDER BY seq").fetchall()
    assert [(k, json.loads(p)["kind"], json.loads(p)["status"]) for k, p in events] == [
        ("alert_sent", "feed_down", 200), ("alert_sent", "feed_up", 200)]
    dump = "\n".join(str(r) for r in sqlite_utils.Database(db).execute("SELECT * FROM events").fetchall())
    assert TOKEN not in dump and receiver.url not in dump
    outages = sqlite_utils.Database(db).execute(
        "SELECT count(*) FROM events WHERE kind = 'feed_up' AND json_extract(payload, '$.gap_ms') > 10000").fetchone()
    assert outages == (2,)  # both outages happened, and were long enough
