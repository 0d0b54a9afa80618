"""`backtest cancel ID`: stop a job (a QUEUED one never runs; a RUNNING one stops within about a second)."""

from __future__ import annotations

import argparse
import sys

from backtest_client import BacktestClient

from local.remote.common import add_connection_arguments, progress_text, run_guarded


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("execution_id", metavar="ID", help="the job to cancel")
    p.add_argument("--no-wait", action="store_true", help="do not wait for a RUNNING job to stop")
    add_connection_arguments(p)


def run(args: argparse.Namespace) -> int:
    def cancel(client: BacktestClient) -> int:
        job = client.cancel(args.execution_id)
        if job.status in ("QUEUED", "RUNNING") and not args.no_wait:
            print(f"{job.execution_id}  {progress_text(job)}: waiting for it to stop ...", file=sys.stderr)
            job = client.wait(args.execution_id, timeout=60)
        print(f"{job.execution_id}  {job.status}")
        return 0

    return run_guarded(args, cancel)
