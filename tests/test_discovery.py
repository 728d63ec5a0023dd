"""Market discovery from Gamma listings: the captured entries, and the shapes Gamma varies."""

from __future__ import annotations

import json

import pytest

from mmbot.facts.venue_time import VenueTime
from mmbot.model import BestBidAsk
from mmbot.venues.polymarket.discovery import DiscoveryError, market_info, tradeable


def load(fixtures_dir, name: str) -> dict:
    return json.loads((fixtures_dir / "gamma" / name).read_text())


def test_a_captured_up_down_market(fixtures_dir) -> None:
    entry = load(fixtures_dir, "gamma_market.json")
    info = market_info(entry)
    assert tradeable(entry)
    assert info.market == entry["conditionId"]
    assert list(info.tokens) == json.loads(entry["clobTokenIds"])  # a JSON-encoded string, decoded again
    assert info.outcomes == ("Up", "Down")
    assert info.tick == 10_000 and info.min_size == 5_000_000
    assert info.end_ns == 1_773_307_500 * 1_000_000_000  # endDate 2026-03-12T09:25:00Z
    assert info.slug == entry["slug"]


def test_a_closed_market_is_not_tradeable_and_a_fine_tick_is_read_exactly(fixtures_dir) -> None:
    entry = load(fixtures_dir, "gamma_market_closed_binary_accepting_false.json")
    assert not tradeable(entry)
    assert market_info(entry).tick == 1_000  # 0.001 as a JSON number, never through a binary float


def test_real_arrays_fees_and_bad_entries() -> None:
    entry = {
        "conditionId": "0xabc", "clobTokenIds": ["1", "2"], "outcomes": ["Yes", "No"], "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5, "endDate": "2026-03-19 23:20:15+00", "feesEnabled": True,
        "feeSchedule": {"rate": 0.072, "exponent": 1}, "enableOrderBook": True, "acceptingOrders": True,
    }
    info = market_info(entry)
    assert info.tokens == ("1", "2") and info.fee_rate == 72_000 and info.end_ns == 1_773_962_415 * 1_000_000_000
    with pytest.raises(DiscoveryError, match="two tokens"):
        market_info({**entry, "clobTokenIds": '["1", ""]'})  # hydration lag: empty ids
    with pytest.raises(DiscoveryError, match="clobTokenIds: not a JSON list"):
        market_info({**entry, "clobTokenIds": "[1, "})
    assert market_info({**entry, "endDate": "next Tuesday"}).end_ns is None


async def test_a_listed_market_is_traded_only_once_gamma_has_its_details(fixtures_dir, nursery, autojump_clock) -> None:
    """``new_market`` says nothing of fees, neg-risk or the end: ``ListingDetails`` fetches them,
    through the venue's hydration lag, and gives up on a market that never appears."""
    import httpx
    import trio

    from mmbot.clock import TrioClock
    from mmbot.decisions.markets import Markets
    from mmbot.model import NewMarket
    from mmbot.venues.polymarket.discovery import ListingDetails

    entry = load(fixtures_dir, "gamma_market.json")
    tokens = tuple(json.loads(entry["clobTokenIds"]))
    asked: list[list[str]] = []

    def gamma(request: httpx.Request) -> httpx.Response:
        ids = request.url.params.get_list("condition_ids")
        asked.append(ids)
        hydrated = len(asked) >= 3  # the first two answers come before Gamma knows the market
        return httpx.Response(200, json=[entry] if hydrated and entry["conditionId"] in ids else [])

    adopted, rows = [], []

    class Rows:
        def record(self, kind, cid, payload=None, **kw):  # noqa: ANN001, ANN201
            rows.append((kind, payload, kw.get("market")))

    markets = Markets(learn_listings=False)
    details = ListingDetails(client=httpx.AsyncClient(transport=httpx.MockTransport(gamma), base_url="http://gamma"),
                             on_details=adopted.append, sink=Rows(), clock=TrioClock(anchor_ns=0), give_up_s=60)
    await nursery.start(details.run)
    for market, toks in ((entry["conditionId"], tokens), ("0xnever", ("1", "2"))):
        msg = NewMarket(cid="n", recv_ns=0, market=market, market_id="1", question="", slug="", tokens=toks,
                        outcomes=("Up", "Down"), tick=10_000, venue_ts_ms=0)
        markets.apply(msg)
        details.observe(msg)
    assert markets.get(entry["conditionId"]) is None  # not tradeable on what new_market says
    await trio.sleep(120)
    assert [info.market for info in adopted] == [entry["conditionId"]]
    assert adopted[0] == market_info(entry) and adopted[0].end_ns is not None
    assert asked[0] == [entry["conditionId"], "0xnever"]  # one call for every market waiting
    assert [(kind, market) for kind, _, market in rows] == [("error", "0xnever")]
    assert "not traded" in rows[0][1]["error"]


def test_a_resolved_entry_names_its_winner_and_an_unsettled_one_does_not(fixtures_dir) -> None:
    from mmbot.venues.polymarket.discovery import winner_of

    entry = load(fixtures_dir, "gamma_market_closed_binary_accepting_false.json")  # closed, ["0", "1"], resolved
    assert winner_of(entry) == json.loads(entry["clobTokenIds"])[1]
    assert winner_of(entry | {"umaResolutionStatus": "proposed"}) is None
    assert winner_of(entry | {"outcomePrices": '["0", "0"]'}) is None
    assert winner_of(entry | {"closed": False}) is None
    assert winner_of(load(fixtures_dir, "gamma_market.json")) is None  # open, trading at 0.505 / 0.495


async def test_a_resolution_the_channel_missed_is_found_on_gamma_once_the_market_is_overdue(
    fixtures_dir, nursery, autojump_clock
) -> None:
    import httpx
    import trio

    from mmbot.clock import TrioClock
    from mmbot.venues.polymarket.discovery import ResolutionWatch

    entry = load(fixtures_dir, "gamma_market_closed_binary_accepting_false.json")
    info = market_info(entry)
    ended = info.end_ns
    asked: list[dict] = []

    def gamma(request: httpx.Request) -> httpx.Response:
        asked.append(dict(request.url.params.multi_items()))
        return httpx.Response(200, json=[entry])

    found: list = []
    resolved: set[str] = set()
    # our clock is ten hours behind the venue's: only the venue's time (from its frames) may say
    # whether the market's end has passed — it ended just now, by the venue's clock
    clock = TrioClock(anchor_ns=ended - 36_000 * 1_000_000_000)
    venue_time = VenueTime(clock)
    venue_time.observe(BestBidAsk(cid="f1", recv_ns=0, market=info.market, token=info.tokens[0], best_bid=None,
                                  best_ask=None, venue_ts_ms=ended // 1_000_000))
    watch = ResolutionWatch(client=httpx.AsyncClient(transport=httpx.MockTransport(gamma), base_url="http://gamma"),
                            markets=lambda: [info], resolved=resolved.__contains__,
                            on_resolved=lambda msg: (found.append(msg), resolved.add(msg.market)), sink=None,
                            clock=clock, venue_now=venue_time.now_ns, interval_s=30, grace_s=60)
    await nursery.start(watch.run)
    await trio.sleep(61)
    assert asked == [] and found == []  # within the grace the channel may still say it
    await trio.sleep(30)
    assert asked == [{"closed": "true", "condition_ids": info.market}]
    [msg] = found
    assert (msg.market, msg.winning_token, msg.winning_outcome) == (info.market, info.tokens[1], info.outcomes[1])
    await trio.sleep(300)
    assert len(asked) == 1  # resolved: not asked about again
