"""Order submission benchmark: how fast we sign CLOB V2 orders, how fast Polymarket's official
builder signs the same orders, and the sign-and-post round trip to the simulator on loopback.

    .venv/bin/python bench/submit.py
    .venv/bin/python bench/submit.py --orders 5000 --batches 1000 --json /tmp/submit.json

It prints a table, then ONE JSON line with every figure (see bench/README.md).

- **signing**: ``LiveGateway.body`` on seeded random requests (prices, sizes, ticks, sides,
  neg-risk, salts): order_amounts, OrderV2, OrderSigner.sign, the wire body — what the gateway
  does per order. The official builder does the same orders (our salts and timestamps) through
  its own pieces: float amounts, ``build_signed_order``, ``order_to_json_v2``, once with each
  eth-keys backend. Where its amounts equal ours, its signatures must too. The same requests
  signed as a deposit wallet's ``POLY_1271`` orders (the gateway's steps, DepositWalletSigner)
  give ``sign_us_per_order_1271``.
- **round trip**: a SimServer in this process and Trio loop, real sockets and clock; a ClobRest
  over httpx posts BUYs below the best bid, one per ``POST /order`` and 15 per ``POST /orders``,
  timed from the first signature to the parsed answer. Resting orders are cancelled between
  rounds, untimed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import trio  # noqa: E402

from mmbot.clock import TrioClock  # noqa: E402
from mmbot.config import Secret, VenueConfig  # noqa: E402
from mmbot.model import ONE, MarketInfo, Side, SubmitRequest, TimeInForce, format_micro, parse_micro  # noqa: E402
from mmbot.ports import OutcomeUnknown, Rejected, Retryable  # noqa: E402
from mmbot.venues.polymarket.auth import (  # noqa: E402
    POLY_1271, OrderSigner, OrderV2, SigningKey, market_order_amounts, order_amounts,
)
from mmbot.venues.polymarket.discovery import list_markets  # noqa: E402
from mmbot.venues.polymarket.gateway import LiveGateway  # noqa: E402
from mmbot.venues.polymarket.rest import MAX_BATCH, ClobRest, RateLimiter  # noqa: E402
from mmbot.venues.polymarket.rest_answers import PostAnswer  # noqa: E402
from mmbot.venues.polymarket.sign_1271 import DepositWalletSigner  # noqa: E402
from mmbot.venues.simulator.server import SimServer, SimSettings  # noqa: E402
from mmbot.venues.simulator.trading import credentials_for  # noqa: E402
from mmbot.venues.simulator.venue import LiveVenue  # noqa: E402

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # public test key, as in tests/
DEPOSIT_WALLET = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"  # its beacon deposit wallet (onchain reference §3.2)
START_NS = 1_786_604_100 * 1_000_000_000
TARGETS = {"sign_us": 100, "speedup": 50, "batch_p99_ms": 10}
# eth-keys picks coincurve when it is importable (mmbot depends on it); without it, its pure-Python
# backend, which is what installing py-clob-client-v2 alone gives.
ECC_BACKENDS = {"coincurve": "eth_keys.backends.CoinCurveECCBackend", "native": "eth_keys.backends.NativeECCBackend"}
SINGLES_PER_ROUND, BATCHES_PER_ROUND = 50, 4  # cancel-all after each round
WARMUP_SINGLES, WARMUP_BATCHES = 20, 4
SIGN_REPS, OFFICIAL_REPS = 5, 3


class StepClock:
    """One millisecond later at every read: distinct, reproducible order timestamps."""

    def __init__(self) -> None:
        self.t = START_NS

    def now_ns(self) -> int:
        self.t += 1_000_000
        return self.t


class NoSink:
    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


def gateway(rest: ClobRest | None, owner: str, markets: dict[str, MarketInfo], clock: Any, seed: int) -> LiveGateway:
    return LiveGateway(rest=rest,  # type: ignore[arg-type]
                       signer=OrderSigner(SigningKey(Secret(value=HARDHAT_KEY))), owner=owner, markets=markets.get,
                       respond=lambda answer: None, sink=NoSink(), clock=clock, rng=random.Random(seed),
                       config=VenueConfig())


def percentiles(samples_ns: list[int]) -> dict[str, int]:
    """Nearest-rank percentiles in µs."""
    ordered = sorted(samples_ns)

    def rank(per_mille: int) -> int:
        return ordered[max(0, -(-per_mille * len(ordered) // 1000) - 1)] // 1000

    return {"p50": rank(500), "p99": rank(990), "p999": rank(999), "max": ordered[-1] // 1000, "n": len(ordered)}


# --------------------------------------------------------------------------- signing


def sign_orders(n: int, seed: int) -> tuple[dict[str, MarketInfo], list[SubmitRequest]]:
    rng = random.Random(seed)
    markets: dict[str, MarketInfo] = {}
    for tick in (100_000, 10_000, 1_000, 100):
        for neg_risk in (False, True):
            tokens = (str(rng.getrandbits(256)), str(rng.getrandbits(256)))
            info = MarketInfo(market="0x" + rng.getrandbits(256).to_bytes(32, "big").hex(), tokens=tokens,
                              tick=tick, neg_risk=neg_risk)
            markets |= dict.fromkeys(tokens, info)
    tokens = sorted(markets)
    requests = []
    for i in range(n):
        info = markets[token := rng.choice(tokens)]
        requests.append(SubmitRequest(
            cid=f"s{i}", order_id=f"s{i}", market=info.market, token=token, side=rng.choice((Side.BUY, Side.SELL)),
            price=rng.randint(1, ONE // info.tick - 1) * info.tick, size=rng.randint(500, 100_000) * 10_000,
            tif=TimeInForce.GTC, post_only=True,
        ))
    return markets, requests


def time_ours(markets: dict[str, MarketInfo], requests: list[SubmitRequest], seed: int,
              reps: int) -> tuple[list[int], list[dict[str, Any]]]:
    """ns per order of each repetition, and the bodies (the same every time: a fresh seeded gateway)."""
    per_order = []
    for _ in range(reps):
        gw = gateway(None, "owner", markets, StepClock(), seed)
        gc.collect()
        started = time.perf_counter_ns()  # clock-ok
        bodies = [gw.body(request) for request in requests]
        per_order.append((time.perf_counter_ns() - started) // len(requests))  # clock-ok
    return per_order, bodies


def time_1271(markets: dict[str, MarketInfo], requests: list[SubmitRequest], seed: int, reps: int) -> list[int]:
    """ns per order of each repetition signing the requests as the deposit wallet's POLY_1271
    orders: what ``LiveGateway.body`` does per order (amounts, OrderV2, sign, wire body), with the
    wallet as maker and signer."""
    per_order = []
    for _ in range(reps):
        signer = DepositWalletSigner(SigningKey(Secret(value=HARDHAT_KEY)), DEPOSIT_WALLET)
        rng, clock, bodies = random.Random(seed), StepClock(), []
        gc.collect()
        started = time.perf_counter_ns()  # clock-ok
        for request in requests:
            info = markets[request.token]
            amounts = market_order_amounts if request.tif in (TimeInForce.FOK, TimeInForce.FAK) else order_amounts
            maker_amount, taker_amount = amounts(
                request.side, format_micro(request.price), format_micro(request.size), format_micro(info.tick))
            order = OrderV2(
                salt=rng.getrandbits(48), maker=signer.signer_address, signer=signer.signer_address,
                token_id=int(request.token), maker_amount=maker_amount, taker_amount=taker_amount,
                side=request.side, signature_type=POLY_1271, timestamp_ms=clock.now_ns() // 1_000_000,
            )
            _, signature = signer.sign(order, neg_risk=info.neg_risk)
            bodies.append({"order": order.wire(signature), "owner": "owner", "orderType": request.tif.value,
                           "postOnly": request.post_only})
        per_order.append((time.perf_counter_ns() - started) // len(requests))  # clock-ok
    return per_order


Bodies = list[dict[str, Any]]


def official_signer() -> Callable[[dict[str, MarketInfo], list[SubmitRequest], Bodies], Bodies] | str:
    """py-clob-client-v2's per-order path as a function, or why it cannot be imported."""
    try:
        from py_clob_client_v2.config import get_contract_config
        from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
        from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, OrderDataV2, SignatureTypeV2
        from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
        from py_clob_client_v2.signer import Signer
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"

    def sign(markets: dict[str, MarketInfo], requests: list[SubmitRequest], ours: Bodies) -> Bodies:
        signer = Signer(HARDHAT_KEY, 137)
        contracts = get_contract_config(137)
        salts = iter([str(body["order"]["salt"]) for body in ours])  # our salts and timestamps: the same orders
        builders = {neg_risk: ExchangeOrderBuilderV2(exchange, 137, signer, generate_salt=lambda: next(salts))
                    for neg_risk, exchange in ((False, contracts.exchange_v2), (True, contracts.neg_risk_exchange_v2))}
        amounts, address = OrderBuilder(signer), signer.address()
        inputs = [
            (request.side.value, request.size / ONE, request.price / ONE,  # float-ok: the official API takes floats
             ROUNDING_CONFIG[format_micro(markets[request.token].tick)], builders[markets[request.token].neg_risk],
             request.token, body["order"]["timestamp"])
            for request, body in zip(requests, ours)
        ]
        bodies = []
        for side, size, price, rounding, builder, token, timestamp in inputs:
            side_, maker, taker = amounts.get_order_amounts(side, size, price, rounding)
            signed = builder.build_signed_order(OrderDataV2(
                maker=address, tokenId=token, makerAmount=str(maker), takerAmount=str(taker), side=side_,
                signer=address, signatureType=SignatureTypeV2.EOA, timestamp=timestamp))
            bodies.append(order_to_json_v2(signed, "owner", "GTC", post_only=True))
        return bodies

    return sign


@contextlib.contextmanager
def ecc_backend(name: str) -> Iterator[None]:
    """eth-keys reads ECC_BACKEND_CLASS at every signature; without it, coincurve if importable."""
    before = os.environ.get("ECC_BACKEND_CLASS")
    os.environ["ECC_BACKEND_CLASS"] = ECC_BACKENDS[name]
    try:
        yield
    finally:
        if before is None:
            del os.environ["ECC_BACKEND_CLASS"]
        else:
            os.environ["ECC_BACKEND_CLASS"] = before


def signing(n_ours: int, n_official: int, seed: int) -> dict[str, Any]:
    markets, requests = sign_orders(n_ours, seed)
    ours_ns, bodies = time_ours(markets, requests, seed, SIGN_REPS)
    ours_ns_per_order = statistics.median(ours_ns)
    out: dict[str, Any] = {
        "sign_orders": n_ours, "sign_reps": len(ours_ns),
        "sign_us_per_order": round(ours_ns_per_order / 1000, 1),  # float-ok
        "sign_orders_per_s": round(1e9 / ours_ns_per_order),  # float-ok
        "sign_us_per_order_reps": [round(ns / 1000, 1) for ns in ours_ns],  # float-ok
    }
    ours_1271_ns = time_1271(markets, requests, seed, SIGN_REPS)
    ours_1271_per_order = statistics.median(ours_1271_ns)
    out |= {
        "sign_us_per_order_1271": round(ours_1271_per_order / 1000, 1),  # float-ok
        "sign_orders_per_s_1271": round(1e9 / ours_1271_per_order),  # float-ok
        "sign_us_per_order_1271_reps": [round(ns / 1000, 1) for ns in ours_1271_ns],  # float-ok
    }
    official = official_signer()
    if isinstance(official, str):
        out["official"] = f"not importable: {official}"
        return out
    out |= {"official": "py-clob-client-v2", "official_orders": n_official, "official_reps": OFFICIAL_REPS}
    for backend in ECC_BACKENDS:
        theirs_ns, theirs = [], []
        with ecc_backend(backend):
            for _ in range(OFFICIAL_REPS):
                gc.collect()
                started = time.perf_counter_ns()  # clock-ok
                theirs = official(markets, requests[:n_official], bodies[:n_official])
                theirs_ns.append((time.perf_counter_ns() - started) // n_official)  # clock-ok
        theirs_ns_per_order = statistics.median(theirs_ns)
        pairs = [(a["order"], b["order"]) for a, b in zip(bodies, theirs)]
        same_amounts = [(a, b) for a, b in pairs
                        if (a["makerAmount"], a["takerAmount"]) == (b["makerAmount"], b["takerAmount"])]
        out |= {
            f"official_{backend}_us_per_order": round(theirs_ns_per_order / 1000, 1),  # float-ok
            f"official_{backend}_orders_per_s": round(1e9 / theirs_ns_per_order),  # float-ok
            f"speedup_{backend}": round(theirs_ns_per_order / ours_ns_per_order, 1),  # float-ok
            # its float rounding takes a cent off some sizes (309.03 -> 309.02): a different order, not a fault of ours
            "official_amounts_differ": len(theirs) - len(same_amounts),
            f"official_{backend}_signatures_differ": sum(a != b for a, b in same_amounts),
        }
    return out


# --------------------------------------------------------------------------- round trip


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    def note(self, answers: list[PostAnswer]) -> None:
        for answer in answers:
            if answer.accepted:
                self.statuses[answer.status] += 1
            else:
                self.rejected[answer.error or "refused"] += 1


@contextlib.contextmanager
def timing(obj: Any, name: str) -> Iterator[list[int]]:
    """ns of every call of ``obj.name`` while open (an instance attribute shadowing the method)."""
    method, samples = getattr(obj, name), []

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter_ns()  # clock-ok
        try:
            return method(*args, **kwargs)
        finally:
            samples.append(time.perf_counter_ns() - started)  # clock-ok

    setattr(obj, name, timed)
    try:
        yield samples
    finally:
        delattr(obj, name)


@contextlib.contextmanager
def simulator_process(seed: int) -> Iterator[str]:
    """``mmbot sim`` in its own process (the venue is another machine; here, the other core); its REST URL."""
    proc = subprocess.Popen([sys.executable, "-m", "mmbot.cli", "sim", "--port", "0", "--ws-port", "0",
                             "--seed", str(seed)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        rest = ""
        for line in proc.stdout or ():
            if line.split()[:1] == ["REST"]:
                rest = line.split()[1]
            if "Ctrl-C" in line:
                break
        if not rest:
            raise SystemExit("bench: mmbot sim did not start")
        yield rest
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def round_trip(n_orders: int, n_batches: int, seed: int, still: bool, rest_url: str | None) -> dict[str, Any]:
    """Against ``rest_url`` (a simulator in another process) or, without it, a SimServer in this
    thread, whose handlers and world steps can then be timed too."""
    key = SigningKey(Secret(value=HARDHAT_KEY))
    server: SimServer | None = None
    if rest_url is None:
        venue = LiveVenue(seed=seed, markets=4, start_ns=START_NS, warmup_s=10)
        server = SimServer(venue, settings=SimSettings(seed=seed))
        server.add_account(key.address, credentials_for(key.address))
        if still:
            server.pause()
    rng = random.Random(seed)
    tally, canceled, seq = Tally(), 0, 0

    async def best_bid(token: str) -> int | None:
        if server is not None:
            return server.venue.best(token)[0]
        answer = (await client.get("/price", params={"token_id": token, "side": "BUY"})).json()
        return parse_micro(answer["price"]) or None

    async def requests(n: int) -> list[SubmitRequest]:
        nonlocal seq
        bid = await best_bid(token)
        if bid is None:
            raise SystemExit(f"bench: token {token} has no bid to quote under")
        out = []
        for _ in range(n):
            seq += 1
            out.append(SubmitRequest(
                cid=f"r{seq}", order_id=f"r{seq}", market=info.market, token=token, side=Side.BUY,
                price=max(info.tick, bid - rng.randint(1, 5) * info.tick),
                size=rng.randint(info.min_size // 10_000, 4 * info.min_size // 10_000) * 10_000,
                tif=TimeInForce.GTC, post_only=True,
            ))
        return out

    async def post(batch: list[SubmitRequest]) -> tuple[int, int]:
        """(ns to sign, ns to sign and have the answer)."""
        started = time.perf_counter_ns()  # clock-ok
        bodies = [gw.body(request) for request in batch]
        signed = time.perf_counter_ns()  # clock-ok
        try:
            answers = await rest.post_orders(bodies)
        except (Rejected, Retryable, OutcomeUnknown) as exc:
            answers = [PostAnswer(success=False, order_id="", status="", error=f"{type(exc).__name__}: {exc}")] * len(batch)
        done = time.perf_counter_ns()  # clock-ok
        tally.note(answers)
        return signed - started, done - started

    async def rounds(count: int, size: int, per_round: int) -> tuple[list[int], list[int]]:
        nonlocal canceled
        sign_ns, total_ns = [], []
        for at in range(0, count, per_round):
            for _ in range(min(per_round, count - at)):
                took = await post(await requests(size))
                sign_ns.append(took[0])
                total_ns.append(took[1])
            canceled += len((await rest.cancel_all()).canceled)
        return sign_ns, total_ns

    async with trio.open_nursery() as nursery:
        if server is not None:
            rest_url = (await nursery.start(server.run)).rest
        async with httpx.AsyncClient(base_url=rest_url) as client:
            clock = TrioClock()
            creds = await ClobRest.create_or_derive_api_key(client, key, clock)
            # The venue's rate limits would make long runs wait; that wait is policy, not latency.
            rest = ClobRest(client=client, creds=creds, address=key.address, clock=clock,
                            limiter=RateLimiter(clock, {"default": 1 << 40}))
            horizon_ns = (START_NS if server is not None else time.time_ns()) + 3_600 * 1_000_000_000  # clock-ok
            async with httpx.AsyncClient(base_url=f"{rest_url.rstrip('/')}/gamma") as gamma:  # the simulator's listing
                listed, _ = await list_markets(gamma)
            markets = [m for m in listed if m.end_ns is None or m.end_ns > horizon_ns]
            bids = {t: bid for m in markets for t in m.tokens if (bid := await best_bid(t)) is not None}
            token = min(bids, key=lambda t: abs(bids[t] - ONE // 2))
            info = next(m for m in markets if token in m.tokens)
            gw = gateway(rest, creds.api_key, dict.fromkeys(info.tokens, info), clock, seed)
            await rounds(WARMUP_SINGLES, 1, SINGLES_PER_ROUND)
            await rounds(WARMUP_BATCHES, MAX_BATCH, BATCHES_PER_ROUND)
            tally, canceled = Tally(), 0
            with contextlib.ExitStack() as timers:
                def timed(obj: Any, name: str) -> list[int]:
                    return timers.enter_context(timing(obj, name)) if server is not None else []

                steps = timed(server and server.venue, "step")
                single_server = timed(server and server.trading, "post")
                single_sign, single = await rounds(n_orders, 1, SINGLES_PER_ROUND)
                batch_server = timed(server and server.trading, "post_batch")
                batch_sign, batch = await rounds(n_batches, MAX_BATCH, BATCHES_PER_ROUND)
            resting = len(await rest.open_orders())
        nursery.cancel_scope.cancel()
    return {
        "server": "this thread" if server is not None else "its own process",
        "world": "still" if still else "moving", "market": info.market, "token": token, "tick": format_micro(info.tick),
        "single_us": percentiles(single), "single_sign_us_p50": percentiles(single_sign)["p50"],
        "single_server_us_p50": percentiles(single_server)["p50"] if single_server else None,
        "batch_size": MAX_BATCH, "batch_us": percentiles(batch), "batch_sign_us_p50": percentiles(batch_sign)["p50"],
        "batch_server_us_p50": percentiles(batch_server)["p50"] if batch_server else None,
        "world_steps": len(steps), "world_step_us": percentiles(steps) if steps else None,
        "posted": n_orders + n_batches * MAX_BATCH, "accepted": dict(tally.statuses),
        "rejected": sum(tally.rejected.values()), "rejections": dict(tally.rejected), "canceled": canceled,
        "resting_after_cancel": resting,
    }


# --------------------------------------------------------------------------- our side alone


async def serve_instantly() -> None:
    """A loopback HTTP server that answers every order post at once with a canned acceptance, in
    its own process: what is left of the round trip is our side (signing, httpx) and the socket."""
    one = json.dumps({"success": True, "errorMsg": "", "orderID": "0x0", "status": "live"})
    answers = {"/order": one, "/orders": "[" + ",".join([one] * MAX_BATCH) + "]"}

    async def handle(stream: trio.SocketStream) -> None:
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                pending += chunk
            head, _, pending = pending.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(pending) < length:
                pending += await stream.receive_some(65536)
            pending = pending[length:]
            body = answers.get(head.split(b" ")[1].decode(), "{}").encode()
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                                  + str(len(body)).encode() + b"\r\n\r\n" + body)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(handle, listeners)


@contextlib.contextmanager
def instant_process() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-instantly"], stdout=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{(proc.stdout or ()).readline().strip()}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def our_side(n_orders: int, n_batches: int, seed: int, url: str) -> dict[str, Any]:
    """Sign and post to the instant server: single orders and batches of 15, p50/p99 in µs."""
    markets, requests = sign_orders(n_orders + n_batches * MAX_BATCH, seed)
    key = SigningKey(Secret(value=HARDHAT_KEY))
    async with httpx.AsyncClient(base_url=url) as client:
        clock = TrioClock()
        rest = ClobRest(client=client, creds=credentials_for(key.address), address=key.address, clock=clock,
                        limiter=RateLimiter(clock, {"default": 1 << 40}))
        gw = gateway(rest, "owner", markets, clock, seed)
        timings: dict[int, list[int]] = {1: [], MAX_BATCH: []}
        at = 0
        for size, count in ((1, n_orders), (MAX_BATCH, n_batches)):
            for _ in range(count):
                batch, at = requests[at : at + size], at + size
                started = time.perf_counter_ns()  # clock-ok
                await rest.post_orders([gw.body(request) for request in batch])
                timings[size].append(time.perf_counter_ns() - started)  # clock-ok
    return {"ours_single_us": percentiles(timings[1]), "ours_batch_us": percentiles(timings[MAX_BATCH])}


# --------------------------------------------------------------------------- the report


def table(out: dict[str, Any]) -> str:
    def ms(us: int) -> str:
        return f"{us / 1000:.2f} ms"  # float-ok

    single, batch, step = out["single_us"], out["batch_us"], out["world_step_us"]
    rows = [("sign, ours", f"{out['sign_us_per_order']} µs/order", f"{out['sign_orders_per_s']:,}/s",
             f"median of {out['sign_reps']} × {out['sign_orders']:,} orders"),
            ("sign, ours, POLY_1271", f"{out['sign_us_per_order_1271']} µs/order",
             f"{out['sign_orders_per_s_1271']:,}/s", "the same orders as a deposit wallet's (ERC-7739 envelope)")]
    for backend in ECC_BACKENDS:
        if f"official_{backend}_us_per_order" not in out:
            rows.append(("sign, py-clob-client-v2", "SKIPPED", "", out["official"]))
            break
        rows.append((f"sign, py-clob-client-v2, {backend}", f"{out[f'official_{backend}_us_per_order']} µs/order",
                     f"{out[f'official_{backend}_orders_per_s']:,}/s",
                     f"ours {out[f'speedup_{backend}']}× faster; median of {out['official_reps']} × "
                     f"{out['official_orders']:,}; signatures differing "
                     f"{out[f'official_{backend}_signatures_differ']}, its float amounts differing "
                     f"{out['official_amounts_differ']}"))
    def handler(us: int | None) -> str:
        return "" if us is None else f", server handler {ms(us)}"

    rows += [
        ("POST /order, sign + post", f"p50 {ms(single['p50'])}", f"p99 {ms(single['p99'])}",
         f"p99.9 {ms(single['p999'])}, max {ms(single['max'])}, n {single['n']:,}; p50 signing "
         f"{ms(out['single_sign_us_p50'])}{handler(out['single_server_us_p50'])}"),
        (f"POST /orders ×{out['batch_size']}, sign + post", f"p50 {ms(batch['p50'])}", f"p99 {ms(batch['p99'])}",
         f"max {ms(batch['max'])}, n {batch['n']:,}; p50 signing {ms(out['batch_sign_us_p50'])}"
         f"{handler(out['batch_server_us_p50'])}"),
        ("ours alone, POST /order", f"p50 {ms(out['ours_single_us']['p50'])}",
         f"p99 {ms(out['ours_single_us']['p99'])}", "sign + post to a server that answers at once (own process)"),
        (f"ours alone, POST /orders ×{out['batch_size']}", f"p50 {ms(out['ours_batch_us']['p50'])}",
         f"p99 {ms(out['ours_batch_us']['p99'])}", f"max {ms(out['ours_batch_us']['max'])}"),
        ("simulator", out["server"], f"world {out['world']}",
         f"world steps p50 {ms(step['p50'])}, max {ms(step['max'])}, {out['world_steps']} steps in the client's thread"
         if step else ""),
        ("orders posted", f"{out['posted']:,}", f"rejected {out['rejected']:,}",
         f"accepted {out['accepted']}, canceled {out['canceled']:,}"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3] for row in rows]
    met = out["targets_met"]
    lines.append("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in met.items()))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/submit.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2_000,
                        help="single orders posted, and orders signed per repetition")
    parser.add_argument("--batches", type=int, default=300, help=f"batches of {MAX_BATCH} posted")
    parser.add_argument("--official-orders", type=int, default=100,
                        help="orders the official builder signs per repetition")
    parser.add_argument("--in-process", action="store_true",
                        help="run the simulator in this thread (default: its own process), timing its handlers")
    parser.add_argument("--still", action="store_true",
                        help="with --in-process: hold the simulated market still, the request path alone")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve-instantly", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_instantly:
        trio.run(serve_instantly)
        return 0
    if min(args.orders, args.batches, args.official_orders) < 1:
        parser.error("--orders, --batches and --official-orders must be positive")
    out = signing(args.orders, min(args.official_orders, args.orders), args.seed)
    if args.in_process or args.still:
        out |= trio.run(round_trip, args.orders, args.batches, args.seed, args.still, None)
    else:
        with simulator_process(args.seed) as rest_url:
            out |= trio.run(round_trip, args.orders, args.batches, args.seed, False, rest_url)
    with instant_process() as url:
        out |= trio.run(our_side, args.orders, args.batches, args.seed, url)
    out["targets_met"] = {
        "sign_us": out["sign_us_per_order"] <= TARGETS["sign_us"],
        "sign_us_1271": out["sign_us_per_order_1271"] <= TARGETS["sign_us"],
        **{f"speedup_{b}": out[f"speedup_{b}"] >= TARGETS["speedup"] for b in ECC_BACKENDS if f"speedup_{b}" in out},
        "batch_p99_ms": out["batch_us"]["p99"] <= TARGETS["batch_p99_ms"] * 1000,
        "batch_p99_ms_ours_alone": out["ours_batch_us"]["p99"] <= TARGETS["batch_p99_ms"] * 1000,
    }
    print(table(out))
    problems = []
    if out["rejected"]:
        problems.append(f"{out['rejected']} of {out['posted']} ORDERS WERE REJECTED: {out['rejections']}")
    if out["resting_after_cancel"]:
        problems.append(f"{out['resting_after_cancel']} orders still rest after the last cancel-all")
    for backend in ECC_BACKENDS:
        if out.get(f"official_{backend}_signatures_differ"):
            differ = out[f"official_{backend}_signatures_differ"]
            problems.append(f"{differ} SIGNATURES DIFFER from the official builder's ({backend} backend)")
    if "official_coincurve_us_per_order" not in out:
        print(f"!!! the official builder was NOT measured: {out['official']}")
    for problem in problems:
        print(f"!!! {problem}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, separators=(",", ":")))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
