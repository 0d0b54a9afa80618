"""`backtest optimize STRATEGY.py`: a parameter search in this process, with a progress bar and a ranked table.

    backtest optimize examples/sma_crossover_vectorized.py --symbol BTCUSD --timeframe 1m \\
        --start 2018-01-01 --end 2018-03-10 --param fast=5:50:5 --param slow=20:200:20 --where "fast<slow" \\
        --target sharpe_ratio --constraint "total_trades>=10" [--method random --samples 200 --seed 7] \\
        [--walk-forward 4 | --holdout 0.2] [--top 10] [--json]

``--param NAME=MIN:MAX:STEP`` is a range, ``NAME=A,B,C`` a list of values, ``NAME=V`` a fixed value. The
data and cost flags are `backtest run`'s. With ``--api-url URL [--user NAME | --token TOKEN]`` the search is
submitted to the service (a deployment, or `backtest local`) and followed there (`local.optimize_remote`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backtest_engine.errors import EngineError
from local.command_common import EXIT_BAD_INPUT, read_strategy
from local.run_command import (
    ProgressBar,
    add_request_arguments,
    parse_param,
    request_default,
)

_RULE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
SHOWN = ("total_return_percent", "sharpe_ratio", "max_drawdown_percent", "win_rate", "total_trades", "profit_factor")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("strategy", type=Path, help="Python file defining generate_signals or initialize/on_bar")
    add_request_arguments(p, symbol_note="; with --data, a label")
    cash, commission, slippage = (request_default(f) for f in ("initial_capital", "commission", "slippage"))
    p.add_argument("--cash", type=float, default=cash, help=f"initial capital (default {cash:g})")
    p.add_argument("--commission", type=float, default=commission, help=f"fraction per fill (default {commission:g})")
    p.add_argument(
        "--slippage", type=float, default=slippage, help=f"fraction against the trader (default {slippage:g})"
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="K=SPEC", help="K=MIN:MAX:STEP, K=A,B,C or K=V (repeatable)"
    )
    p.add_argument("--where", action="append", default=[], metavar="RULE", help='between parameters, e.g. "fast<slow"')
    p.add_argument("--target", default="sharpe_ratio", help="metric key to optimize (default sharpe_ratio)")
    p.add_argument("--direction", choices=["max", "min"], help="default: the metric's better direction")
    p.add_argument("--constraint", action="append", default=[], metavar="RULE", help='e.g. "total_trades>=10"')
    p.add_argument("--method", choices=["grid", "random"], default="grid")
    p.add_argument("--samples", type=int, help="random: how many combinations")
    p.add_argument("--seed", type=int, default=0, help="random: the seed (default 0)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--walk-forward", type=int, metavar="N", help="walk-forward validation with N windows")
    group.add_argument("--holdout", type=float, metavar="F", help="holdout validation: the last F of the bars")
    p.add_argument("--oos-fraction", type=float, default=0.25, help="walk-forward: out-of-sample part of a window")
    p.add_argument("--anchored", action="store_true", help="walk-forward: every in-sample part starts at the start")
    p.add_argument("--top", type=int, default=10, help="ranked combinations to show (default 10)")
    p.add_argument("--data", type=Path, help="CSV with time,open,high,low,close,volume instead of synthetic data")
    p.add_argument("--lot-size", type=float, default=1.0, help="lot size of --data (default 1)")
    p.add_argument("--periods-per-year", type=int, help="with --data: 252 or 365 (default: inferred)")
    p.add_argument("--json", action="store_true", help="print the whole result (every combination) as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    remote = p.add_argument_group("on the service (instead of in this process)")
    remote.add_argument(
        "--api-url", metavar="URL", help="submit to this API (a deployment's ApiUrl, or backtest local)"
    )
    remote.add_argument("--user", help="backtest local's caller (its X-Local-User header)")
    remote.add_argument("--token", help="a Cognito ID token for a deployed API (default: $BACKTEST_API_TOKEN)")


def parse_space(text: str) -> tuple[str, Any]:
    """NAME=MIN:MAX:STEP → a range, NAME=A,B,C → values, NAME=V → a fixed value."""
    key, raw = parse_param(text)
    if isinstance(raw, str) and ":" in raw:
        parts = [parse_param(f"x={p}")[1] for p in raw.split(":")]
        if len(parts) not in (2, 3) or not all(isinstance(v, (int, float)) for v in parts):
            raise ValueError(f"--param {text!r}: a range is MIN:MAX or MIN:MAX:STEP of numbers")
        return key, {"min": parts[0], "max": parts[1], "step": parts[2] if len(parts) == 3 else 1}
    if isinstance(raw, str) and "," in raw:
        return key, {"values": [parse_param(f"x={p}")[1] for p in raw.split(",")]}
    return key, raw


def parse_rule(text: str, option: str) -> tuple[str, str, Any]:
    found = _RULE.match(text)
    if not found:
        raise ValueError(f"{option} {text!r}: expected NAME OP VALUE with OP one of < <= > >= == !=")
    left, op, right = found.groups()
    value = parse_param(f"x={right}")[1]
    return left, op, value


def build_request(args: argparse.Namespace, code: str) -> dict[str, Any]:
    custom = args.data is not None
    validation: dict[str, Any] | None = None
    if args.walk_forward is not None:
        validation = {
            "kind": "walk_forward",
            "windows": args.walk_forward,
            "out_of_sample_fraction": args.oos_fraction,
            "anchored": args.anchored,
        }
    elif args.holdout is not None:
        validation = {"kind": "holdout", "out_of_sample_fraction": args.holdout}
    conditions = []
    for rule in args.where:
        left, op, right = parse_rule(rule, "--where")
        conditions.append({"left": left, "op": op, "right": right})
    constraints = []
    for rule in args.constraint:
        metric, op, value = parse_rule(rule, "--constraint")
        if not isinstance(value, (int, float)):
            raise ValueError(f"--constraint {rule!r}: the value must be a number")
        constraints.append({"metric": metric, "op": op, "value": value})
    return {
        "strategy_code": code,
        "symbol": args.symbol if not custom or args.symbol != request_default("symbol") else "CUSTOM",
        "timeframe": args.timeframe,
        "start_date": args.start,
        "end_date": args.end,
        "initial_capital": args.cash,
        "commission": args.commission,
        "slippage": args.slippage,
        "parameters": dict(parse_space(p) for p in args.param),
        "conditions": conditions,
        "method": args.method,
        "samples": args.samples,
        "seed": args.seed,
        "target": args.target,
        "direction": args.direction,
        "constraints": constraints,
        "top_k": max(1, min(args.top, 100)),
        "validation": validation,
        "name": args.strategy.stem,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


def render(result: Any, target: str) -> str:
    columns = [target, *(k for k in SHOWN if k != target)]
    header = ["rank", "params", *columns]
    rows = [
        [str(rank), " ".join(f"{k}={v}" for k, v in o.params.items()), *(_cell(o.metrics.get(c)) for c in columns)]
        for rank, o in enumerate(result.top, start=1)
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"{result.total} combinations: {result.succeeded} succeeded, {result.failed} failed, {result.feasible} met "
        f"the constraints; ranked by {target} ({result.direction})",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows),
    ]
    failed = [o for o in result.combinations if o.status == "failed"][:3]
    for o in failed:
        lines.append(f"failed {o.params}: {o.error.get('type')}: {o.error.get('message')}")
    if result.windows:
        lines.append("")
        lines.append(f"walk-forward ({len(result.windows)} windows): {target} in sample → out of sample")
        for w in result.windows:
            is_v = _cell((w.in_sample_metrics or {}).get(target))
            oos_v = _cell((w.out_of_sample_metrics or {}).get(target))
            lines.append(
                f"  {w.window}: {w.in_sample['start'][:10]}..{w.in_sample['end'][:10]} → "
                f"{w.out_of_sample['start'][:10]}..{w.out_of_sample['end'][:10]}  {w.best_params}  {is_v} → {oos_v}"
            )
        if result.stitched_out_of_sample_metrics:
            s = result.stitched_out_of_sample_metrics
            lines.append(
                f"  stitched out of sample: {target} {_cell(s.get(target))}, total return "
                f"{_cell(s.get('total_return_percent'))}%, max drawdown {_cell(s.get('max_drawdown_percent'))}%"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from backtest_engine.csv_data import read_csv_bars
    from backtest_engine.optimization.models import OptimizationRequest
    from backtest_engine.optimization.search import run_optimization

    code = read_strategy(args.strategy)
    if code is None:
        return EXIT_BAD_INPUT
    try:
        custom = args.data is not None
        request = OptimizationRequest.model_validate(
            build_request(args, code), context={"max_bars": None, "custom_data": custom}
        )
        bars = None
        if custom:
            bars = read_csv_bars(
                args.data, symbol=request.symbol, lot_size=args.lot_size, periods_per_year=args.periods_per_year
            )
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "request"
            print(f"error: {where}: {err['msg']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.api_url:
        if custom:
            print("error: --data is for a search in this process; the service takes catalog symbols", file=sys.stderr)
            return EXIT_BAD_INPUT
        from local.optimize_remote import run_remote

        return run_remote(build_request(args, code), args, render)
    progress = None
    if not args.no_progress and not args.json and sys.stderr.isatty():
        progress = ProgressBar(f"{request.symbol} {request.timeframe} optimize")
    try:
        result = run_optimization(request, bars=bars, progress=progress)
    except EngineError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if progress is not None:
            progress.done()
    if args.json:
        print(json.dumps(result.model_dump(mode="json")))
    else:
        print(render(result, request.target))
    return 0
