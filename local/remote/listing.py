"""`backtest list`: your jobs, newest first, with their headline numbers."""

from __future__ import annotations

import argparse
import json

from backtest_client import BacktestClient

from local.remote.common import add_connection_arguments, fmt, run_guarded

STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    p.add_argument("--symbol", help="only jobs of this symbol")
    p.add_argument("--name", help="only jobs whose name starts with this")
    p.add_argument("--limit", type=int, default=20, help="at most this many jobs (default 20; 0: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_connection_arguments(p)


def run(args: argparse.Namespace) -> int:
    def listing(client: BacktestClient) -> int:
        jobs = client.list(status=args.status, symbol=args.symbol, name=args.name, limit=args.limit or None)
        if args.json:
            for job in jobs:
                print(json.dumps(job.model_dump(mode="json")))
            return 0
        rows = [
            (
                job.execution_id,
                job.status,
                f"{job.symbol} {job.timeframe}",
                job.created_at[:19].replace("T", " "),
                fmt(job.total_return_percent) if job.total_return_percent is not None else "",
                job.name or "",
            )
            for job in jobs
        ]
        header = ("EXECUTION ID", "STATUS", "RUN", "CREATED (UTC)", "RETURN %", "NAME")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print(
                "  ".join(
                    cell.ljust(w) if i != 4 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                ).rstrip()
            )
        if not rows:
            print("(no jobs)")
        return 0

    return run_guarded(args, listing)
