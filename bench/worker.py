"""One benchmark contender in its own process, driven by `bench/run.py` over stdin/stdout (JSON lines).

Each contender runs in a separate interpreter so none pays for another's imports or memory (our sandbox
forks the process it runs in: a parent that also holds vectorbt, numba and bokeh forks slower), while
run.py interleaves their runs so that the machine's noise hits them alike.

Commands (one JSON object per line): ``{"op": "load", "bars": N}`` builds the benchmark bars and
answers their fingerprint (equal fingerprints: identical data in every contender); ``{"op": "run"}``
runs once and answers the seconds taken (measured here, around the call only) and, for our engine, its
stage timings and the time its JSON (`result.json_bytes`, what the service stores) then takes;
``{"op": "check"}`` answers the last run's
trades and marked-to-market final equity; ``{"op": "quit"}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers

from backtest_engine.result import json_bytes

CONTENDERS = ("ours_vectorized", "ours_event", "vectorbt", "backtesting")


class Contender:
    def __init__(self, name: str) -> None:
        if name not in CONTENDERS:
            raise SystemExit(f"unknown contender {name!r}; one of {', '.join(CONTENDERS)}")
        self.name = name
        self.bars: Any = None
        self.frame: Any = None
        self.last: Any = None

    def load(self, n: int) -> dict[str, Any]:
        self.bars = peers.benchmark_bars(n)
        self.frame = None if self.name.startswith("ours") else peers.peer_frame(self.bars)
        return {
            "bars": len(self.bars),
            "fingerprint": self.bars.fingerprint(),
            "low": float(self.bars.low.min()),
            "high": float(self.bars.high.max()),
        }

    def run(self) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        start = time.perf_counter()
        if self.name == "ours_vectorized":
            self.last = peers.run_ours("vectorized", self.bars)
        elif self.name == "ours_event":
            self.last = peers.run_ours("event", self.bars)
        elif self.name == "vectorbt":
            self.last = peers.run_vectorbt(self.frame)
        else:
            self.last = peers.run_backtesting(self.frame)
        answer["seconds"] = time.perf_counter() - start
        if self.name.startswith("ours"):
            answer["timings"] = self.last.timings
            start = time.perf_counter()
            text = json_bytes(self.last)
            answer["json_seconds"] = time.perf_counter() - start
            answer["json_bytes"] = len(text)
        return answer

    def check(self) -> dict[str, Any]:
        if self.name.startswith("ours"):
            run = peers.ours_run(self.last)
        elif self.name == "vectorbt":
            run = peers.vectorbt_run(self.last[0])
        else:
            run = peers.backtesting_run(self.last)
        return {"trades": run.trades, "final_equity": run.final_equity}


def main() -> None:
    contender = Contender(sys.argv[1])
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "quit":
            break
        try:
            if op == "load":
                answer = contender.load(int(command["bars"]))
            elif op == "run":
                answer = contender.run()
            elif op == "check":
                answer = contender.check()
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as exc:  # reported to run.py, which stops with it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
