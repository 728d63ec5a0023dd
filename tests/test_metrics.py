"""The run's metrics: the REST hook of ClobRest (status, 429s, transport errors, latency on the
injected clock), the feed-lag histogram's offset baseline, and a registry of the run's own."""

from __future__ import annotations

import httpx
import pytest
import trio
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mmbot.clock import TrioClock
from mmbot.cockpit.metrics import RunMetrics
from mmbot.config import Secret
from mmbot.venues.polymarket.auth import ApiCredentials
from mmbot.venues.polymarket.rest import ClobRest
from tests.test_cockpit_http import _snapshot


def families(metrics: RunMetrics) -> dict:
    return {f.name: f.samples for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}


def value(found: dict, family: str, sample: str, **labels: str) -> float:
    return sum(s.value for s in found[family] if s.name == sample and all(s.labels.get(k) == v
                                                                             for k, v in labels.items()))


async def test_the_rest_hook_sees_each_request_with_its_status_and_time(autojump_clock):
    answers = iter([httpx.Response(200, json={"version": 2}), httpx.Response(429, json={"error": "slow down"}),
                    "boom"])

    async def handler(request: httpx.Request) -> httpx.Response:
        await trio.sleep(0.2)  # on the mock clock: the latency the hook measures
        answer = next(answers)
        if answer == "boom":
            raise httpx.ConnectError("refused")
        return answer

    metrics = RunMetrics(snapshot=_snapshot)
    creds = ApiCredentials(api_key="k", secret=Secret(value="c2VjcmV0"), passphrase=Secret(value="p"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://venue") as client:
        rest = ClobRest(client=client, creds=creds, address="0x" + "1" * 40, clock=TrioClock(),
                        observe=metrics.observe_rest)
        assert await rest.version() == 2
        for _ in range(2):
            with pytest.raises(Exception):
                await rest.version()
    found = families(metrics)
    assert value(found, "mmbot_rest_requests", "mmbot_rest_requests_total", endpoint="GET /version", status="200") == 1
    assert value(found, "mmbot_rest_requests", "mmbot_rest_requests_total", status="429") == 1
    assert value(found, "mmbot_rest_requests", "mmbot_rest_requests_total", status="0") == 1
    assert value(found, "mmbot_rest_throttled", "mmbot_rest_throttled_total", endpoint="GET /version") == 1
    assert value(found, "mmbot_rest_request_seconds", "mmbot_rest_request_seconds_count") == 3
    assert value(found, "mmbot_rest_request_seconds", "mmbot_rest_request_seconds_bucket", le="0.1") == 0
    assert value(found, "mmbot_rest_request_seconds", "mmbot_rest_request_seconds_bucket", le="0.25") == 3


def test_feed_lag_is_measured_from_the_fastest_message_so_the_clocks_offset_cancels():
    metrics = RunMetrics(snapshot=_snapshot)
    offset = 20_000 * 1_000_000_000  # our clock 20 000 s ahead of the venue's: no matter
    metrics.observe_feed_lag(offset + 1_000_000_000 + 5_000_000, 1_000)  # 5 ms in flight (the baseline)
    metrics.observe_feed_lag(offset + 2_000_000_000 + 305_000_000, 2_000)  # 305 ms: 300 ms late
    found = families(metrics)
    assert value(found, "mmbot_feed_lag_seconds", "mmbot_feed_lag_seconds_bucket", le="0.001") == 1
    assert value(found, "mmbot_feed_lag_seconds", "mmbot_feed_lag_seconds_bucket", le="0.25") == 1
    assert value(found, "mmbot_feed_lag_seconds", "mmbot_feed_lag_seconds_bucket", le="0.5") == 2


def test_two_runs_have_registries_of_their_own_and_the_global_one_is_untouched():
    one, two = RunMetrics(snapshot=_snapshot), RunMetrics(snapshot=lambda: _snapshot(cash=5_000_000))
    assert value(families(one), "mmbot_cash_pusd", "mmbot_cash_pusd") == 10
    assert value(families(two), "mmbot_cash_pusd", "mmbot_cash_pusd") == 5
    assert b"mmbot_" not in generate_latest(REGISTRY)
