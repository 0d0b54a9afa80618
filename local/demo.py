"""`backtest demo` (`make demo`): one backtest through the whole service on the embedded local stack.

submit (API event → submit function: compile check, job QUEUED, message queued) → the jobs queue →
run_backtest (sandboxed engine, full result to S3, summary to DynamoDB) → status function (job
SUCCEEDED, presigned link) → the full result read from S3 and copied to `build/demo-result.json`, and
its HTML report written to `build/demo-report.html`. Every step runs the real handler on moto, in this
process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backtest_service.routes import SUBMIT_BACKTEST
from local.command_common import EXIT_BAD_INPUT, read_strategy
from local.job_events import JobEvent
from local.lambda_runtime import REPO_ROOT
from local.run_command import add_request_arguments
from local.stack import LocalStack

DEFAULT_STRATEGY = REPO_ROOT / "examples" / "sma_crossover_vectorized.py"
DEFAULT_OUTPUT = REPO_ROOT / "build" / "demo-result.json"
DEFAULT_REPORT = REPO_ROOT / "build" / "demo-report.html"
USER = "demo-user"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", type=Path, default=DEFAULT_STRATEGY, help="strategy file (default: SMA crossover)")
    add_request_arguments(p)
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to copy the full result JSON")
    p.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="where to write the HTML report")


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.steps: list[tuple[str, float]] = []

    def step(self, name: str) -> float:
        now = time.perf_counter()
        took = now - self.last
        self.steps.append((name, took))
        self.last = now
        return took


def run(args: argparse.Namespace) -> int:
    from local.report import render_summary

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    code = read_strategy(args.strategy)
    if code is None:
        return EXIT_BAD_INPUT
    clock = _Clock()
    events: list[JobEvent] = []
    print("Starting the local stack (moto: DynamoDB, SQS + DLQ, S3; the four functions) ...", flush=True)
    with LocalStack(listener=events.append) as stack:
        clock.step("start the local stack")
        request = {
            "strategy_code": code,
            "symbol": args.symbol,
            "timeframe": args.timeframe,
            "start_date": args.start,
            "end_date": args.end,
            "name": f"demo: {args.strategy.stem}",
        }
        submitted = stack.invoke_api(SUBMIT_BACKTEST.method, SUBMIT_BACKTEST.path, request, user=USER)
        clock.step("submit")
        body = submitted.body
        if submitted.status != 202:
            print(f"submit answered {submitted.status}: {json.dumps(body, indent=2)}", file=sys.stderr)
            return 1
        execution_id = body["execution_id"]
        print(f"{SUBMIT_BACKTEST} → {submitted.status} {body['status']}  execution_id {execution_id}", flush=True)

        processed = sum(len(d.message_ids) for d in stack.drain_queue(wait_for_retries=True))
        clock.step("run (queue → run_backtest)")
        print(f"run_backtest processed {processed} message(s) from the jobs queue", flush=True)

        job = _poll(stack, body["status_url"])
        clock.step("status")
        print(f"GET {body['status_url']} → {job['status']} (attempts {job.get('attempts')})", flush=True)
        if job["status"] != "SUCCEEDED":
            print(f"the backtest {job['status']}: {json.dumps(job.get('error'), indent=2)}", file=sys.stderr)
            return 1

        record = stack.job(execution_id) or {}
        bucket, key = stack.resources.results_bucket, str(record.get("result_key"))
        obj = stack.client("s3").get_object(Bucket=bucket, Key=key)
        stored = obj["Body"].read()  # gzip (Content-Encoding: gzip): a browser or requests decompress it
        raw = gzip.decompress(stored)
        result: dict[str, Any] = json.loads(raw)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_bytes(raw)
        clock.step("fetch the full result from S3")
        report_size = write_report(result, args.report)
        clock.step("build the report")

    print()
    print(render_summary(result))
    print()
    print(
        f"Full result ({len(raw) / 1024:.0f} KiB, {len(stored) / 1024:.0f} KiB gzip-compressed in S3: "
        f"{len(result.get('trades', {}).get('pnl', []))} trades, "
        f"{len(result.get('equity_curve', {}).get('time', []))} equity points, "
        f"{len(result.get('logs', []))} log lines)"
    )
    print(f"  in S3:   s3://{bucket}/{key}  (moto, gone when the demo exits)")
    print(f"  copy:    {_relative(args.output)}")
    print(f"  report:  {_relative(args.report)}  ({report_size / 1024:.0f} KiB, one HTML file: open it in a browser)")
    print(f"  status:  results_url is a presigned link, valid {job.get('results_url_expires_in')} s")
    print()
    total = time.perf_counter() - clock.t0
    print("Demo timings: " + ", ".join(f"{name} {took:.2f} s" for name, took in clock.steps) + f"; total {total:.2f} s")
    return 0


def write_report(result: dict[str, Any], path: Path) -> int:
    """The HTML report of the stored `result`, on its bars generated again (the same request gives the same
    bars: checked by the data fingerprint), written to `path`; its size in bytes."""
    from backtest_engine.market_data import load_bars
    from backtest_engine.report import build_report, result_from_json

    full = result_from_json(result)
    req = full.request
    bars = load_bars(req["symbol"], req["timeframe"], req["start_date"], req["end_date"])
    if bars.fingerprint() != full.data_fingerprint:
        raise RuntimeError(f"the demo's bars differ from the job's ({bars.fingerprint()} != {full.data_fingerprint})")
    page = build_report(full, bars).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page)
    return len(page)


def _poll(stack: LocalStack, status_url: str, timeout_seconds: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_seconds
    while True:
        # status_url is absolute (as the API Gateway request had it); the embedded stack is called by path
        answer = stack.invoke_api("GET", urlsplit(status_url).path, user=USER)
        job = answer.body
        if answer.status != 200:
            raise RuntimeError(f"GET {status_url} answered {answer.status}: {job}")
        if job["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return dict(job)
        stack.drain_queue(wait_for_retries=True)
        time.sleep(0.1)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
