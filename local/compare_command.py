"""`backtest compare`: several runs' equity curves and headline metrics side by side, in one HTML file.

    backtest compare a.json b.json --out cmp.html                  # stored results (backtest run --json)
    backtest compare ID1 ID2 --api-url http://127.0.0.1:8007 --user alice --out cmp.html

With `--api-url`, each argument is an execution id: its status answer (`GET .../status/{id}`, with the
`X-Local-User` header of `--user` and any `--header`) gives the presigned `results_url`, fetched without
those headers (S3 refuses a presigned request that carries another authorization).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from local.command_common import EXIT_BAD_INPUT

TIMEOUT_SECONDS = 60.0


class FetchError(Exception):
    """A run that could not be read (file or API), said so a person can act on it."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="stored result files (backtest run --json); with --api-url, execution ids")
    p.add_argument("--out", type=Path, default=Path("comparison.html"), help="the HTML file (default comparison.html)")
    p.add_argument("--label", action="append", default=[], help="a label per run, in order (default: its number)")
    p.add_argument("--api-url", help="read the runs from this API (e.g. http://127.0.0.1:8007) by execution id")
    p.add_argument("--user", help="with --api-url: the X-Local-User header (the local server's stand-in for sign-in)")
    p.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="with --api-url: an extra header"
    )


def run(args: argparse.Namespace) -> int:
    from backtest_engine.report import build_comparison

    try:
        headers = _headers(args.user, args.header)
        results = [
            fetch_run(args.api_url, ref, headers) if args.api_url else read_result_file(Path(ref)) for ref in args.runs
        ]
        page = build_comparison(results, labels=args.label or None)
    except (FetchError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"comparison of {len(results)} runs: {args.out}")
    return 0


def read_result_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror}") from None
    return _result_json(raw, str(path))


def fetch_run(api_url: str, execution_id: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """A run's stored result through the API: its status, then its presigned `results_url`."""
    from backtest_service.routes import GET_STATUS

    path = GET_STATUS.path.replace("{execution_id}", urllib.parse.quote(execution_id, safe=""))
    status = orjson.loads(_get(api_url.rstrip("/") + path, headers, what=f"the status of {execution_id}"))
    if status.get("status") != "SUCCEEDED" or not status.get("results_url"):
        raise FetchError(f"run {execution_id} is {status.get('status')}: it has no result to compare")
    raw = _get(str(status["results_url"]), {}, what=f"the result of {execution_id}")
    return _result_json(raw, execution_id)


def _get(url: str, headers: Mapping[str, str], *, what: str) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"{what}: not an http(s) URL: {url}")
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", **headers})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as answer:  # http(s) only: checked above
            body: bytes = answer.read()
            if answer.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise FetchError(f"{what}: HTTP {exc.code} {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FetchError(f"{what}: {getattr(exc, 'reason', exc)}") from None


def _result_json(raw: bytes, name: str) -> dict[str, Any]:
    if raw[:2] == b"\x1f\x8b":  # stored gzip-encoded and saved as it came
        raw = gzip.decompress(raw)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FetchError(f"{name} is not JSON: {exc}") from None
    if not isinstance(data, dict) or "equity_curve" not in data or "performance_metrics" not in data:
        raise FetchError(f"{name} is not a stored backtest result (what `backtest run --json` writes)")
    return data


def _headers(user: str | None, extra: list[str]) -> dict[str, str]:
    headers = {"X-Local-User": user} if user else {}
    for item in extra:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise FetchError(f"--header {item!r}: expected 'NAME: VALUE'")
        headers[name.strip()] = value.strip()
    return headers
