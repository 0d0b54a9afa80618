"""`backtest run STRATEGY.py`: backtest one strategy in this process and print the result."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backtest_engine.errors import EngineError, StrategyFault
from local.command_common import EXIT_BAD_INPUT, EXIT_JOB_FAILED, read_strategy


def request_default(field: str) -> Any:
    """The default of a `BacktestRequest` field: the CLI's defaults are the API's."""
    from backtest_engine.models import BacktestRequest

    return BacktestRequest.model_fields[field].default


def add_request_arguments(p: argparse.ArgumentParser, *, symbol_note: str = "") -> None:
    """--symbol, --timeframe, --start, --end (`backtest run` and `backtest demo`), the model's defaults."""
    from backtest_engine.catalog import TIMEFRAMES

    symbol, timeframe = request_default("symbol"), request_default("timeframe")
    start, end = request_default("start_date").isoformat(), request_default("end_date").isoformat()
    p.add_argument("--symbol", default=symbol, help=f"symbol (default {symbol}){symbol_note}")
    p.add_argument("--timeframe", default=timeframe, choices=list(TIMEFRAMES), help=f"bar size (default {timeframe})")
    p.add_argument("--start", default=start, help=f"first day, YYYY-MM-DD (default {start})")
    p.add_argument("--end", default=end, help=f"last day, YYYY-MM-DD (default {end})")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("strategy", type=Path, help="Python file defining generate_signals or initialize/on_bar")
    add_request_arguments(p, symbol_note="; with --data, a label")
    cash, commission, slippage = (request_default(f) for f in ("initial_capital", "commission", "slippage"))
    p.add_argument("--cash", type=float, default=cash, help=f"initial capital (default {cash:g})")
    p.add_argument("--commission", type=float, default=commission, help=f"fraction per fill (default {commission:g})")
    p.add_argument(
        "--slippage", type=float, default=slippage, help=f"fraction against the trader (default {slippage:g})"
    )
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="strategy parameter (repeatable)")
    p.add_argument("--name", help="a label for the run")
    p.add_argument("--data", type=Path, help="CSV with time,open,high,low,close,volume instead of synthetic data")
    p.add_argument("--lot-size", type=float, default=1.0, help="lot size of --data (default 1)")
    p.add_argument("--periods-per-year", type=int, help="with --data: 252 or 365 (default: inferred)")
    p.add_argument("--max-bars", type=int, default=None, help="refuse requests over this many bars (default: no cap)")
    p.add_argument(
        "--dataset", metavar="ID", help="run on the API, on your dataset (with --api-url; see backtest datasets)"
    )
    p.add_argument("--api-url", help="with --dataset: the API, e.g. http://127.0.0.1:8007 (backtest local)")
    p.add_argument("--user", help="with --dataset: the caller on backtest local (X-Local-User)")
    p.add_argument("--token", help="with --dataset: a Cognito ID token for a deployed API")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--report", type=Path, metavar="PATH", help="also write the HTML report (one file, no network)")
    p.add_argument("--full", action="store_true", help="print every metric, not only the headline ones")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ValueError(f"--param {text!r}: expected NAME=VALUE")
    key, raw = text.split("=", 1)
    value: Any = raw
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
    return key.strip(), value


class ProgressBar:
    """A one-line progress bar on stderr (the sandbox child reports bars done; this process draws)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        filled = int(fraction * 30)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}%")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\r" + " " * (len(self.label) + 42) + "\r")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from backtest_engine.catalog import estimate_bars
    from backtest_engine.csv_data import read_csv_bars
    from backtest_engine.engine import run_backtest
    from backtest_engine.market_data import load_bars
    from backtest_engine.metric_definitions import metric_definitions
    from backtest_engine.models import BacktestRequest
    from backtest_engine.result import iter_json
    from local.report import render_metrics, render_summary

    code = read_strategy(args.strategy)
    if code is None:
        return EXIT_BAD_INPUT
    if getattr(args, "dataset", None):
        return _run_on_dataset(args, code)
    try:
        params = dict(parse_param(p) for p in args.param)
        custom = args.data is not None
        request = BacktestRequest.model_validate(
            {
                "strategy_code": code,
                "symbol": args.symbol if not custom or args.symbol != request_default("symbol") else "CUSTOM",
                "timeframe": args.timeframe,
                "start_date": args.start,
                "end_date": args.end,
                "initial_capital": args.cash,
                "commission": args.commission,
                "slippage": args.slippage,
                "parameters": params,
                "name": args.name or args.strategy.stem,
            },
            context={"max_bars": args.max_bars, "custom_data": custom},
        )
        bars = None
        if custom:
            bars = read_csv_bars(
                args.data,
                symbol=request.symbol,
                lot_size=args.lot_size,
                periods_per_year=args.periods_per_year,
            )
        elif args.report is not None:  # the report draws the bars: load them here (the engine would anyway)
            bars = load_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "request"
            print(f"error: {where}: {err['msg']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    n = (
        len(bars)
        if bars is not None
        else estimate_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    )
    progress = None
    if not args.no_progress and not args.json and sys.stderr.isatty() and n > 200_000:
        progress = ProgressBar(f"{request.symbol} {request.timeframe}")
    try:
        result = run_backtest(request, bars=bars, progress=progress)
    except StrategyFault as exc:
        where = f" (line {exc.line})" if exc.line else ""
        print(f"strategy failed{where}: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_JOB_FAILED
    except EngineError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        print(f"error{where}: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if progress is not None:
            progress.done()

    if args.report is not None:
        written = write_report(result, bars, args.report)
        if written is None:
            return EXIT_BAD_INPUT
        print(f"report: {written}", file=sys.stderr)
    if args.json:
        for chunk in iter_json(result):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        return 0
    data = result.model_dump(mode="json", exclude={"equity_curve", "trades"})
    names = {str(d["key"]): str(d["name"]) for d in metric_definitions()}
    print(render_summary(data) if not args.full else render_metrics(data, full=True, names=names))
    return 0


def write_report(result: Any, bars: Any, path: Path) -> Path | None:
    """Build the HTML report of `result` on `bars` and write it to `path` (None, said on stderr, if it
    cannot be written)."""
    from backtest_engine.report import build_report

    page = build_report(result, bars)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write the report {path}: {exc.strerror}", file=sys.stderr)
        return None
    return path


def _run_on_dataset(args: argparse.Namespace, code: str) -> int:
    """`--dataset ID --api-url URL`: the backtest runs on the service, on the caller's dataset."""
    from local.datasets_command import run_remote

    if not args.api_url or args.data is not None:
        print("error: --dataset needs --api-url, and replaces --data and --symbol", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        params = dict(parse_param(p) for p in args.param)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    request: dict[str, Any] = {
        "strategy_code": code,
        "dataset_id": args.dataset,
        "initial_capital": args.cash,
        "commission": args.commission,
        "slippage": args.slippage,
        "parameters": params,
        "name": args.name or args.strategy.stem,
    }
    # Only what was given on the command line: the dataset's own timeframe and days apply otherwise.
    for flag, field in (("timeframe", "timeframe"), ("start", "start_date"), ("end", "end_date")):
        value = getattr(args, flag)
        if value != (request_default(field).isoformat() if flag != "timeframe" else request_default(field)):
            request[field] = value
    return run_remote(args, request)
