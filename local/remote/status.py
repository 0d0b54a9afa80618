"""`backtest status ID`: one job: its status and progress, why it failed, or its metrics."""

from __future__ import annotations

import argparse

from backtest_client import BacktestClient

from local.command_common import EXIT_JOB_FAILED
from local.remote.common import ProgressPrinter, add_connection_arguments, describe, run_guarded


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("execution_id", metavar="ID", help="the execution id submit printed")
    p.add_argument("--wait", action="store_true", help="follow the job to its end first")
    p.add_argument("--full", action="store_true", help="every metric, not only the headline ones")
    p.add_argument("--json", action="store_true", help="print the job as the API answers it (JSON)")
    add_connection_arguments(p)


def run(args: argparse.Namespace) -> int:
    def status(client: BacktestClient) -> int:
        if args.wait:
            progress = ProgressPrinter()
            try:
                job = client.wait(args.execution_id, timeout=None, on_progress=progress)
            finally:
                progress.done()
        else:
            job = client.status(args.execution_id)
        if args.json:
            print(job.model_dump_json(indent=2))
        else:
            names = {d.key: d.name for d in client.metric_definitions().metrics} if args.full else None
            print(describe(job, full=args.full, names=names))
        return EXIT_JOB_FAILED if job.status in ("FAILED", "CANCELLED") else 0

    return run_guarded(args, status)
