"""`backtest report RESULT.json --out report.html`: the HTML report of a stored result.

The report draws the bars as well as the result (buy-and-hold, the price chart). Synthetic data is the
same for the same request, so its bars are generated again and checked against the result's data
fingerprint; a result of your own data needs that CSV again (`--data`, as for `backtest run`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local.command_common import EXIT_BAD_INPUT


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result", type=Path, help="a stored result (backtest run --json, or the service's results_url)")
    p.add_argument("--out", type=Path, help="the HTML file (default: the result's path with .html)")
    p.add_argument("--data", type=Path, help="the CSV the result was run on, for a result of your own data")
    p.add_argument("--lot-size", type=float, default=1.0, help="lot size of --data (default 1)")
    p.add_argument("--periods-per-year", type=int, help="with --data: 252 or 365 (default: inferred)")


def run(args: argparse.Namespace) -> int:
    from backtest_engine.csv_data import read_csv_bars
    from backtest_engine.errors import EngineError
    from backtest_engine.market_data import load_bars
    from backtest_engine.report import result_from_json
    from local.compare_command import FetchError, read_result_file
    from local.run_command import write_report

    try:
        result = result_from_json(read_result_file(args.result))
        req = result.request
        if args.data is not None:
            bars = read_csv_bars(
                args.data, symbol=req["symbol"], lot_size=args.lot_size, periods_per_year=args.periods_per_year
            )
        elif result.market_data_stats.source not in (None, "synthetic"):
            raise FetchError(f"{args.result} was run on {result.market_data_stats.source} data: pass it with --data")
        else:
            bars = load_bars(req["symbol"], req["timeframe"], req["start_date"], req["end_date"])
    except (FetchError, EngineError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if bars.fingerprint() != result.data_fingerprint:
        print(
            f"error: the bars differ from the ones {args.result} was run on "
            f"({bars.fingerprint()} against {result.data_fingerprint})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    out = args.out or args.result.with_suffix(".html")
    written = write_report(result, bars, out)
    if written is None:
        return EXIT_BAD_INPUT
    print(f"report: {written}")
    return 0
