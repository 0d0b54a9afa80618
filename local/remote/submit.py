"""`backtest submit STRATEGY.py`: queue a backtest on a deployment (or backtest local); with --wait, follow
its progress and print the metrics as `backtest run` does. Without --wait it prints the execution id."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from backtest_client import BacktestClient

from local.command_common import EXIT_BAD_INPUT, EXIT_JOB_FAILED, read_strategy
from local.remote.common import (
    ProgressPrinter,
    UsageError,
    add_connection_arguments,
    describe,
    run_guarded,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("strategy", type=Path, help="Python file defining generate_signals or initialize/on_bar")
    request = p.add_argument_group("request (default: the service's)")
    request.add_argument("--symbol", help="symbol, e.g. AAPL or BTCUSD")
    request.add_argument("--timeframe", help="bar size: 1m 5m 15m 1h 4h 1d")
    request.add_argument("--start", help="first day, YYYY-MM-DD")
    request.add_argument("--end", help="last day, YYYY-MM-DD")
    request.add_argument("--cash", type=float, help="initial capital")
    request.add_argument("--commission", type=float, help="fraction per fill")
    request.add_argument("--slippage", type=float, help="fraction against the trader")
    request.add_argument("--param", action="append", default=[], metavar="K=V", help="strategy parameter (repeatable)")
    request.add_argument("--name", help="a label for the run (default: the file's name)")
    p.add_argument("--wait", action="store_true", help="follow the job to its end, then print its metrics")
    p.add_argument("--wait-timeout", type=float, default=900.0, help="seconds --wait waits at most (default 900)")
    p.add_argument("--full", action="store_true", help="with --wait: every metric, not only the headline ones")
    p.add_argument("--idempotency-key", help="the submit's Idempotency-Key (default: a new one)")
    add_connection_arguments(p)


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    from local.run_command import parse_param

    try:
        parameters = dict(parse_param(p) for p in args.param)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return {
        "symbol": args.symbol,
        "timeframe": args.timeframe,
        "start_date": args.start,
        "end_date": args.end,
        "initial_capital": args.cash,
        "commission": args.commission,
        "slippage": args.slippage,
        "parameters": parameters or None,
        "name": args.name or args.strategy.stem,
    }


def run(args: argparse.Namespace) -> int:
    code = read_strategy(args.strategy)
    if code is None:
        return EXIT_BAD_INPUT

    def submit(client: BacktestClient) -> int:
        submitted = client.submit(code, idempotency_key=args.idempotency_key, **_fields(args))
        if not args.wait:
            print(submitted.execution_id)
            print(f"queued; follow it with: backtest status {submitted.execution_id}", file=sys.stderr)
            return 0
        progress = ProgressPrinter()
        try:
            job = client.wait(submitted.execution_id, timeout=args.wait_timeout, on_progress=progress)
        finally:
            progress.done()
        names = {d.key: d.name for d in client.metric_definitions().metrics} if args.full else None
        print(describe(job, full=args.full, names=names))
        return 0 if job.status == "SUCCEEDED" else EXIT_JOB_FAILED

    return run_guarded(args, submit)
