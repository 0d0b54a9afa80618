"""`backtest results ID --out result.json`: the full result of a SUCCEEDED job (request, metrics, every
trade, the equity curve, logs), from its presigned link; `--report report.html`: its HTML report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backtest_client import BacktestClient

from local.remote.common import add_connection_arguments, run_guarded


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("execution_id", metavar="ID", help="the execution id of a SUCCEEDED job")
    p.add_argument("--out", type=Path, help="write the result JSON here (default: standard output)")
    p.add_argument("--report", type=Path, metavar="PATH", help="also save the job's HTML report here")
    add_connection_arguments(p)


def run(args: argparse.Namespace) -> int:
    def results(client: BacktestClient) -> int:
        document = client.result(args.execution_id)
        text = json.dumps(document, separators=(",", ":"))
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
            trades = len(document.get("trades", {}).get("pnl", []))
            bars = len(document.get("equity_curve", {}).get("time", []))
            print(f"wrote {args.out} ({trades:,} trades, {bars:,} bars)", file=sys.stderr)
        else:
            sys.stdout.write(text + "\n")
        if args.report:
            client.report(args.execution_id, args.report)
            print(f"wrote {args.report}", file=sys.stderr)
        return 0

    return run_guarded(args, results)
