"""What the client commands share: where the API is, who calls it, and how answers and errors print.

Where: `--api-url URL` (env BACKTEST_API_URL), or `--stack-name NAME` (the stack's `ApiUrl` output, read
with boto3 CloudFormation like `backtest replay`), else `backtest local`'s http://127.0.0.1:8007.
Who: `--user NAME` (backtest local's X-Local-User), `--token TOKEN` (env BACKTEST_TOKEN: a Cognito ID
token), `--iam` (SigV4 with your AWS credentials), `--username NAME` (sign in to the stack's user pool;
the password from env BACKTEST_PASSWORD or a prompt). With a stack and none of them: IAM when the stack
was deployed with authMode=iam, else BACKTEST_TOKEN.

Exit status: 0 done, 1 the service or the network failed, 2 bad input (the request, the file, a field),
3 the job FAILED or was CANCELLED.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from backtest_client import (
    BacktestClient,
    BacktestServiceError,
    BadRequest,
    CognitoAuth,
    IamAuth,
    LocalUser,
    PayloadTooLarge,
    Unauthorized,
    ValidationFailed,
    models,
)

from local.command_common import EXIT_BAD_INPUT, EXIT_UNAVAILABLE

LOCAL_API_URL = "http://127.0.0.1:8007"


class UsageError(Exception):
    """Bad command-line input (exit 2)."""


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_argument_group("deployment (default: backtest local at " + LOCAL_API_URL + ")")
    target = where.add_mutually_exclusive_group()
    target.add_argument("--api-url", metavar="URL", help="the API root, with its stage (env BACKTEST_API_URL)")
    target.add_argument("--stack-name", metavar="NAME", help="a deployed stack: its ApiUrl output is the API")
    where.add_argument("--region", help="AWS region of the stack (default: your AWS configuration's)")
    where.add_argument("--profile", help="AWS profile for the stack lookup, --iam and --username")
    who = p.add_argument_group("caller")
    auth = who.add_mutually_exclusive_group()
    auth.add_argument("--user", metavar="NAME", help="backtest local: the X-Local-User to call as")
    auth.add_argument("--token", metavar="TOKEN", help="a Cognito ID token (env BACKTEST_TOKEN)")
    auth.add_argument("--iam", action="store_true", help="sign requests with SigV4 (your AWS credentials)")
    auth.add_argument("--username", metavar="NAME", help="sign in to the stack's user pool (USER_PASSWORD_AUTH)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")


def _session(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(profile_name=args.profile, region_name=args.region)


def connect(args: argparse.Namespace) -> BacktestClient:
    """The client the arguments describe."""
    outputs: dict[str, str] = {}
    if args.stack_name:
        from backtest_client.aws import API_URL_OUTPUT, stack_outputs

        outputs = stack_outputs(args.stack_name, session=_session(args), region=args.region)
        if API_URL_OUTPUT not in outputs:
            raise UsageError(f"stack {args.stack_name} has no output {API_URL_OUTPUT}")
        url = outputs[API_URL_OUTPUT]
    else:
        url = args.api_url or os.environ.get("BACKTEST_API_URL") or LOCAL_API_URL
    return BacktestClient(url, auth=_auth(args, outputs, url), timeout=args.timeout)


def _auth(args: argparse.Namespace, outputs: dict[str, str], url: str) -> Any:
    from backtest_client.aws import AUTH_MODE_OUTPUT, USER_POOL_CLIENT_ID_OUTPUT, cognito_sign_in

    if args.user:
        return LocalUser(args.user)
    if args.iam or (not args.token and not args.username and outputs.get(AUTH_MODE_OUTPUT) == "iam"):
        session = _session(args)
        return IamAuth(session, region=args.region or None)
    if args.username:
        client_id = outputs.get(USER_POOL_CLIENT_ID_OUTPUT)
        if not client_id:
            raise UsageError("--username needs --stack-name of a stack with a user pool (its UserPoolClientId output)")
        password = os.environ.get("BACKTEST_PASSWORD") or getpass.getpass(f"password of {args.username}: ")
        return cognito_sign_in(client_id, args.username, password, session=_session(args), region=args.region)
    token = args.token or os.environ.get("BACKTEST_TOKEN")
    return CognitoAuth(token) if token else None


def run_guarded(args: argparse.Namespace, command: Callable[[BacktestClient], int]) -> int:
    """Run `command` with the client; print errors as a person can act on them, with the exit status."""
    try:
        with connect(args) as client:
            return command(client)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValidationFailed as exc:
        print(f"error: the request is invalid ({exc.type}):", file=sys.stderr)
        for problem in exc.errors or [models.FieldError(field=exc.field, message=exc.message)]:
            print(f"  {problem.field or 'request'}: {problem.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (BadRequest, PayloadTooLarge) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Unauthorized as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("  sign in: --token (or env BACKTEST_TOKEN), --username, or --iam for an IAM stack", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except BacktestServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ImportError as exc:  # boto3 for --stack-name, --iam, --username
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


# ---- printing -------------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def describe(job: models.JobStatus, *, full: bool = False, names: dict[str, str] | None = None) -> str:
    """A job as `backtest run` prints a result: what ran, the metrics table, the trades; or why it failed."""
    from local.report import render_metrics

    span = f"{job.start_date or '?'} .. {job.end_date or '?'}"
    stats = job.market_data_stats
    bars = f" ({stats.data_points:,} bars)" if stats else ""
    lines = [f"{job.name or job.execution_id}: {job.symbol} {job.timeframe} {span}{bars}  {job.status}"]
    if job.parameters:
        lines.append("  parameters " + ", ".join(f"{k}={v}" for k, v in job.parameters.items()))
    if job.status in ("QUEUED", "RUNNING"):
        lines.append(f"  {progress_text(job)}")
    if job.error:
        where = f" (line {job.error.line})" if job.error.line else ""
        lines.append(f"  error{where}: {job.error.type}: {job.error.message}")
    if job.performance_metrics:
        lines += [
            "",
            "Performance",
            render_metrics({"performance_metrics": job.performance_metrics}, full=full, names=names),
        ]
    ts = job.trade_summary
    if ts:
        lines += [
            "",
            "Trades",
            f"  total {ts.total_trades}, winning {ts.winning_trades}, losing {ts.losing_trades}, "
            f"long {ts.long_trades}, short {ts.short_trades}, closed by end of data {ts.closed_by_end_of_data}",
            f"  gross profit {fmt(ts.gross_profit)}, gross loss {fmt(ts.gross_loss)}, "
            f"commission {fmt(ts.total_commission)}",
        ]
    lines += ["", f"execution id {job.execution_id}"]
    return "\n".join(lines)


def progress_text(job: models.JobStatus) -> str:
    p = job.progress
    if job.status == "QUEUED" or p is None:
        return job.status
    bars = f", {p.bars_done:,}/{p.bars_total:,} bars" if p.bars_total else ""
    cancelling = ", cancelling" if job.cancel_requested else ""
    return f"{job.status} {p.stage} {p.percent:5.1f}%{bars}{cancelling}"


class ProgressPrinter:
    """`on_progress` for `wait`: one line redrawn in place on a terminal, a line per change otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._width = 0

    def __call__(self, job: models.JobStatus) -> None:
        text = f"{job.execution_id}  {progress_text(job)}"
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = max(self._width, len(text))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
