"""What the sandbox costs per job, apart from the strategy: printed as one JSON object (used by `bench/run.py`).

- ``zygote_start_s``: a fresh `Supervisor` until its zygote is warm and answers (imports and warm-up);
- ``job_s``: a whole `run_backtest` of a strategy that returns zeros for 10 bars (the fixed cost of a job:
  compile, spawn, job over the pipe, confinement, the strategy, the answer, fills, metrics, result);
- ``ready_s``: from the start of `Supervisor.run` to the child's LAYERS frame, i.e. fork, job and confinement
  done, the first bar about to run ("fork to first bar").
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

from backtest_engine.bars import Bars
from backtest_engine.engine import run_backtest
from backtest_engine.models import BacktestRequest
from backtest_engine.sandbox.supervisor import Supervisor

RUNS = 30
TRIVIAL = "def generate_signals(data, params):\n    return np.zeros(len(data))\n"


def main() -> None:
    starts = []
    for _ in range(3):
        supervisor = Supervisor()
        t = time.perf_counter()
        supervisor.layers()
        starts.append(time.perf_counter() - t)
        supervisor.close()
    supervisor = Supervisor()
    supervisor.layers()
    n = 10
    times = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n) * np.timedelta64(1, "m")
    close = np.linspace(100.0, 101.0, n)
    bars = Bars("TEST", "1m", times, close, close, close, close, np.ones(n), 1.0, 365)
    request = BacktestRequest.model_validate(
        {"strategy_code": TRIVIAL, "symbol": "TEST"}, context={"custom_data": True}
    )
    run_backtest(request, bars=bars, supervisor=supervisor)
    jobs, ready = [], []
    for _ in range(RUNS):
        t = time.perf_counter()
        result = run_backtest(request, bars=bars, supervisor=supervisor)
        jobs.append(time.perf_counter() - t)
        ready.append(result.timings["sandbox_ready"])
    supervisor.close()
    med = statistics.median
    print(
        json.dumps(
            {
                "zygote_start_s": med(starts),
                "job_s": med(jobs),
                "job_best_s": min(jobs),
                "ready_s": med(ready),
                "ready_best_s": min(ready),
                "runs": RUNS,
            }
        )
    )


if __name__ == "__main__":
    main()
