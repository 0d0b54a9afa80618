"""The seed frontend's flow through the Python client: check the service is up, submit a strategy
generated from a no-code builder's settings, follow it to its end, print the seed's metrics.

    .venv/bin/backtest local &
    .venv/bin/python examples/client/seed_flow.py --user alice
    .venv/bin/python examples/client/seed_flow.py --api-url https://<id>.execute-api.<region>.amazonaws.com/prod \
        --token "$TOKEN"                       # a Cognito ID token (docs/DEPLOY.md §6); or --iam for an IAM stack

(Not in examples/*.py: those are strategies, and the engine's tests run every one of them.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import httpx
from backtest_client import BacktestClient, BacktestServiceError, CognitoAuth, IamAuth, LocalUser, models

# The seed API's headline numbers, as its frontend showed them.
SEED_METRICS = (
    "total_return_percent",
    "sharpe_ratio",
    "max_drawdown_percent",
    "win_rate",
    "total_trades",
    "final_capital",
)


def generate_strategy(indicator: str = "SMA", fast: int = 10, slow: int = 30) -> str:
    """What a no-code builder emits for "go long while the fast average is above the slow one"."""
    return (
        "def generate_signals(data, params):\n"
        f"    fast = talib.{indicator}(data.close.values, timeperiod=params.get('fast', {fast}))\n"
        f"    slow = talib.{indicator}(data.close.values, timeperiod=params.get('slow', {slow}))\n"
        "    return np.where(fast > slow, 1.0, 0.0)\n"
    )


def show_progress(job: models.JobStatus) -> None:
    stage = f" {job.progress.stage} {job.progress.percent:.0f}%" if job.progress and job.status == "RUNNING" else ""
    print(f"  {job.status}{stage}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", default="http://127.0.0.1:8007", help="the API root, with its stage")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--user", default=None, help="backtest local: call as this X-Local-User")
    auth.add_argument("--token", help="a Cognito ID token")
    auth.add_argument("--iam", action="store_true", help="SigV4 with your AWS credentials")
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--timeframe", default="1h")
    args = parser.parse_args(argv)
    caller: httpx.Auth | None = None
    if args.token:
        caller = CognitoAuth(args.token)
    elif args.iam:
        caller = IamAuth()
    elif args.user:
        caller = LocalUser(args.user)

    with BacktestClient(args.api_url, auth=caller) as client:
        try:
            health = client.health()
            print(f"{health.service} {health.version}: {health.status}")
            submitted = client.submit(
                generate_strategy(fast=10, slow=30),
                symbol=args.symbol,
                timeframe=args.timeframe,
                start_date="2024-01-01",
                end_date="2024-06-30",
                initial_capital=10_000,
                name="seed flow",
            )
            print(f"submitted {submitted.execution_id}")
            job = client.wait(submitted.execution_id, timeout=300, on_progress=show_progress)
        except BacktestServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if job.status != "SUCCEEDED":
        print(f"{job.status}: {job.error.type if job.error else ''} {job.error.message if job.error else ''}")
        return 1
    metrics = job.performance_metrics or {}
    for key in SEED_METRICS:
        print(f"  {key:<24} {metrics.get(key)}")
    if job.trade_summary and job.market_data_stats:
        ts, stats = job.trade_summary, job.market_data_stats
        print(f"  trades: {ts.winning_trades} winning, {ts.losing_trades} losing; {stats.data_points} bars")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
