"""The selection rule (``venues/polymarket/selection.py``), the listing's reading of Gamma entries
(``listing.py``) on the captured samples, and market overrides keyed by condition id or slug."""

from __future__ import annotations

import fnmatch
import gzip
import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.app_select import check_overrides
from mmbot.config import Config, ConfigError, MarketOverride, SelectConfig, TakerConfig, parse_config
from mmbot.model import ONE, MarketInfo
from mmbot.venues.polymarket.listing import Listed, amount, book_top, listed_entry
from mmbot.venues.polymarket.selection import retire, select, soonest_end, why

S = 1_000_000_000
NOW = 1_786_604_100 * S
SLUGS = ("btc-updown-5m-1", "btc-updown-5m-2", "eth-updown-5m-1", "governor", "storm-1", "cup-final")
SERIES = ("btc-up-or-down-5m", "eth-up-or-down-5m", "")
TAGS = ("crypto", "politics", "sports")


@st.composite
def listed(draw, number: int) -> Listed:
    series = draw(st.sampled_from(SERIES))
    return Listed(
        info=MarketInfo(market=f"0x{number:064x}", tokens=(f"y{number}", f"n{number}"),
                        slug=draw(st.sampled_from(SLUGS)),
                        end_ns=draw(st.one_of(st.none(), st.integers(-600, 7_200).map(lambda s: NOW + s * S)))),
        liquidity=draw(st.one_of(st.none(), st.integers(0, 50_000).map(lambda x: x * ONE))),
        best_bid=(bid := draw(st.one_of(st.none(), st.integers(1, 98).map(lambda x: x * 10_000)))),
        best_ask=None if bid is None else bid + draw(st.integers(1, 20)) * 10_000,
        series=(series,) if series else (), tags=tuple(draw(st.sets(st.sampled_from(TAGS)))),
    )


listings = st.integers(0, 14).flatmap(lambda n: st.tuples(*(listed(i) for i in range(n)))).map(list)
configs = st.builds(
    SelectConfig,
    slugs=st.lists(st.sampled_from(("btc-*", "*-updown-5m-*", "governor", "storm-?")), max_size=2).map(tuple),
    series=st.lists(st.sampled_from(SERIES[:2]), max_size=1).map(tuple),
    tags=st.lists(st.sampled_from(TAGS), max_size=2).map(tuple),
    min_liquidity=st.sampled_from((0, 1_000 * ONE, 20_000 * ONE)),
    max_spread=st.sampled_from((ONE, 20_000, 50_000)),
    min_time_to_end_s=st.sampled_from((0, 60, 900)),
    max_markets=st.integers(0, 4),
)


def meets(item: Listed, config: SelectConfig) -> bool:
    """The rule written out once more, plainly, as the reference."""
    info = item.info
    return ((info.end_ns is None or info.end_ns - NOW >= max(config.min_time_to_end_s * S, 1))
            and (not config.slugs or any(fnmatch.fnmatchcase(info.slug, p) for p in config.slugs))
            and (not config.series or bool(set(config.series) & set(item.series)))
            and (not config.tags or bool(set(config.tags) & set(item.tags)))
            and (config.min_liquidity == 0 or (item.liquidity or 0) >= config.min_liquidity and item.liquidity is not None)
            and (config.max_spread >= ONE or (item.spread is not None and item.spread <= config.max_spread)))


def end_key(item: Listed) -> tuple:
    return (item.info.end_ns is None, item.info.end_ns or 0)


@settings(max_examples=300, deadline=None)
@given(listing=listings, config=configs, data=st.data())
def test_the_rule_chooses_the_soonest_ending_matching_markets_within_the_cap(listing, config, data) -> None:
    traded = data.draw(st.sets(st.sampled_from([m.info.market for m in listing]) if listing else st.nothing()))
    chosen = select(listing, config, NOW, traded=traded)
    ids = [c.listed.info.market for c in chosen]
    assert all(meets(c.listed, config) for c in chosen)  # every choice matches every filter
    assert all(c.reason for c in chosen) and not set(ids) & traded and len(ids) == len(set(ids))
    assert [end_key(c.listed) for c in chosen] == sorted(end_key(c.listed) for c in chosen)  # soonest first
    room = None if not config.max_markets else max(config.max_markets - len(traded), 0)
    left_out = [m for m in listing if meets(m, config) and m.info.market not in traded and m.info.market not in ids]
    if room is None:
        assert left_out == []  # no cap: every matching market not traded yet
    else:
        assert len(ids) == min(room, len(ids) + len(left_out))  # the cap filled as far as matches go
        assert not chosen or all(end_key(m) >= end_key(chosen[-1].listed) for m in left_out)  # the soonest ones
    # the listing's order does not matter
    shuffled = data.draw(st.permutations(listing))
    assert [c.listed.info.market for c in select(shuffled, config, NOW, traded=traded)] == ids


@settings(max_examples=200, deadline=None)
@given(listing=listings, data=st.data())
def test_retired_are_the_ended_and_the_unlisted_and_no_other(listing, data) -> None:
    traded = [m.info for m in listing]
    still = data.draw(st.sets(st.sampled_from([i.market for i in traded]) if traded else st.nothing()))
    gone = dict((info.market, reason) for info, reason in retire(traded, still, NOW))
    for info in traded:
        ended = info.end_ns is not None and info.end_ns <= NOW
        assert (info.market in gone) == (ended or info.market not in still)
        if ended:
            assert gone[info.market] == "ended"
    ends = [i.end_ns for i in traded if i.end_ns is not None and i.end_ns > NOW]
    assert soonest_end(traded, NOW) == (min(ends) if ends else None)


def test_an_unknown_spread_or_liquidity_fails_a_filter_that_asks_for_it() -> None:
    bare = Listed(info=MarketInfo(market="0x1", tokens=("a", "b"), slug="x", end_ns=NOW + 600 * S))
    assert why(bare, SelectConfig(), NOW) == "every tradeable market (no [select] filter)"
    assert why(bare, SelectConfig(max_spread=50_000), NOW) is None
    assert why(bare, SelectConfig(min_liquidity=ONE), NOW) is None
    assert why(bare, SelectConfig(min_time_to_end_s=601), NOW) is None
    assert why(bare, SelectConfig(min_time_to_end_s=600), NOW) == "ends in 600 s"
    assert why(bare, SelectConfig(), NOW + 600 * S) is None  # ended: never chosen


# --------------------------------------------------------------------------- the captured Gamma entries


def test_a_captured_up_down_entry_reads_with_series_liquidity_tops_and_window(fixtures_dir) -> None:
    entry = json.loads((fixtures_dir / "gamma" / "gamma_market.json").read_text())
    item = listed_entry(entry)
    assert item.series == ("btc-up-or-down-5m",) and item.info.slug == "btc-updown-5m-1773307200"
    assert item.liquidity == 20_328_374_700 and item.volume == 9_999_997
    assert (item.best_bid, item.best_ask, item.spread) == (500_000, 510_000, 10_000)
    assert item.start_ns == 1_773_307_200 * S and item.info.end_ns == 1_773_307_500 * S
    assert item.info.outcomes == ("Up", "Down")
    chosen = select([item], SelectConfig(series=("btc-up-or-down-5m",), max_spread=10_000), 1_773_307_200 * S)
    assert [c.reason for c in chosen] == ["series btc-up-or-down-5m; spread 0.01"]


def test_every_captured_btc_window_of_a_day_reads_and_lists_in_its_series(fixtures_dir) -> None:
    # the captured day (1 MB), kept gzipped (110 kB)
    lines = gzip.decompress((fixtures_dir / "gamma/BTC-5m-markets-2026-06-08.jsonl.gz").read_bytes()).decode().splitlines()
    items = [listed_entry(json.loads(line)["raw"]) for line in lines]
    assert len(items) == 292 and all(i.volume is not None and i.liquidity is not None for i in items)
    # a whole day in a 5-minute series: the soonest-ending window open at noon is the noon one
    noon = 1_780_920_000 * S
    first = select(items, SelectConfig(slugs=("btc-updown-5m-*",), max_markets=1), noon)
    assert [c.listed.info.slug for c in first] == ["btc-updown-5m-1780920000"]


def test_amounts_and_book_tops_read_as_gamma_and_the_clob_send_them() -> None:
    assert amount("30335.869374999984") == 30_335_869_374 and amount(0.51) == 510_000 and amount("") is None
    assert amount("nan") is None and amount(True) is None and amount("x") is None
    book = {"bids": [{"price": "0.48", "size": "10"}, {"price": "0.5", "size": "3"}, {"price": "0.6", "size": "0"}],
            "asks": [{"price": "0.55", "size": "1"}, {"price": "0.52", "size": "7"}]}
    assert book_top(book) == (500_000, 520_000) and book_top({"bids": [], "asks": []}) == (None, None)


# --------------------------------------------------------------------------- overrides


CID = "0x" + "ab" * 32


def test_overrides_are_found_by_condition_id_first_then_by_slug_pattern() -> None:
    off = TakerConfig(enabled=False)
    config = parse_config({"markets": [
        {"market": "btc-updown-5m-*", "taker": {"min_edge": "0.03"}},
        {"market": CID.upper().replace("0X", "0x"), "taker": {"enabled": False}},
    ]})
    assert config.strategies_for(CID, "btc-updown-5m-1").taker == off  # the id wins over an earlier slug
    assert config.strategies_for("0x" + "cd" * 32, "btc-updown-5m-7").taker.min_edge == 30_000  # listed later
    assert config.strategies_for("0x" + "cd" * 32, "eth-updown-5m-7") == config.strategies


def test_an_override_naming_no_start_up_market_is_a_one_line_error() -> None:
    markets = [MarketInfo(market=CID, tokens=("a", "b"), slug="btc-updown-5m-60")]
    check_overrides(Config(markets=(MarketOverride(market=CID), MarketOverride(market="btc-updown-5m-*"))), markets)
    with pytest.raises(ConfigError) as caught:
        check_overrides(Config(markets=(MarketOverride(market="0x" + "cd" * 32),)), markets)
    assert "markets[0].market" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="'typo-slug'"):
        check_overrides(attrs.evolve(Config(), markets=(MarketOverride(market=CID),
                                                        MarketOverride(market="typo-slug"))), markets)


async def test_a_long_running_selection_remembers_no_more_than_the_listing_shows(tmp_path, monkeypatch) -> None:
    """Weeks of five-minute windows: the selection's memory of retired markets is bounded by what
    the listing still shows, never by the run's age (nothing long-lived grows without bound)."""
    import trio

    from mmbot import app_select
    from mmbot.app_engine import build_engine, paper_gateway
    from mmbot.clock import TrioClock
    from mmbot.config import Config
    from mmbot.decisions.markets import Markets
    from mmbot.memory.log import EventLog
    from mmbot.model import MarketInfo
    from mmbot.venues.polymarket.listing import Listed

    start = 1_786_604_100 * S
    window = 300 * S

    def listed(i: int) -> Listed:  # window i: listed from its start, ending 300 s later
        info = MarketInfo(market=f"0x{i:064x}", tokens=(f"{2 * i + 1}", f"{2 * i + 2}"), outcomes=("Up", "Down"),
                          end_ns=start + (i + 1) * window, slug=f"btc-updown-5m-{i}")
        return Listed(info=info, series=("btc-up-or-down-5m",))

    now = {"i": 0}

    async def listing(client):  # noqa: ANN001, ANN202  the current window, the next, and two ended ones not yet closed
        i = now["i"]
        return [listed(j) for j in range(max(0, i - 2), i + 2)], []

    monkeypatch.setattr(app_select, "fetch_listing", listing)
    clock = TrioClock(anchor_ns=start)
    log = EventLog(tmp_path / "select.db", clock=clock, wall=lambda: 0)
    config = Config()
    engine = build_engine(config=config, clock=clock, log=log, markets=Markets([], learn_listings=False),
                          gateway_factory=paper_gateway(config), seed=0)
    selection = app_select.Selection(engine=engine, client=None, config=SelectConfig(series=("btc-up-or-down-5m",),
                                                                                    max_markets=1))  # type: ignore[arg-type]
    selection.venue_now = lambda: start + now["i"] * window + S  # type: ignore[method-assign]
    for i in range(2_000):  # about a week
        now["i"] = i
        assert await selection.refresh()
        assert list(selection.traded) == [listed(i).info.market]  # the current window, and only it
        assert len(selection.retired) <= 3
    log.flush_sync()
    await trio.lowlevel.checkpoint()
