"""`backtest datasets ...`: the caller's own market data on a running API (`backtest local`, or a deployed
stack with `--token`), and `backtest run --dataset ID --api-url URL`.

    backtest datasets upload FILE.csv --api-url http://127.0.0.1:8007 [--user alice] [--name N] [--lot-size X]
    backtest datasets list|show ID|delete ID --api-url ...
    backtest run STRATEGY.py --dataset ID --api-url ... [--timeframe 4h --start ... --end ...]

`upload` creates the dataset (POST /api/backtest/datasets), sends the file to the presigned POST it answers
(multipart/form-data, streamed with a progress bar on stderr; a file over the answer's max_bytes is refused
before sending), then waits until the dataset is READY or INVALID and prints it. Exit status: 0 READY,
2 INVALID or refused, 1 when the API cannot be reached or answers an unexpected error.
Only the standard library: no dependency beyond the engine's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local.command_common import EXIT_BAD_INPUT, EXIT_OK, EXIT_UNAVAILABLE
from local.run_command import ProgressBar

DATASETS = "/api/backtest/datasets"
CHUNK = 256 * 1024


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}: {error.get('type', '')}: {error.get('message', body)}")
        self.status = status
        self.body = body


class Api:
    """JSON over HTTP to the service, as one caller (X-Local-User locally, a Bearer token when deployed)."""

    def __init__(self, base_url: str, *, user: str | None = None, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json"}
        if user:
            self.headers["X-Local-User"] = user
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        url = urlsplit(path if path.startswith(("http://", "https://")) else self.base_url + path)  # links: absolute
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        status, payload = _request(method, url, headers, [data] if data else [], len(data or b""))
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode("utf-8", "replace")
        if status >= 400:
            raise ApiError(status, parsed)
        return parsed


def _connection(url: Any, timeout: float = 60.0) -> http.client.HTTPConnection:
    if url.scheme == "https":
        return http.client.HTTPSConnection(url.hostname, url.port, timeout=timeout)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)


def _request(
    method: str, url: Any, headers: dict[str, str], chunks: Any, length: int, progress: ProgressBar | None = None
) -> tuple[int, bytes]:
    connection = _connection(url)
    try:
        target = url.path or "/"
        if url.query:
            target += f"?{url.query}"
        connection.putrequest(method, target)
        for key, value in {**headers, "Content-Length": str(length)}.items():
            connection.putheader(key, value)
        connection.endheaders()
        sent = 0
        for chunk in chunks:
            connection.send(chunk)
            sent += len(chunk)
            if progress is not None:
                progress(sent, length)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def upload_file(created: dict[str, Any], path: Path, *, progress: bool = True) -> tuple[int, bytes]:
    """POST the file to the presigned URL as multipart/form-data: the fields, then the file (streamed)."""
    boundary = f"----backtest{uuid.uuid4().hex}"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in created["upload_fields"].items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        f"Content-Type: {created['content_type']}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size
    bar = ProgressBar(f"upload {path.name}") if progress and sys.stderr.isatty() else None

    def chunks() -> Iterator[bytes]:
        yield head
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                yield block
        yield tail

    try:
        return _request(
            "POST",
            urlsplit(created["upload_url"]),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
            chunks(),
            len(head) + size + len(tail),
            bar,
        )
    finally:
        if bar is not None:
            bar.done()


def wait_for(api: Api, dataset_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        dataset: dict[str, Any] = api.call("GET", f"{DATASETS}/{dataset_id}")
        if dataset["status"] != "PENDING" or time.monotonic() > deadline:
            return dataset
        time.sleep(0.5)


# ---- the commands -----------------------------------------------------------------------------------


def add_connection_arguments(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--api-url", required=required, help="the API, e.g. http://127.0.0.1:8007 (backtest local)")
    p.add_argument("--user", help="the caller on `backtest local` (its X-Local-User header)")
    p.add_argument("--token", default=os.environ.get("BACKTEST_TOKEN"), help="a Cognito ID token (deployed API)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upload", help="create a dataset from a CSV or Parquet file, upload it, wait for READY")
    up.add_argument("file", type=Path)
    up.add_argument("--name", help="a label (default: the file name)")
    up.add_argument("--format", choices=["csv", "parquet"], help="default: from the file's suffix")
    up.add_argument("--lot-size", type=float, default=1.0, help="smallest tradable quantity (default 1)")
    up.add_argument("--calendar", choices=["weekdays", "24/7"], help="default: inferred from weekend bars")
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the validation")
    up.add_argument("--no-progress", action="store_true")
    for name, text in (("list", "the caller's datasets"), ("show", "one dataset"), ("delete", "delete a dataset")):
        q = sub.add_parser(name, help=text)
        if name != "list":
            q.add_argument("dataset_id")
        add_connection_arguments(q)
        q.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    add_connection_arguments(up)
    up.add_argument("--json", action="store_true", help="print the dataset as JSON")


def run(args: argparse.Namespace) -> int:
    api = Api(args.api_url, user=args.user, token=args.token)
    try:
        if args.action == "upload":
            return _upload(api, args)
        if args.action == "list":
            answer = api.call("GET", DATASETS)
            if args.json:
                print(json.dumps(answer, indent=2))
            for d in answer["datasets"]:
                rows, timeframe = d.get("rows") or "", d.get("timeframe") or ""
                print(f"{d['dataset_id']}  {d['status']:<7}  {rows:>9}  {timeframe:<6}  {d['name']}")
            return EXIT_OK
        if args.action == "show":
            print(json.dumps(api.call("GET", f"{DATASETS}/{args.dataset_id}"), indent=2))
            return EXIT_OK
        api.call("DELETE", f"{DATASETS}/{args.dataset_id}")
        print(f"deleted {args.dataset_id}")
        return EXIT_OK
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if 400 <= exc.status < 500 else EXIT_UNAVAILABLE
    except OSError as exc:
        print(f"error: cannot reach {args.api_url}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _upload(api: Api, args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"error: {path} is not a file", file=sys.stderr)
        return EXIT_BAD_INPUT
    fmt = args.format or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    body = {"name": args.name or path.name, "format": fmt, "lot_size": args.lot_size}
    if args.calendar:
        body["calendar"] = args.calendar
    size = path.stat().st_size
    created = api.call("POST", DATASETS, body)
    if size > created["max_bytes"]:
        api.call("DELETE", f"{DATASETS}/{created['dataset_id']}")
        print(f"error: {path} is {size:,} bytes; a dataset may be at most {created['max_bytes']:,}", file=sys.stderr)
        return EXIT_BAD_INPUT
    status, answer = upload_file(created, path, progress=not args.no_progress)
    if status >= 300:
        print(
            f"error: the upload was refused (HTTP {status}): {answer[:500].decode('utf-8', 'replace')}", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    dataset = wait_for(api, created["dataset_id"], args.timeout)
    if args.json:
        print(json.dumps(dataset, indent=2))
    elif dataset["status"] == "READY":
        s = dataset["stats"]
        print(
            f"{dataset['dataset_id']}  READY  {s['rows']:,} bars of {s['timeframe']}, {s['first_time']} .. "
            f"{s['last_time']}, calendar {s['calendar']}, prices {s['price_range']['min']:g} .. "
            f"{s['price_range']['max']:g}"
        )
    else:
        error = dataset.get("error") or {}
        print(f"{dataset['dataset_id']}  {dataset['status']}  {error.get('message', '')}")
    return EXIT_OK if dataset["status"] == "READY" else EXIT_BAD_INPUT


def run_remote(args: argparse.Namespace, request: dict[str, Any]) -> int:
    """`backtest run --dataset ID --api-url URL`: submit over HTTP, wait, print the summary."""
    from local.report import render_summary

    api = Api(args.api_url, user=args.user, token=args.token)
    try:
        submitted = api.call("POST", "/api/backtest/run", request)
        deadline = time.monotonic() + 600
        while True:
            job = api.call("GET", submitted["status_url"])
            if job["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if 400 <= exc.status < 500 else EXIT_UNAVAILABLE
    except OSError as exc:
        print(f"error: cannot reach {args.api_url}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.json:
        print(json.dumps(job, indent=2))
    elif job["status"] == "SUCCEEDED":
        shown = {**request, "symbol": job["symbol"], "timeframe": job["timeframe"]}
        print(render_summary({**job, "request": shown, "style": f"dataset {request['dataset_id']}"}))
    if job["status"] != "SUCCEEDED":
        error = job.get("error") or {}
        print(f"backtest {job['status']}: {error.get('type')}: {error.get('message')}", file=sys.stderr)
        return 3
    return EXIT_OK
