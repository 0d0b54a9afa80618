"""`backtest optimize ... --api-url URL`: the same search, submitted to a deployed API or `backtest local`
instead of run in this process (issue 14), then followed until it ends, with the same ranked table.

    backtest optimize examples/sma_crossover_vectorized.py --param fast=5:50:5 --param slow=20:200:20 \\
        --where "fast<slow" --api-url http://127.0.0.1:8007 [--user alice]
    backtest optimize my_strategy.py ... --api-url https://abc.execute-api.eu-west-1.amazonaws.com/prod \\
        --token "$ID_TOKEN"

`--user` is `backtest local`'s caller (its X-Local-User header); `--token` a Cognito ID token for a deployed
stack (Authorization header; also read from BACKTEST_API_TOKEN). The progress comes from the status answer
(polled every second); at the end the table of every combination is downloaded from its presigned link.
Ctrl-C cancels the optimization (its queued chunks never run) and exits 130. Only the standard library: the
CLI needs no HTTP client package.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from backtest_service.routes import SUBMIT_OPTIMIZATION
from local.command_common import EXIT_BAD_INPUT, EXIT_JOB_FAILED, EXIT_UNAVAILABLE

POLL_SECONDS = 1.0
TOKEN_VARIABLE = "BACKTEST_API_TOKEN"


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status} {error.get('type', '')}: {error.get('message', body)}".strip())
        self.status = status
        self.body = body


class RemoteApi:
    """JSON over HTTP to the backtest API, as one caller."""

    def __init__(self, base_url: str, *, user: str | None = None, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if user:
            self.headers["X-Local-User"] = user
        if token:
            self.headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"

    def call(self, method: str, url: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        """(status, parsed body, headers); `ApiError` for an error answer."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}{url}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, _json(answer.read(), answer.headers), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _json(exc.read(), exc.headers)) from None


def _json(raw: bytes, headers: Any) -> Any:
    if headers.get("Content-Encoding") == "gzip" or raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def download(url: str) -> Any:
    """A presigned link's JSON (no API headers: S3 refuses an Authorization header beside a signature)."""
    with urllib.request.urlopen(url, timeout=120) as answer:
        return _json(answer.read(), answer.headers)


def follow(
    api: RemoteApi,
    status_url: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    poll_seconds: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll `status_url` until the optimization ends; its last answer."""
    while True:
        _, status, _ = api.call("GET", status_url)
        if progress is not None:
            p = status["progress"]
            progress(p["combinations_done"], p["combinations_total"])
        if status["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(status)
        sleep(poll_seconds)


def result_of(status: dict[str, Any], table: dict[str, Any] | None) -> Any:
    """The answer and its table as the in-process search's `OptimizationResult` (what `render` shows)."""
    from backtest_engine.optimization.models import CombinationOutcome, OptimizationResult

    combinations = [CombinationOutcome.model_validate(c) for c in (table or {}).get("combinations", [])]
    by_index = {c.index: c for c in combinations}
    top = [by_index[t["index"]] for t in status["top"] if t["index"] in by_index]
    return OptimizationResult.model_validate(
        {
            "target": status["target"],
            "direction": status["direction"],
            "method": status["method"],
            "total": status["combinations"],
            "succeeded": status["succeeded"],
            "failed": status["failed"],
            "feasible": status["feasible"],
            "best": top[0] if top else None,
            "top": top,
            "windows": status.get("windows"),
            "stitched_out_of_sample_metrics": status.get("stitched_out_of_sample_metrics"),
            "combinations": combinations,
        }
    )


def run_remote(body: dict[str, Any], args: Any, render: Callable[[Any, str], str]) -> int:
    """Submit `body` to `args.api_url`, follow it, print the ranked table (or, with --json, everything)."""
    from local.run_command import ProgressBar

    token = args.token or os.environ.get(TOKEN_VARIABLE)
    api = RemoteApi(args.api_url, user=args.user, token=token)
    body = {k: v for k, v in body.items() if v is not None}
    try:
        _, submitted, _ = api.call(SUBMIT_OPTIMIZATION.method, SUBMIT_OPTIMIZATION.path, body)
    except ApiError as exc:
        problems = (exc.body.get("errors") or []) if isinstance(exc.body, dict) else []
        for problem in problems:
            print(f"error: {problem.get('field') or 'request'}: {problem.get('message')}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if 400 <= exc.status < 500 else EXIT_UNAVAILABLE
    except OSError as exc:
        print(f"error: cannot reach {args.api_url}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(
        f"optimization {submitted['optimization_id']}: {submitted['combinations']} combinations in "
        f"{submitted['chunks']} chunk(s), about {submitted['estimated_seconds']:.0f} s; {submitted['status_url']}",
        file=sys.stderr,
    )
    bar = ProgressBar("optimize (service)") if not args.no_progress and not args.json and sys.stderr.isatty() else None
    try:
        status = follow(api, submitted["status_url"], progress=bar)
    except KeyboardInterrupt:
        if bar is not None:
            bar.done()
        cancel = submitted["status_url"].rstrip("/") + "/cancel"
        try:
            api.call("POST", cancel)
            print(f"cancelled {submitted['optimization_id']}", file=sys.stderr)
        except (ApiError, OSError) as exc:
            print(f"could not cancel {submitted['optimization_id']}: {exc}", file=sys.stderr)
        return 130
    except (ApiError, OSError) as exc:
        print(f"error: while following {submitted['status_url']}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        if bar is not None:
            bar.done()
    if status["status"] != "SUCCEEDED":
        error = status.get("error") or {}
        print(f"optimization {status['status']}: {error.get('type')}: {error.get('message')}", file=sys.stderr)
        return EXIT_JOB_FAILED
    table = download(status["table_json_url"])
    if args.json:
        print(json.dumps({**status, "combinations_table": table["combinations"]}))
    else:
        print(render(result_of(status, table), status["target"]))
    return 0
