"""`backtest local`: the HTTP API on http://127.0.0.1:8007, served by the real handlers, with workers
draining the jobs queue, so a frontend can be pointed at it.

- Every request becomes an API Gateway REST (v1) proxy event (path parameters, query string, headers,
  body, `requestContext` with a request id and stage) for the function its route names, and the
  function's answer is returned as is.
- Identity: API Gateway's Cognito authorizer is played by the `X-Local-User` header: its value is the
  caller's `sub` (`requestContext.authorizer.claims.sub`). Without it, an `Authorization: <JWT>` (or `Bearer <JWT>`)
  header's `sub` claim is used (NOT verified: local only), else the caller is `local-user`; with
  `--require-user` a request with neither header is unauthenticated (401), as behind API Gateway.
- CORS: preflight `OPTIONS` is answered here (API Gateway answers it in the deployed stack);
  `Access-Control-Allow-Origin` is `*` unless `--allow-origin` lists origins (then the request's
  Origin is echoed when listed, as the deployed stack's `allowedOrigins`).
- Workers: `--workers N` threads play Lambda's SQS event source mappings (see `local/stack.py`): each takes a
  job from the jobs queue first, else a chunk of an optimization, and at most N - 1 of them (at least 1) run
  chunks at once, so a big optimization never keeps a single backtest waiting (on AWS: the chunks' event
  source mapping's smaller maximum concurrency).
- The AWS underneath is moto's server on a loopback port: presigned result links work from a browser.
  By default it runs in this process and its state goes with it; with `--aws-endpoint` it is another
  process's (`backtest local-aws`), which keeps jobs and results while this server restarts or crashes.
- Expiry: moto stores DynamoDB TTL and S3 lifecycle settings but never applies them; a sweep every minute
  does (`local/expiry.py`), so a long session holds only `--job-ttl-days` of jobs and results.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from backtest_service import topology
from backtest_service.rest import CORS, IDEMPOTENCY_HEADER
from backtest_service.routes import SWAGGER_UI, allowed_methods
from local.event_source import DEFAULT_RETRY_DELAY_SECONDS
from local.events import DEFAULT_USER, api_event, response_headers
from local.expiry import DEFAULT_INTERVAL_SECONDS
from local.job_events import JobEvent
from local.stack import LocalStack

DEFAULT_PORT = 8007
DEFAULT_WORKERS = 2
LOCAL_USER_HEADER = "X-Local-User"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
IDLE_POLL_SECONDS = 0.1

Printer = Callable[[str], None]


def _stdout(line: str) -> None:
    print(line, flush=True)


def _jwt_sub(authorization: str | None) -> str | None:
    """The `sub` claim of the JWT in an Authorization header, unverified (the local stand-in for the Cognito
    authorizer): the raw token, as API Gateway's Cognito authorizer takes it and the client sends it, or
    ``Bearer <token>``."""
    words = (authorization or "").split()
    if len(words) == 2 and words[0].lower() == "bearer":
        words = words[1:]
    if len(words) != 1:
        return None
    parts = words[0].split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and sub.strip() else None


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "backtest-local"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged by `_respond`, one line each

    # ---- dispatch -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_PATCH(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def do_HEAD(self) -> None:
        self._proxy()

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, ...) gets the route table's JSON 405/404, not http.server's HTML 501.
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    def do_OPTIONS(self) -> None:
        started = time.perf_counter()
        self._discard_body()  # unread, it would be parsed as the next request of the connection
        path = urlsplit(self.path).path
        methods = allowed_methods(path)
        if not methods:
            self._respond(
                404,
                {"Content-Type": "application/json"},
                _error("RouteNotFound", f"no route {path}"),
                started,
            )
            return
        headers = {
            "Access-Control-Allow-Methods": ", ".join([*methods, "OPTIONS"]),
            "Access-Control-Allow-Headers": ", ".join(self.server.app.allow_headers),
            "Access-Control-Max-Age": str(CORS.max_age or 600),
        }
        self._respond(204, headers, b"", started)

    def _discard_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
        elif length > 0:
            self.rfile.read(length)

    # ---- proxying -------------------------------------------------------------------------------

    def _proxy(self) -> None:
        app = self.server.app
        started = time.perf_counter()
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read: the connection cannot carry another request
            self._respond(
                413,
                {"Content-Type": "application/json"},
                _error("PayloadTooLarge", "body over 10 MB"),
                started,
            )
            return
        raw = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        headers.setdefault("X-Forwarded-Proto", "http")  # as API Gateway tells a function the scheme (https there)
        user = self.headers.get(LOCAL_USER_HEADER) or _jwt_sub(self.headers.get("Authorization"))
        if not user and not app.require_user:
            user = DEFAULT_USER
        body: str | None = None
        is_base64 = False
        if raw:
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                body, is_base64 = base64.b64encode(raw).decode(), True
        event = api_event(
            self.command,
            url.path,
            query=url.query or None,
            headers=headers,
            body=body,
            user=user or None,
            source_ip=self.client_address[0],
        )
        event["isBase64Encoded"] = is_base64
        try:
            response = app.stack.invoke_api_event(event)
        except Exception:
            app.log(f"function failed on {self.command} {url.path}:\n{traceback.format_exc()}")
            message = "the function failed; see the `backtest local` log"
            self._respond(502, {"Content-Type": "application/json"}, _error("InternalError", message), started)
            return
        out_headers = response_headers(response)
        text = response.get("body") or ""
        payload = base64.b64decode(text) if response.get("isBase64Encoded") else str(text).encode("utf-8")
        self._respond(int(response.get("statusCode", 200)), out_headers, payload, started, user=user)

    def _respond(
        self, status: int, headers: dict[str, str], body: bytes, started: float, *, user: str | None = None
    ) -> None:
        app = self.server.app
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("access-control-allow-origin")}
        headers.update(app.cors_headers(self.headers.get("Origin")))
        headers["Content-Length"] = str(len(body))
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        ms = (time.perf_counter() - started) * 1000
        if app.log_requests:
            who = f" [{user}]" if user else ""
            app.log(f"{_now()}  {self.command} {self.path} {status} {ms:.0f} ms{who}")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: LocalServer


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"success": False, "error": {"type": kind, "message": message}}).encode()


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


class LocalServer:
    """The API on a real HTTP server plus `workers` threads draining the jobs queue (start/stop or `with`)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        workers: int = DEFAULT_WORKERS,
        require_user: bool = False,
        allow_origins: Sequence[str] = ("*",),
        stack: LocalStack | None = None,
        log: Printer = _stdout,
        log_requests: bool = True,
        expiry_interval_seconds: float | None = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be ≥ 0")
        self.host = host
        self.port = port
        self.workers = workers
        self.require_user = require_user
        self.allow_origins = tuple(o.rstrip("/") for o in allow_origins) or ("*",)
        self.allow_headers = tuple(dict.fromkeys([*CORS.allow_headers, IDEMPOTENCY_HEADER, LOCAL_USER_HEADER]))
        self.stack = stack or LocalStack(server=True)
        self.stack.listeners.append(self._log_job)
        self.log = log
        self.log_requests = log_requests
        # The sweep runs where moto does: here, or in the `backtest local-aws` process of --aws-endpoint.
        self.expiry_interval_seconds = expiry_interval_seconds if self.stack.aws.external is None else None
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._running_jobs = 0
        self._lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalServer:
        if not self.stack.server:
            raise ValueError("backtest local needs the stack in server mode (LocalStack(server=True))")
        self.stack.start()
        try:
            self._httpd = _HTTPServer((self.host, self.port), _Handler)
        except BaseException:
            self.stack.stop()
            raise
        self._httpd.app = self
        self._stopping.clear()
        http_thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), name="backtest-http", daemon=True)
        http_thread.start()
        self._threads = [http_thread]
        for i in range(self.workers):
            worker = threading.Thread(target=self._work, name=f"backtest-worker-{i + 1}", daemon=True)
            worker.start()
            self._threads.append(worker)
        if self.expiry_interval_seconds is not None:
            self.stack.expiry.start(self.expiry_interval_seconds)
        return self

    def stop(self) -> None:
        """Stop taking requests, let the workers finish their current batch, then stop moto."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._running_jobs:
            self.log(f"waiting for {self._running_jobs} running job(s) to finish ...")
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.stack.expiry.stop()
        self.stack.stop()

    def _work(self) -> None:
        # Short polls with a 0.1 s pause when idle rather than SQS long polling: a stop never waits
        # for a poll in progress, and a new job still starts within 0.1 s.
        while not self._stopping.is_set():
            try:
                delivery = self.stack.poll_queue(wait_seconds=0)
                uploads = self.stack.poll_uploads()  # S3's notifications: dataset uploads → validate_dataset
            except Exception as exc:  # moto stopping under us, or a bug: keep the worker alive
                if self._stopping.is_set():
                    return
                self.log(f"{_now()}  worker error: {type(exc).__name__}: {exc}")
                self._stopping.wait(1)
                continue
            if delivery is None and not uploads:
                self._stopping.wait(IDLE_POLL_SECONDS)

    # ---- CORS and logs --------------------------------------------------------------------------

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        if "*" in self.allow_origins:
            return {"Access-Control-Allow-Origin": "*"}
        if origin and origin.rstrip("/") in self.allow_origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {"Vary": "Origin"}

    def _log_job(self, event: JobEvent) -> None:
        with self._lock:
            if event.kind == "running":
                self._running_jobs += 1
            elif event.kind != "submitted":
                self._running_jobs = max(0, self._running_jobs - 1)
        took = f" in {event.duration_s:.2f} s" if event.duration_s is not None else ""
        lines = {
            "submitted": "submitted",
            "running": f"running (receive {event.attempt})",
            "succeeded": f"SUCCEEDED{took} (attempt {event.attempt})",
            "failed": f"FAILED{took}: {event.detail}",
            "retry": f"infrastructure fault{took}; SQS retries it ({event.detail})",
            "dead_lettered": f"FAILED{took} and dead-lettered: {event.detail}",
            "skipped": f"skipped ({event.detail})",
        }
        self.log(f"{_now()}  job {event.execution_id}  {lines.get(event.kind, event.kind)}")

    def banner(self) -> list[str]:
        res = self.stack.resources
        spec = topology.JOBS_QUEUE
        retry = self.stack.retry_delay_seconds
        queue_name = res.jobs_queue_url.rsplit("/", 1)[-1]
        return [
            f"backtest local: {self.url}  (docs {self.url}{SWAGGER_UI.path})",
            f"  workers   {self.workers} draining {queue_name} (batch {self.stack.batch_size}, "
            f"visibility {self.stack.visibility_timeout_seconds} s, failed jobs retried after "
            f"{retry if retry is not None else self.stack.visibility_timeout_seconds} s, "
            f"DLQ after {spec.max_receive_count} receives)",
            f"            and {res.optimization_queue_url.rsplit('/', 1)[-1]} (optimization chunks, at most "
            f"{self.stack.chunk_concurrency or self.workers} at once)",
            f"  identity  header {LOCAL_USER_HEADER}: <user> (default {DEFAULT_USER!r}"
            + (", required" if self.require_user else "")
            + ")",
            f"  CORS      Access-Control-Allow-Origin: {', '.join(self.allow_origins)}",
            f"  AWS       moto at {self.stack.endpoint_url} (results bucket {res.results_bucket}; "
            + (
                "another process's: jobs and results outlive this server)"
                if self.stack.aws.external
                else "in this process: a restart starts empty)"
            ),
            f"  expiry    jobs and results expire {self.stack.job_ttl_days} days after submit "
            + (
                f"(swept every {self.expiry_interval_seconds:g} s)"
                if self.expiry_interval_seconds is not None
                else "(swept by the process that runs moto)"
            ),
            f"  replay    backtest replay --local-endpoint {self.stack.endpoint_url}",
            "Ctrl-C to stop.",
        ]


# ---- the command ----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"threads draining the jobs queue (default {DEFAULT_WORKERS})",
    )
    p.add_argument(
        "--require-user",
        action="store_true",
        help=f"refuse requests without {LOCAL_USER_HEADER} or a Bearer token (401), as API Gateway would",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="CORS origin to allow (repeatable; default: any, '*')",
    )
    p.add_argument("--moto-port", type=int, default=0, help="port of the embedded AWS (default: any free port)")
    p.add_argument(
        "--aws-endpoint",
        metavar="URL",
        help="use the moto server another process runs (`backtest local-aws`, http://127.0.0.1:PORT) instead "
        "of one in this process: jobs and results then outlive a restart or crash of this server",
    )
    p.add_argument(
        "--visibility-timeout",
        type=int,
        default=topology.JOBS_QUEUE.visibility_timeout_seconds,
        metavar="SECONDS",
        help="how long a received job stays invisible to other workers (default the queue's "
        f"{topology.JOBS_QUEUE.visibility_timeout_seconds}): a worker killed mid-job has its job delivered "
        "again after this, as on AWS; shorter than a run, a second worker gets the job while the first "
        "still runs it",
    )
    p.add_argument(
        "--job-ttl-days",
        type=int,
        default=topology.JOB_TTL_DAYS,
        metavar="DAYS",
        help=f"how long jobs and results are kept (default {topology.JOB_TTL_DAYS}, as deployed)",
    )
    p.add_argument(
        "--retry-delay",
        type=int,
        default=DEFAULT_RETRY_DELAY_SECONDS,
        help="seconds before a job that hit an infrastructure fault is delivered again "
        f"(default {DEFAULT_RETRY_DELAY_SECONDS}; AWS waits out the queue's visibility timeout)",
    )
    p.add_argument("--log-level", default="WARNING", help="the functions' own log level (default WARNING)")
    p.add_argument("--quiet", action="store_true", help="do not log each HTTP request")


def chunk_concurrency(workers: int) -> int:
    """Workers that may run optimization chunks at once: all but one (at least one), at most the queue's cap."""
    return max(1, min(topology.OPTIMIZATION_QUEUE.max_concurrency, workers - 1))


def run(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    origins = args.allow_origin or ("*",)
    try:
        stack = LocalStack(
            server=True,
            moto_port=args.moto_port,
            aws_endpoint=args.aws_endpoint,
            visibility_timeout_seconds=args.visibility_timeout,
            job_ttl_days=args.job_ttl_days,
            retry_delay_seconds=args.retry_delay,
            handler_log_level=args.log_level.upper(),
            allowed_origins=origins,  # the results bucket's CORS rule too, as the stack's allowedOrigins
            chunk_concurrency=chunk_concurrency(args.workers),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = LocalServer(
        host=args.host,
        port=args.port,
        workers=args.workers,
        require_user=args.require_user,
        allow_origins=origins,
        stack=stack,
        log_requests=not args.quiet,
    )
    try:
        server.start()
    except TimeoutError as exc:  # --aws-endpoint: nothing answers there
        print(f"error: {exc} (start it with `backtest local-aws`)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    for line in server.banner():
        print(line, flush=True)
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        if done.is_set():  # a second Ctrl-C: do not wait for running jobs
            raise SystemExit(130)
        done.set()

    # Installed explicitly: a shell that started us in the background may have left SIGINT ignored.
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, _stop) for s in signals}
    try:
        while not done.wait(0.5):
            pass
        print("\nstopping ... (Ctrl-C again to stop without waiting for running jobs)", flush=True)
        try:
            server.stop()
        except SystemExit:
            print("stopped without waiting for running jobs.", flush=True)
            return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print("stopped.", flush=True)
    return 0
