"""The web dashboard in a real browser: Debian's headless Chromium, driven by selenium (no browser
download), against a paper run on the simulator over loopback, on REAL time (a browser cannot
follow a MockClock). The run, its cockpit and its HTTP server live in a Trio loop on a background
thread, as ``mmbot run --http`` wires them; the browser and httpx reach it over 127.0.0.1.

It checks what an operator relies on: the page loads and shows the run's positions and PnL as
``/api/state`` gives them, the figures update by themselves, Pause stops new orders (the event log
has ``operator_paused`` and no ``submit`` after it until ``operator_resumed``) and the page says
PAUSED, Resume brings quoting back, and a wrong token gets the 401 message."""

from __future__ import annotations

import functools
import json
import queue
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import sqlite_utils
import trio
from prometheus_client import CollectorRegistry

from mmbot import app
from mmbot.app_cockpit import Cockpit
from mmbot.clock import TrioClock, wall_ns
from mmbot.cockpit.http import make_app, serve_http
from mmbot.config import Config, LogConfig
from tests.test_paper_live import START_NS, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "test-token-for-the-dashboard"
WAIT_S = 15  # the longest any one thing may take to show on the page

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (.ci/run installs "
                                "Debian's chromium and chromium-driver)")


@attrs.define
class LiveRun:
    url: str
    db: Path
    stop: Any  # () -> None, from any thread
    thread: threading.Thread


def _run_in_thread(db: Path, ready: queue.Queue) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            _server, urls, markets = await serve(nursery, markets=4, seed=5, speed=4)
            # The run's clock reads the venue's time (it starts at START_NS), the cockpit's wall is real.
            clock = TrioClock(anchor_ns=START_NS - round(trio.current_time() * 1e9))
            stop = trio.Event()
            token = trio.lowlevel.current_trio_token()

            def cockpit_services(engine, live=None):
                cockpit = Cockpit(engine, mode="paper", wall=wall_ns)
                web = make_app(snapshot=cockpit.snapshot, controls=cockpit, metrics=CollectorRegistry(), token=TOKEN,
                               stream_interval_s=0.5)

                async def http(task_status=trio.TASK_STATUS_IGNORED):
                    async with trio.open_nursery() as inner:
                        host, port = await inner.start(functools.partial(serve_http, web, "127.0.0.1", 0, stop=stop))
                        ready.put((f"http://{host}:{port}", lambda: trio.from_thread.run_sync(stop.set,
                                                                                             trio_token=token)))
                        task_status.started()

                return [("http", http)]

            config = Config(seed=2, log=LogConfig(pnl_interval_s=1, batch_ms=100))
            await app.run_paper(config=config, markets=markets, ws_url=urls.ws, db_path=db, clock=clock, stop=stop,
                                extra_services=cockpit_services)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseException as error:  # the test thread must hear of it, not wait for ever
        ready.put(error)
        raise


@pytest.fixture(scope="module")
def live_run(tmp_path_factory) -> Iterator[LiveRun]:
    db = tmp_path_factory.mktemp("dashboard") / "paper.db"
    ready: queue.Queue = queue.Queue()
    thread = threading.Thread(target=_run_in_thread, args=(db, ready), daemon=True, name="paper-run")
    thread.start()
    got = ready.get(timeout=30)
    if isinstance(got, BaseException):
        raise got
    url, stop = got
    run = LiveRun(url=url, db=db, stop=stop, thread=thread)
    try:
        yield run
    finally:
        if thread.is_alive():
            stop()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the paper run did not stop"


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1800",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def text(driver, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector).text


def wait_for(driver, condition, what: str, timeout: float = WAIT_S):  # float-ok: seconds a browser may take
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message=what)


def state(run: LiveRun) -> dict[str, Any]:
    return httpx.get(f"{run.url}/api/state", timeout=5).json()


def page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def events(db: Path, *kinds: str) -> list[tuple[int, str, dict]]:
    marks = ",".join("?" * len(kinds))
    return [(seq, kind, json.loads(payload)) for seq, kind, payload in sqlite_utils.Database(db).execute(
        f"SELECT seq, kind, payload FROM events WHERE kind IN ({marks}) ORDER BY seq", list(kinds)).fetchall()]



# One look at the page, taken in one go (JavaScript runs to completion between two updates): the
# state the page last rendered and what the page shows of it.
LOOK = """
const text = (id) => document.getElementById(id).textContent;
const rows = Array.from(document.querySelectorAll('#positions tbody tr'))
  .map((tr) => [tr.dataset.market].concat(Array.from(tr.cells).map((c) => c.textContent)));
const chart = document.getElementById('pnl-chart');
return {state: window.mmbotState, total: text('pnl-total'), realised: text('pnl-realised'),
        marked: text('pnl-marked'), cash: text('cash'), fees: text('fees'), fills: text('fills-count'),
        rows: rows, orders: document.querySelectorAll('#orders tbody tr:not(.empty)').length,
        order_count: text('orders-count'), badge: text('status-badge'), now: text('now'),
        points: Number(chart.dataset.points), lines: chart.querySelectorAll('polyline').length,
        dots: chart.querySelectorAll('circle').length, body: document.body.innerText};
"""


def show(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def signed(value: str | None) -> str:
    if value is None:
        return "-"
    return value if value.startswith("-") or Decimal(value) == 0 else "+" + value


def busy(market: dict) -> bool:
    return market["fills"] > 0 or any(Decimal(t["position"]) != 0 or t["quotes"] for t in market["tokens"])


def position_rows(state: dict) -> list[list[str]]:
    rows = []
    for m in (m for m in state["markets"] if busy(m)):
        for i, t in enumerate(m["tokens"]):
            row = [m["market"]] + ([m["label"] + (" (resolved)" if m["resolved"] else "")] if i == 0 else [])
            row += [t["outcome"], show(t["position"]), show(t["cost"]), show(t["mark"]), show(t["best_bid"]),
                    show(t["best_ask"]), show(t["book"])]
            if i == 0:
                row += [str(m["fills"]), signed(m["realised"]), signed(m["unrealised"]), signed(m["pnl"])]
            rows.append(row)
    return rows


def open_page(run: LiveRun, driver, token: str = TOKEN) -> None:
    driver.get(f"{run.url}/#token={token}")
    wait_for(driver, lambda d: text(d, "#connection") == "live" and text(d, "#pnl-total") != "-"
             and text(d, "#status-badge") in ("QUOTING", "PAUSED"), "the page shows the live state")


def test_the_page_shows_the_runs_positions_and_pnl_as_the_api_gives_them_and_keeps_updating(live_run, browser, tmp_path):
    open_page(live_run, browser)
    assert "token=" not in browser.current_url  # out of the address bar once read
    def ready(d: Any) -> bool:  # a fill, and the chart drawn (its lines need two PnL points: a loaded machine is slow)
        look = d.execute_script(LOOK)
        return look["state"]["fills"] > 0 and look["lines"] == 3

    wait_for(browser, ready, "a fill shows and the chart is drawn", timeout=30)
    look = browser.execute_script(LOOK)
    api = state(live_run)
    page = look["state"]

    # What the page shows is the state it was given, figure for figure ...
    assert look["total"] == signed(page["pnl"]) and look["realised"] == signed(page["realised"])
    assert look["marked"] == signed(page["unrealised"]) and look["cash"] == page["cash"] and look["fees"] == page["fees"]
    assert look["fills"] == f"{page['fills']} ({page['maker_fills']} / {page['taker_fills']})"
    assert look["rows"] == position_rows(page) and look["rows"]
    quotes = sum(len(t["quotes"]) for m in page["markets"] for t in m["tokens"])
    assert look["orders"] == quotes and look["order_count"] == str(quotes)
    assert look["badge"] == "QUOTING" and look["lines"] == 3 and look["points"] == len(page["pnl_history"]) > 0
    # ... and that state is the run's, as /api/state gives it a moment later.
    assert page.keys() == api.keys() and page["mode"] == api["mode"] == "paper"
    assert page["started_ms"] == api["started_ms"] and page["start_cash"] == api["start_cash"]
    assert {m["market"] for m in page["markets"]} == {m["market"] for m in api["markets"]}
    assert 0 <= api["now_ms"] - page["now_ms"] < 5_000 and 0 < page["fills"] <= api["fills"]
    for word in ("null", "undefined", "NaN", "None", "[object"):
        assert word not in look["body"], word

    # It updates by itself: the run's time moves on and the chart gains points (a PnL row a second).
    def updated(driver) -> bool:
        now = driver.execute_script(LOOK)
        return now["now"] != look["now"] and now["points"] > look["points"]

    wait_for(browser, updated, "the figures update", timeout=6)

    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_a_wrong_token_gets_the_401_message_and_changes_nothing(live_run, browser):
    from selenium.webdriver.common.by import By

    open_page(live_run, browser, token="not-the-token")
    browser.find_element(By.ID, "pause").click()
    wait_for(browser, lambda d: "401" in text(d, "#action-message"), "the 401 message")
    assert "token is wrong" in text(browser, "#action-message")
    assert not state(live_run)["paused"] and text(browser, "#status-badge") == "QUOTING"
    # The password field takes the right one.
    browser.find_element(By.ID, "token-input").send_keys(TOKEN)
    browser.find_element(By.ID, "token-save").click()
    assert text(browser, "#token-state") == "token set"
    assert browser.execute_script("return sessionStorage.getItem('mmbot-token')") == TOKEN


def test_pause_stops_new_orders_and_the_page_says_paused_then_resume_brings_quoting_back(live_run, browser, tmp_path):
    from selenium.webdriver.common.by import By

    open_page(live_run, browser)
    wait_for(browser, lambda d: state(live_run)["orders_by_state"], "quotes are up")
    browser.find_element(By.ID, "pause").click()
    wait_for(browser, lambda d: text(d, "#status-badge") == "PAUSED", "the page shows PAUSED")
    assert "Pause sent" in text(browser, "#action-message")
    wait_for(browser, lambda d: not state(live_run)["orders_by_state"], "every order cancelled")
    wait_for(browser, lambda d: text(d, "#orders-count") == "0", "the page shows no open order")
    assert "paused by the operator" in text(browser, "#health-reasons")
    before = state(live_run)["counts"]
    submits = before["submit"]
    # the run goes on (two more PnL rows, a second apart), and sends nothing new meanwhile
    wait_for(browser, lambda d: state(live_run)["counts"]["pnl"] >= before["pnl"] + 2, "the run goes on while paused")
    assert state(live_run)["counts"]["submit"] == submits and state(live_run)["paused"]
    browser.save_screenshot(str(tmp_path / "paused.png"))

    browser.find_element(By.ID, "resume").click()
    wait_for(browser, lambda d: text(d, "#status-badge") == "QUOTING", "the page shows QUOTING again")
    wait_for(browser, lambda d: state(live_run)["counts"]["submit"] > submits, "quoting comes back")
    browser.find_element(By.ID, "cancel-all").click()
    wait_for(browser, lambda d: "Cancel all sent" in text(d, "#action-message"), "cancel-all is acknowledged")
    wait_for(browser, lambda d: len(events(live_run.db, "operator_command")) == 3, "the log has the three commands")

    rows = events(live_run.db, "operator_command", "operator_paused", "operator_resumed", "submit")
    (paused,) = [seq for seq, kind, _ in rows if kind == "operator_paused"]
    (resumed,) = [seq for seq, kind, _ in rows if kind == "operator_resumed"]
    submitted = [seq for seq, kind, _ in rows if kind == "submit"]
    assert paused < resumed and not [seq for seq in submitted if paused < seq < resumed]
    assert [seq for seq in submitted if seq < paused] and [seq for seq in submitted if seq > resumed]
    commands = [(p["action"], p["source"], p["reason"]) for _, kind, p in rows if kind == "operator_command"]
    assert commands == [("pause", "http", "pause from the dashboard"), ("resume", "http", "resume from the dashboard"),
                        ("cancel_all", "http", "cancel all from the dashboard")]


def test_without_the_stream_the_page_polls_the_state_and_still_updates(live_run, browser):
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/stream*"]})
    try:
        browser.get(f"{live_run.url}/")
        wait_for(browser, lambda d: text(d, "#connection") == "polling every 2 s" and text(d, "#pnl-total") != "-",
                 "the page falls back to polling")
        now = text(browser, "#now")
        wait_for(browser, lambda d: text(d, "#now") != now, "the polled figures update", timeout=6)
        assert text(browser, "#token-state") == "token set"  # kept for the tab's session
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
