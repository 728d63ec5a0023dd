"""The soak: the simulator and the bot as separate processes for a simulated day, with every
simulator fault injected in turn and the bot killed (``kill -9``) and started afresh against the
same account; at the end, the bot's ledger against the simulator's account.

    .venv/bin/python bench/soak.py                       # 24 simulated hours, two kills
    .venv/bin/python bench/soak.py --hours 1 --kills 1   # a short one

``mmbot sim`` runs at ``--speed`` simulated seconds per real second with ``--interval``-second
Up/Down windows, so hundreds of markets list and resolve. ``mmbot run --mode sim`` trades every
market with the fake key the tests use (API credentials derived over L1), with a config that
lifts the exposure and daily-loss limits (the simulator redeems nothing, so positions in resolved
markets pile up at cost and would stop the bot within the first simulated hours) and divides the
retention horizon by the speed (it runs on the bot's clock, real time: at the default's hour
nothing would be forgotten in a whole soak). Times in the
schedule are the venue's (``GET /time``): faults every ``--fault-every`` simulated minutes, the
kinds in turn (a delay lasts half the interval), none in the last ten minutes; kills early
(every ``min(1.5, hours / (kills + 1))`` simulated hours), so the last run goes the rest and its
memory can be watched. At the end the bot is stopped with SIGINT and the account read (see
``soak_venue``). The processes die with the soak, however it ends.

It prints progress, then as its last line one JSON object (fields in bench/README.md). The exit
status is 0 only when every target is met.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
if str(ROOT.parent) not in sys.path:
    sys.path.insert(0, str(ROOT.parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mmbot.cli_keys import API_ENV, PRIVATE_KEY_ENV  # noqa: E402
from mmbot.cli_sim import ADMIN_TOKEN_ENV  # noqa: E402
from mmbot.config import RetentionConfig, Secret  # noqa: E402
from mmbot.venues.polymarket.auth import SigningKey  # noqa: E402
from mmbot.venues.simulator.server import FAULT_KINDS as ALL_FAULT_KINDS  # noqa: E402
from soak_logs import RunLog, compare_ledger, known_tokens, run_end, summarise  # noqa: E402
from soak_venue import Listings, SimAdmin, account_truth, derive_credentials, pick_tick_fault  # noqa: E402
from soak_wallet import WALLET_CONFIG, WALLET_FAULT_VALUES, run_arguments, set_up_wallet  # noqa: E402

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # public test key (tests/test_sim_mode.py)
# fault kind -> its value (see server.Fault); the api key is filled in, the tick fault picks a market
# without --deposit-wallet the soak's bot has no chain access, so the chain's and the relayer's
# faults would meet nothing; with it, those it can meet are added (soak_wallet)
FAULT_KINDS = tuple(k for k in ALL_FAULT_KINDS if not k.startswith(("chain_", "relayer_")))
FAULT_VALUES = {"drop": "", "stall": "3", "outage": "5", "delay": "2", "malformed": "", "tick": "", "throttle": "3",
                "restart": "5", "lose": "1", "fail": "{api_key}", "shuffle": "{api_key}"}
QUIET_MIN = 10  # no faults in the last simulated minutes: the end is judged on a settled account
POLL_S = 0.25
LISTING_EVERY_S = 10  # real seconds between looks at the listing
STOP_WAIT_S = 60
MAX_UNEXPECTED_EXITS = 3
SOAK_CONFIG = """\
# the soak's config: the default strategies and limits, but exposure and daily loss lifted so the
# bot keeps trading all day (the simulator redeems nothing; resolved positions stay at cost), and
# the retention horizon (the bot's clock: real seconds) the same simulated time as the default's
seed = {seed}
[risk]
max_gross_exposure = "100000000"
max_daily_loss = "100000000"
[strategies.merge]
enabled = false
[retention]
ended_after_s = {retention_s}
"""
MIN_RETENTION_S = 30  # above the venue deadlines (submit 20 s, cancel 10 s): nothing forgotten in flight


def _die_with_parent() -> None:
    """Children get SIGKILL if the soak itself dies (even by kill -9): nothing is left behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def rss_mib(pid: int) -> float | None:  # float-ok: a measurement in MiB
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) / 1024 if found else None


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.sim: subprocess.Popen[bytes] | None = None
        self.bot: subprocess.Popen[bytes] | None = None
        self.runs: list[RunLog] = []
        self.run_info: list[dict[str, Any]] = []
        self.faults: dict[str, int] = {}
        self.faults_skipped: dict[str, int] = {}
        self.unexpected_exits = 0
        self.rss: list[tuple[float, float]] = []  # the current run's (simulated hours into it, MiB)
        self.listings = Listings()
        self.env = {k: v for k, v in os.environ.items() if k not in API_ENV}
        self.env |= {PRIVATE_KEY_ENV: KEY, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        self.admin_token = secrets.token_urlsafe(24)  # the simulator's admin endpoints want it
        self.env[ADMIN_TOKEN_ENV] = self.admin_token

    def log(self, text: str) -> None:
        print(f"soak: {text}", flush=True)

    # ------------------------------------------------------------------ processes

    def start_sim(self) -> tuple[str, str]:
        a = self.args
        out = open(self.workdir / "sim.out", "wb")
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "mmbot.cli", "sim", "--port", "0", "--ws-port", "0", "--speed", str(a.speed),
             "--interval", str(a.interval), "--markets", str(a.markets), "--seed", str(a.seed),
             "--funding", "0" if a.deposit_wallet else str(a.funding),
             "--block-ms", str(max(20, 2_000 // a.speed)),  # the chain keeps the world's pace
             *(["--batched-price-changes"] if a.batched_price_changes else [])],
            stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT.parent, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = (self.workdir / "sim.out").read_text(errors="replace")
            rest, ws = re.search(r"REST\s+(http://\S+)", text), re.search(r"market channel\s+(ws://\S+)", text)
            if rest and ws:
                return rest.group(1), ws.group(1)
            if self.sim.poll() is not None:
                raise RuntimeError(f"mmbot sim exited {self.sim.returncode}: {text[-500:]}")
            time.sleep(0.1)
        raise RuntimeError("mmbot sim printed no URLs in 60 s")

    def start_bot(self, rest: str, ws: str, now_h: float) -> None:  # float-ok: hours, for the schedule
        number = len(self.runs) + 1
        db = self.workdir / f"run-{number}.db"
        out = open(self.workdir / f"run-{number}.out", "wb")
        self.bot = subprocess.Popen(
            [sys.executable, "-m", "mmbot.cli", "run", "--mode", "sim", "--ws", ws, "--rest", rest, "--db", str(db),
             "--config", str(self.workdir / "soak.toml"), *(run_arguments(rest) if self.args.deposit_wallet else [])],
            stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT.parent, preexec_fn=_die_with_parent,
        )
        self.runs.append(RunLog(number=number, db=db, killed=False))
        self.run_info.append({"run": number, "from_h": round(now_h, 3)})
        self.rss = []
        self.log(f"{now_h:6.2f} h: run {number} started (pid {self.bot.pid}, {db.name})")

    def kill_bot(self, now_h: float) -> None:  # float-ok: hours
        assert self.bot is not None
        self.bot.send_signal(signal.SIGKILL)
        self.bot.wait()
        self.runs[-1].killed = True
        self.run_info[-1] |= {"to_h": round(now_h, 3), "end": "kill -9"}
        self.log(f"{now_h:6.2f} h: run {self.runs[-1].number} killed (-9)")

    def stop_bot(self, now_h: float) -> bool:  # float-ok: hours
        """SIGINT and wait: True if it exited 0 in time."""
        assert self.bot is not None
        self.bot.send_signal(signal.SIGINT)
        try:
            code = self.bot.wait(timeout=STOP_WAIT_S * (6 if self.args.deposit_wallet else 1))  # chain waits
        except subprocess.TimeoutExpired:
            self.bot.kill()
            self.bot.wait()
            code = None
            self.runs[-1].killed = True
        self.run_info[-1] |= {"to_h": round(now_h, 3), "end": f"SIGINT, exit {code}"}
        self.log(f"{now_h:6.2f} h: run {self.runs[-1].number} stopped (SIGINT): exit {code}")
        return code == 0

    def cleanup(self) -> None:
        for proc in (self.bot, self.sim):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    # ------------------------------------------------------------------ faults

    def inject(self, admin: SimAdmin, kind: str, api_key: str, now_h: float) -> bool:  # float-ok: hours
        """Inject one fault of ``kind``; False if there was nothing to inject it into."""
        value = FAULT_VALUES[kind].format(api_key=api_key)
        if kind == "tick":
            value = pick_tick_fault(admin.markets(), self.rng) or ""
            if not value:
                self.faults_skipped[kind] = self.faults_skipped.get(kind, 0) + 1
                self.log(f"{now_h:6.2f} h: fault tick skipped: no open market on the 0.01 grid")
                return False
        answer = admin.fault(kind, value)
        self.faults[kind] = self.faults.get(kind, 0) + 1
        self.log(f"{now_h:6.2f} h: fault {kind} {answer}")
        return True

    # ------------------------------------------------------------------ the run

    def run(self) -> dict[str, Any]:
        a = self.args
        started = time.monotonic()
        config = SOAK_CONFIG.format(seed=a.seed, retention_s=a.retention_s)
        if a.deposit_wallet:  # merges on, and the sweep at the bot's (real-time) pace
            config = config.replace("[strategies.merge]\nenabled = false\n", "") + WALLET_CONFIG.format(
                poll_ms=max(20, 2_000 // a.speed))
        (self.workdir / "soak.toml").write_text(config)
        rest, ws = self.start_sim()
        admin = SimAdmin(rest, self.admin_token)
        key = SigningKey(Secret(value=KEY))
        creds = derive_credentials(rest, key)  # the account exists (funded) from here
        if a.deposit_wallet:
            wallet = set_up_wallet(rest, self.env, ROOT.parent, funding=a.funding, workdir=self.workdir)
            self.log(f"deposit wallet {wallet} deployed, approved and funded with {a.funding} pUSD")
        origin = admin.venue_s()
        self.log(f"simulator at {rest}, speed x{a.speed}, {a.interval} s windows, the bot's retention"
                 f" {a.retention_s} s; workdir {self.workdir}")

        def now_h() -> float:  # float-ok: simulated hours
            return (admin.venue_s() - origin) / 3600

        every_h = min(1.5, a.hours / (a.kills + 1))
        kills = [every_h * (k + 1) for k in range(a.kills)]
        step_h = a.fault_every / 60
        faults = [step_h * (k + 1) for k in range(int(a.hours / step_h) + 1)
                  if step_h * (k + 1) <= a.hours - QUIET_MIN / 60]
        kinds = [k.strip() for k in a.fault_kinds.split(",")] if a.fault_kinds else list(FAULT_VALUES)
        slot = 0
        delay_until: float | None = None  # float-ok: hours; a delay lasts half a fault interval
        self.start_bot(rest, ws, 0.0)
        looked = 0.0
        while True:
            time.sleep(POLL_S)
            now = now_h()
            if time.monotonic() - looked >= LISTING_EVERY_S:
                self.listings.update(admin.markets())
                looked = time.monotonic()
            if now >= a.hours:
                break
            assert self.bot is not None
            if self.bot.poll() is not None:  # it exited on its own
                self.unexpected_exits += 1
                self.run_info[-1] |= {"to_h": round(now, 3), "end": f"exited {self.bot.returncode} by itself"}
                self.log(f"{now:6.2f} h: run {self.runs[-1].number} exited {self.bot.returncode} by itself")
                if self.unexpected_exits > MAX_UNEXPECTED_EXITS:
                    break
                self.start_bot(rest, ws, now)
                continue
            mib = rss_mib(self.bot.pid)
            if mib is not None:
                self.rss.append((now - self.run_info[-1]["from_h"], mib))
            if delay_until is not None and delay_until <= now:
                admin.fault("delay", "0")
                delay_until = None
            while faults and faults[0] <= now:
                faults.pop(0)
                kind = kinds[slot % len(kinds)]
                slot += 1
                if self.inject(admin, kind, creds.api_key, now) and kind == "delay":
                    delay_until = now + step_h / 2
            if kills and kills[0] <= now:
                kills.pop(0)
                self.kill_bot(now)
                self.start_bot(rest, ws, now_h())
        end_h = now_h()
        running = self.bot is not None and self.bot.poll() is None
        clean = self.stop_bot(end_h) if running else False
        stats = admin.stats()
        sim_mib = rss_mib(self.sim.pid) if self.sim is not None else None
        stats["rss_mib"] = None if sim_mib is None else round(sim_mib, 1)
        ledger_tokens = set((run_end(self.runs[-1].db) or {}).get("positions", {}))
        account = account_truth(admin, rest, key, creds, ledger_tokens)
        self.listings.update(admin.markets())
        admin.close()
        (self.workdir / "account.json").write_text(json.dumps(
            {"venue": {"cash": account.cash, "positions": account.positions, "open_orders": account.open_orders},
             "ledger": run_end(self.runs[-1].db)}, indent=1))
        return self.figures(end_h, time.monotonic() - started, clean, account, stats)

    def figures(self, hours: float, wall_s: float, clean: bool, account: Any,  # float-ok: hours, seconds
                stats: dict[str, Any]) -> dict[str, Any]:
        a = self.args
        logs = summarise(self.runs)
        last = self.runs[-1].db
        ledger = compare_ledger(run_end(last), account.cash, account.positions, known_tokens(last))
        span = self.run_info[-1].get("to_h", hours) - self.run_info[-1]["from_h"]
        baseline_h = min(1.0, span / 2)
        after = [mib for age, mib in self.rss if age >= baseline_h]
        start_mib, end_mib = (after[0], self.rss[-1][1]) if after else (None, None)
        growth = None if not start_mib else round((end_mib - start_mib) / start_mib * 100, 1)
        out = {
            "simulated_hours": round(hours, 3), "wall_s": round(wall_s, 1), "speed": a.speed,
            "interval_s": a.interval, "markets": a.markets, "seed": a.seed, "retention_s": a.retention_s,
            **self.listings.counts(),
            "ledger_equals_venue": ledger.pop("ledger_equals_venue"),
            "trades_venue": account.trades, "trades_failed_venue": account.trades_failed,
            "fills_booked": logs["fills_booked"], "fills_adopted": logs["fills_adopted"],
            "double_counted": logs["double_counted"],
            "cancels_sent": logs["cancels_sent"], "cancels_unanswered": logs["cancels_unanswered"],
            "orders_left_open": account.open_orders,
            "rss_mib_start": None if start_mib is None else round(start_mib, 1),
            "rss_mib_end": None if end_mib is None else round(end_mib, 1),
            "rss_growth_pct": growth, "rss_baseline_after_h": round(baseline_h, 2),
            "rss_mib_max": round(max(m for _, m in self.rss), 1) if self.rss else None,
            "restarts": logs["restarts"], "breaker_trips": logs["breaker_trips"], "errors": logs["errors"],
            "kills": sum(1 for r in self.runs if r.killed), "runs": self.run_info,
            "unexpected_exits": self.unexpected_exits, "final_stop_clean": clean,
            "faults_injected": self.faults, "faults_skipped": self.faults_skipped,
            "account_source": account.source, "venue_counts": account.counts, **ledger,
            "double_counted_across_runs": logs["double_counted_across_runs"],
            "cancels_unanswered_examples": logs["cancels_unanswered_examples"],
            "cancel_answer_ms": logs["cancel_answer_ms"], "cancels_answered_late": logs["cancels_answered_late"],
            "orders_never_ended": logs["orders_never_ended"],
            "orders_never_ended_examples": logs["orders_never_ended_examples"],
            "ledger_open_orders_at_end": (run_end(last) or {}).get("open_orders"),
            "log_counts": logs["log_counts"],
            "sim": {k: stats.get(k) for k in ("frames_sent", "slow_disconnects", "faults", "heartbeat_cancels",
                                              "forgotten", "rss_mib")},
            "workdir": str(self.workdir),
        }
        out["targets_met"] = {
            "ledger_equals_venue": out["ledger_equals_venue"] is True,
            "double_counted": out["double_counted"] == 0,
            "cancels_unanswered": out["cancels_unanswered"] == 0,
            "orders_left_open": out["orders_left_open"] == 0,
            "rss_growth_pct": growth is not None and growth <= 10,
            # not targets but conditions for the figures to mean anything
            "final_stop_clean": clean,
            "no_unexpected_exits": self.unexpected_exits == 0,
        }
        return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument("--speed", type=int, default=96, help="simulated seconds per real second (default 96)")
    parser.add_argument("--interval", type=int, default=120, help="Up/Down window seconds (default 120)")
    parser.add_argument("--markets", type=int, default=4, help="simulator markets at a time (default 4)")
    parser.add_argument("--kills", type=int, default=2, help="kill -9 and fresh starts (default 2)")
    parser.add_argument("--fault-every", type=float, default=15.0, help="simulated minutes between faults (default 15)")
    parser.add_argument("--fault-kinds", help=f"comma-separated, in turn (default every kind: {','.join(FAULT_KINDS)},"
                                              f" and with --deposit-wallet {','.join(WALLET_FAULT_VALUES)})")
    parser.add_argument("--funding", type=int, default=1_000_000, help="the account's pUSD (default 1,000,000)")
    default_s = RetentionConfig().ended_after_s
    parser.add_argument("--retention-s", type=int, help=f"the bot's [retention] ended_after_s (default: the"
                        f" default's {default_s} s divided by --speed, at least {MIN_RETENTION_S})")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batched-price-changes", action="store_true",
                        help="the simulator packs each step's level changes of a market into one price_change"
                             " (the shape before issue 11) instead of the venue's one or two entries a message")
    parser.add_argument("--deposit-wallet", action="store_true",
                        help="the account is a deposit wallet made from nothing (deploy, approve, fund), trading"
                             " POLY_1271 orders with merges and redemptions on chain; the chain's and the"
                             " relayer's faults join the others")
    parser.add_argument("--workdir", help="where the logs go (default: a new temporary directory, kept)")
    args = parser.parse_args(argv)
    if args.deposit_wallet:
        FAULT_VALUES.update(WALLET_FAULT_VALUES)
    kinds = set(FAULT_VALUES)
    unknown = set((args.fault_kinds or "").split(",")) - kinds - {""}
    if unknown or not set(FAULT_KINDS) <= kinds <= set(ALL_FAULT_KINDS):
        parser.error(f"--fault-kinds: expected some of {','.join(FAULT_VALUES)}; unknown: {sorted(unknown)}")
    if args.hours <= 0 or args.speed < 1 or args.kills < 0 or args.fault_every <= 0:
        parser.error("--hours, --speed and --fault-every expect positive numbers, --kills at least 0")
    if args.retention_s is None:
        args.retention_s = max(MIN_RETENTION_S, default_s // args.speed)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mmbot-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    soak = Soak(args, workdir)
    try:
        result = soak.run()
    finally:
        soak.cleanup()
    print(json.dumps(result))
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
