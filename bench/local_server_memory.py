"""The local server's memory over a long session: RSS after every 100 of 1,000 jobs.

    .venv/bin/python bench/local_server_memory.py                 # the server as `backtest local` runs it
    .venv/bin/python bench/local_server_memory.py --days-per-batch 31   # a month passes after each 100 jobs

The server is `backtest local`'s (`LocalServer`: moto's threaded server, the four handlers, 2 workers) in
this process, driven over HTTP as a frontend would: submit a job, poll it to its end, list the caller's
jobs. RSS is this process's (the sandbox's zygote and children are other processes, of fixed size).
With --days-per-batch, after each batch the local expiry (`local/expiry.py`: DynamoDB TTL and S3
lifecycle, as AWS applies them) sweeps with its clock that many days on, as if the frontend came back
then (31: everything of the batch has expired).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

SMA = """\
import numpy as np
import talib


def generate_signals(data, params):
    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 5))
    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 20))
    return np.where(fast > slow, 1.0, 0.0)
"""
RUN = {"symbol": "AAPL", "timeframe": "1h", "start_date": "2024-01-01", "end_date": "2024-03-31"}


def rss_kb(pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fixed_clock(moment: float) -> Callable[[], float]:
    return lambda: moment


def one_job(base: str, session: requests.Session, i: int) -> str:
    body: dict[str, Any] = {"strategy_code": SMA, **RUN, "parameters": {"fast": 5 + i % 7, "slow": 20 + i % 11}}
    answer = session.post(f"{base}/api/backtest/run", json=body, headers={"Idempotency-Key": f"job-{i}"}, timeout=30)
    answer.raise_for_status()
    execution_id = str(answer.json()["execution_id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = session.get(f"{base}/api/backtest/status/{execution_id}", timeout=30).json()
        if job["status"] in ("SUCCEEDED", "FAILED"):
            session.get(f"{base}/api/backtest/executions?limit=20", timeout=30).raise_for_status()
            return str(job["status"])
        time.sleep(0.05)
    raise TimeoutError(execution_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4, help="concurrent frontends")
    parser.add_argument("--days-per-batch", type=float, default=0.0, help="move the expiry clock on after each batch")
    args = parser.parse_args()

    from local.http_server import LocalServer
    from local.stack import LocalStack

    stack = LocalStack(server=True)
    # With --days-per-batch the sweep runs here, between batches (the server's own runs every minute on
    # the real clock, which expires nothing of a 30-day TTL within a session).
    interval = None if args.days_per_batch else 60.0
    with LocalServer(
        port=0, workers=2, stack=stack, log=lambda _: None, log_requests=False, expiry_interval_seconds=interval
    ) as server:
        sessions = [requests.Session() for _ in range(args.clients)]
        for s in sessions:
            s.headers["X-Local-User"] = "memory-probe"
        gc.collect()
        start = rss_kb()
        print(f"jobs  RSS (MB)  +MB since start  stored jobs  result objects   (started at {start / 1024:.1f} MB)")
        done = 0
        with ThreadPoolExecutor(args.clients) as pool:
            while done < args.jobs:
                n = min(args.batch, args.jobs - done)
                statuses = list(
                    pool.map(lambda i: one_job(server.url, sessions[i % args.clients], i), range(done, done + n))
                )
                assert statuses.count("SUCCEEDED") == n, statuses
                done += n
                if args.days_per_batch:  # that many days pass: then the sweep AWS would have made
                    stack.expiry.clock = fixed_clock(time.time() + args.days_per_batch * 86400)
                    stack.expiry.sweep()
                    stack.expiry.clock = time.time
                gc.collect()
                now = rss_kb()
                items = len(stack.job_items())
                objects = len(stack.result_keys())
                print(
                    f"{done:4d}  {now / 1024:8.1f}  {(now - start) / 1024:+15.1f}  {items:11d}  {objects:14d}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
