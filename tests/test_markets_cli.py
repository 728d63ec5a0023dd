"""``mmbot markets`` as an operator runs it, a subprocess against ``mmbot sim`` on loopback: the
table, ``--json`` with filters, the books' tops against the CLOB's own ``/book``, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from mmbot.model import parse_micro
from tests.sim_process import simulator_process


@pytest.fixture(scope="module")
def simulator():  # noqa: ANN201
    with simulator_process("--seed", "5", "--markets", "8", "--interval", "60") as running:
        yield running.rest, running.urls["Gamma listing"]


def mmbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmbot.cli", "markets", *args], capture_output=True, text=True,
                          timeout=60)


def test_the_table_lists_every_tradeable_market_with_its_books_and_edges(simulator) -> None:
    rest, gamma = simulator
    shown = mmbot("--gamma", gamma)
    assert shown.returncode == 0, shown.stderr
    listed = httpx.get(f"{gamma}/markets", params={"closed": "false"}).json()
    assert len(listed) == 8
    for entry in listed:
        assert entry["slug"] in shown.stdout
    for header in ("slug", "question", "ends (UTC)", "tick", "min", "fee", "liquidity", "books: bid / ask",
                   "ask sum", "bid sum"):
        assert header in shown.stdout
    assert "Up " in shown.stdout and "Down " in shown.stdout and "None" not in shown.stdout


def test_json_rows_carry_the_clobs_tops_and_the_complete_set_sums(simulator) -> None:
    rest, gamma = simulator
    shown = mmbot("--gamma", gamma, "--json")
    assert shown.returncode == 0, shown.stderr
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(rows) == 8
    for row in rows:
        assert set(row) >= {"slug", "question", "outcomes", "end", "time_to_end_s", "tick", "min_size", "fee_rate",
                            "neg_risk", "liquidity", "volume", "books", "ask_sum", "bid_sum", "series", "tags"}
        yes, no = (row["books"][o] for o in row["outcomes"])
        assert parse_micro(row["ask_sum"]) == parse_micro(yes["ask"]) + parse_micro(no["ask"])
        assert parse_micro(row["bid_sum"]) == parse_micro(yes["bid"]) + parse_micro(no["bid"])
    # soonest-ending first: the Up/Down windows lead
    ends = [row["time_to_end_s"] for row in rows]
    assert ends == sorted(ends) and rows[0]["series"] and rows[0]["outcomes"] == ["Up", "Down"]
    # the tops are the CLOB's: a long-lived market's book read straight from /book agrees (it barely moves)
    token = httpx.get(f"{gamma}/markets", params={"slug": rows[-1]["slug"]}).json()[0]["clobTokenIds"]
    book = httpx.get(f"{rest}/book", params={"token_id": json.loads(token)[0]}).json()
    best_bid = max(parse_micro(level["price"]) for level in book["bids"])
    assert abs(parse_micro(rows[-1]["books"][rows[-1]["outcomes"][0]]["bid"]) - best_bid) <= 50_000


def test_filters_select_as_the_select_section_would(simulator) -> None:
    rest, gamma = simulator
    series = [json.loads(line) for line in mmbot("--gamma", gamma, "--series", "btc-up-or-down-1m", "--json").stdout
              .splitlines()]
    assert series and all(row["slug"].startswith("btc-updown-1m-") for row in series)
    tagged = [json.loads(line) for line in mmbot("--gamma", gamma, "--tag", "sports", "--tag", "politics",
                                                 "--json").stdout.splitlines()]
    assert sorted(r["slug"] for r in tagged) == ["home-side-win-cup-final", "incumbent-governor-re-elected"]
    slugged = mmbot("--gamma", gamma, "--slug", "*-updown-*", "--min-time-to-end", "3600", "--json")
    assert slugged.returncode == 0 and slugged.stdout == ""  # 1-minute windows all end within the hour
    one = [json.loads(line) for line in mmbot("--gamma", gamma, "--limit", "1", "--json").stdout.splitlines()]
    assert len(one) == 1 and one[0]["series"]  # the soonest-ending
    rich = mmbot("--gamma", gamma, "--min-liquidity", "1000000000", "--json")
    assert rich.returncode == 0 and rich.stdout == ""
    tight = [json.loads(line) for line in mmbot("--gamma", gamma, "--max-spread", "0.02", "--json").stdout.splitlines()]
    for row in tight:
        first = row["books"][row["outcomes"][0]]
        assert parse_micro(first["ask"]) - parse_micro(first["bid"]) <= 20_000


@pytest.mark.parametrize("args, says", [
    (("--gamma", "http://127.0.0.1:1/gamma"), "mmbot markets: http://127.0.0.1:1/gamma/markets: cannot list markets"),
    (("--gamma", "not a url"), "mmbot markets: --gamma: expected a http:// or https://host URL"),
    (("--gamma", "http://127.0.0.1:1/gamma", "--rest", "ftp://x"), "mmbot markets: --rest: expected"),
    (("--gamma", "http://127.0.0.1:1/gamma", "--max-spread", "wide"), "--max-spread: expected a decimal"),
    (("--gamma", "http://127.0.0.1:1/gamma", "--min-liquidity", "-5"), "--min-liquidity: expected zero or more"),
    (("--gamma", "http://127.0.0.1:1/gamma", "--limit", "x"), "--limit"),
])
def test_bad_input_is_one_line_and_exit_2(args, says) -> None:
    shown = mmbot(*args)
    assert shown.returncode == 2 and says in shown.stderr, shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1 and "Traceback" not in shown.stderr


def test_a_listing_that_answers_an_error_is_one_line_and_exit_2(simulator) -> None:
    rest, gamma = simulator
    shown = mmbot("--gamma", f"{rest}/nothing-here")
    assert shown.returncode == 2 and "cannot list markets: HTTPStatusError" in shown.stderr, shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1
