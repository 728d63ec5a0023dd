"""``mmbot sim`` as a subprocess for the CLI tests: started on free ports, its URLs read from what it
prints at start, its later output drained on a thread (so a chatty simulator — every alert its
inbox receives is a line — never blocks on a full pipe), stopped at the end."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import attrs

NAMES = ("market channel", "REST", "Gamma listing", "chain JSON-RPC", "relayer", "admin token", "alert inbox")
_LINE = re.compile(rf"\s+({'|'.join(NAMES)})\s+(\S+)")


@attrs.define
class SimProcess:
    process: subprocess.Popen[str]
    urls: dict[str, str]  # by the names it prints: "market channel", "REST", "admin token", ...
    output: list[str] = attrs.field(factory=list)  # what it printed after its start lines

    @property
    def ws(self) -> str:
        return self.urls["market channel"]

    @property
    def rest(self) -> str:
        return self.urls["REST"]


@contextlib.contextmanager
def simulator_process(*args: str, cwd: Path | None = None) -> Iterator[SimProcess]:
    """``mmbot sim --port 0 --ws-port 0 ARGS...`` until the block ends."""
    proc = subprocess.Popen([sys.executable, "-m", "mmbot.cli", "sim", "--port", "0", "--ws-port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    assert proc.stdout is not None
    sim = SimProcess(process=proc, urls={})
    try:
        for line in proc.stdout:
            if m := _LINE.match(line):
                sim.urls[m.group(1)] = m.group(2)
            if "Ctrl-C" in line:
                break
        else:
            raise AssertionError(f"mmbot sim did not start: {sim.urls}")
        threading.Thread(target=lambda: sim.output.extend(proc.stdout or ()), daemon=True).start()
        yield sim
    finally:
        proc.terminate()
        proc.wait(timeout=10)
