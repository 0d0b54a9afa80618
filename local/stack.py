"""The embedded local stack: the four real handlers on moto, wired the way AWS wires them.

    with LocalStack() as stack:                       # in-process moto (mock_aws): `backtest demo`, tests
        status, headers, body = stack.invoke_api("POST", "/api/backtest/run", {"strategy_code": code})
        stack.drain_queue()                           # the SQS event source mapping, until the queue is idle
        status, headers, job = stack.invoke_api("GET", body["status_url"])

    with LocalStack(server=True) as stack:            # moto server on 127.0.0.1: `backtest local`, e2e
        ...                                           # several threads share its state; presigned links work

What it does on start: fake credentials and region (never real ones), moto, the resources of
`local/aws_resources.py` (same names and settings as the CDK stack: both read `topology`), the functions'
environment variables, then each handler module loaded by file path under a unique module name.

Each function is a pool of "containers": a handler module instance serves one event at a time and a
busy pool loads another instance, as Lambda scales out, so a handler's own module state (its resolver,
batch processor, settings) never serves two invocations at once. The layer's modules (boto3 clients,
powertools logger and metrics) are imported once and shared, as they are not on AWS: local only.

`poll_queue` / `drain_queue` behave like Lambda's SQS event source mapping with
`ReportBatchItemFailures`: receive up to `topology.JOBS_QUEUE.batch_size` messages with the topology
visibility timeout, pass real SQS records (ApproximateReceiveCount included) to run_backtest, delete
the records it did not report as failed. One local shortcut: a failed record's visibility is cut to
`retry_delay_seconds` (default 2 s) instead of waiting out the 30 min timeout; the receive count still
grows by one per delivery and moto moves the message to the DLQ after `maxReceiveCount` receives.

`inject_fault(service, operation)` is a local-only fault-injection hook: calls of that AWS operation by
the functions fail as an unavailable service would, until the `with` block ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import logging
import os
import queue
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backtest_service import topology
from local.events import LambdaContext, api_event, match_route, sqs_event

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from local.aws_resources import ResourceNames

log = logging.getLogger("backtest.local")

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Environment variables that could point boto3 at a real account or endpoint: unset while the stack runs.
_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
_SPECS = {spec.name: spec for spec in topology.FUNCTIONS}
_module_ids = itertools.count(1)
# Powertools' resolvers keep the request being handled in a class attribute (`BaseRouter.current_event`),
# shared by every module instance in this process: two API invocations at once would read each other's
# caller and body. Lambda runs one invocation per process; here API invocations take turns.
_API_INVOCATION = threading.Lock()


# ---- job progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobEvent:
    """A step of a job as the local stack saw it (for the `backtest local` log and the demo)."""

    execution_id: str
    kind: str  # submitted | running | succeeded | failed | retry | skipped | dead_lettered
    attempt: int = 0
    duration_s: float | None = None
    detail: str = ""


JobListener = Callable[[JobEvent], None]


@dataclass
class BatchOutcome:
    """One poll of the event source mapping."""

    received: int = 0
    succeeded: list[str] = field(default_factory=list)  # message ids deleted
    failed: list[str] = field(default_factory=list)  # message ids left on the queue


# ---- functions ------------------------------------------------------------------------------------


def load_handler_module(function: str, functions_dir: Path = FUNCTIONS_DIR) -> types.ModuleType:
    """`functions/<function>/handler.py` as a fresh module with a unique name (a cold start)."""
    path = functions_dir / function / f"{topology.HANDLER_MODULE}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no handler for function {function!r} at {path}")
    name = f"_local_fn_{function}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic and dataclasses resolve names through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    if entry_point(module) is None:
        del sys.modules[name]
        raise ImportError(f"{path} defines no {topology.HANDLER_FUNCTION}(event, context)")
    return module


def entry_point(module: types.ModuleType) -> Callable[[dict[str, Any], Any], Any] | None:
    """The function Lambda calls in a handler module (topology.HANDLER_FUNCTION), or None."""
    fn = getattr(module, topology.HANDLER_FUNCTION, None)
    return fn if callable(fn) else None


class FunctionPool:
    """Warm containers of one function: each module instance handles one event at a time."""

    def __init__(self, function: str, functions_dir: Path = FUNCTIONS_DIR, *, region: str = "us-east-1") -> None:
        self.function = function
        self.functions_dir = functions_dir
        self.region = region
        self.spec = _SPECS[function]
        self._idle: queue.SimpleQueue[types.ModuleType] = queue.SimpleQueue()
        self._loaded: list[str] = []
        self._lock = threading.Lock()
        self.cold_starts = 0

    def warm(self) -> None:
        """Load one container now (a configuration error shows at start, not on the first request)."""
        self._idle.put(self._load())

    def _load(self) -> types.ModuleType:
        with self._lock:
            module = load_handler_module(self.function, self.functions_dir)
            self._loaded.append(module.__name__)
            self.cold_starts += 1
            return module

    def invoke(self, event: Mapping[str, Any]) -> Any:
        try:
            module = self._idle.get_nowait()
        except queue.Empty:
            module = self._load()
        context = LambdaContext(
            function_name=f"backtest-{self.function}",
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_seconds=self.spec.timeout_seconds,
            region=self.region,
        )
        try:
            fn = entry_point(module)
            assert fn is not None  # checked at load
            return fn(dict(event), context)
        finally:
            self._idle.put(module)

    def close(self) -> None:
        with self._lock:
            for name in self._loaded:
                sys.modules.pop(name, None)
            self._loaded.clear()
            while True:
                try:
                    self._idle.get_nowait()
                except queue.Empty:
                    break


def _clear_service_caches() -> None:
    """Drop what the shared service modules cached for another stack (settings, clients, stores)."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("backtest_service") or module is None:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()


# ---- the stack ------------------------------------------------------------------------------------


class LocalStack:
    """The service on moto. `server=False`: moto in this process (`mock_aws`); `server=True`: moto's
    threaded server on 127.0.0.1 with `AWS_ENDPOINT_URL` pointing at it (shared by every thread,
    presigned S3 links fetchable over loopback)."""

    def __init__(
        self,
        *,
        server: bool = False,
        region: str = "us-east-1",
        prefix: str = "backtest",
        moto_port: int = 0,
        retry_delay_seconds: float | None = 2.0,
        visibility_timeout_seconds: int = topology.JOBS_QUEUE.visibility_timeout_seconds,
        batch_size: int = topology.JOBS_QUEUE.batch_size,
        env: Mapping[str, str] | None = None,
        functions_dir: Path = FUNCTIONS_DIR,
        handler_log_level: str = "WARNING",
        listener: JobListener | None = None,
    ) -> None:
        self.server = server
        self.region = region
        self.prefix = prefix
        self.moto_port = moto_port
        self.retry_delay_seconds = retry_delay_seconds
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.batch_size = batch_size
        self.extra_env = dict(env or {})
        self.functions_dir = functions_dir
        self.handler_log_level = handler_log_level
        self.listeners: list[JobListener] = [listener] if listener else []
        self.endpoint_url: str | None = None
        self._resources: ResourceNames | None = None
        self._mock: Any = None
        self._moto_server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._pools: dict[str, FunctionPool] = {}
        self._jobs_queue_arn = ""
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._receive_lock = threading.Lock()
        self._started = False

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self._started:
            return self
        self._set_env({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region})
        self._set_env(dict.fromkeys(_UNSET))
        try:
            self._start_moto()
            self._start_functions()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def _start_moto(self) -> None:
        from backtest_service import clients

        if self.server:
            from moto.server import ThreadedMotoServer

            # Werkzeug logs every request (and moto's tracebacks for unimplemented calls) otherwise.
            logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
            self._moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
            self._moto_server.start()
            host, port = self._moto_server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
            self._set_env({"AWS_ENDPOINT_URL": self.endpoint_url})
            self._reset_moto()  # moto's state outlives a server: start from nothing
        else:
            from moto import mock_aws

            self._mock = mock_aws()
            self._mock.start()
        _clear_service_caches()
        clients.reset_clients()

    def _start_functions(self) -> None:
        from local.aws_resources import create_resources

        self._resources = create_resources(self.region, prefix=self.prefix)
        self._set_env(
            {
                **self._resources.env(),
                # No X-Ray daemon here, and EMF metrics would flood stdout (they are dropped, see below).
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": self.handler_log_level,
                "POWERTOOLS_DEV": "false",
                **self.extra_env,
            }
        )
        _clear_service_caches()
        self._jobs_queue_arn = self.resources.jobs_queue_arn
        for spec in topology.FUNCTIONS:
            pool = FunctionPool(spec.name, self.functions_dir, region=self.region)
            pool.warm()
            self._pools[spec.name] = pool
        # The shared powertools logger read POWERTOOLS_LOG_LEVEL when it was first imported.
        from backtest_service.observability import logger

        logger.setLevel(self.handler_log_level)

    def stop(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._moto_server is not None:
            self._reset_moto()
            self._moto_server.stop()
            self._moto_server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        self._clients.clear()
        try:
            from backtest_service import clients

            _clear_service_caches()
            clients.reset_clients()
            _drop_unpublished_metrics()  # nothing collected here may leak into whatever runs next
        except ImportError:  # pragma: no cover - interpreter shutdown
            pass
        self._started = False

    def _reset_moto(self) -> None:
        """Drop every resource and item of the moto server (its state is global to this process)."""
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=10):
            pass

    def _set_env(self, values: Mapping[str, str | None]) -> None:
        for key, value in values.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    # ---- resources and clients ------------------------------------------------------------------

    @property
    def resources(self) -> ResourceNames:
        if self._resources is None:
            raise RuntimeError("the local stack is not started")
        return self._resources

    def client(self, service: str) -> Any:
        """A boto3 client of the embedded AWS (the stack's region, endpoint and fake credentials)."""
        import boto3

        with self._clients_lock:  # boto3 sessions are not thread-safe, their clients are
            if service not in self._clients:
                session = boto3.session.Session(region_name=self.region)
                self._clients[service] = session.client(service)  # type: ignore[call-overload]
            return self._clients[service]

    @property
    def cold_starts(self) -> dict[str, int]:
        return {name: pool.cold_starts for name, pool in self._pools.items()}

    # ---- invoking functions ---------------------------------------------------------------------

    def invoke(self, function: str, event: Mapping[str, Any]) -> Any:
        """Invoke one function (a folder of functions/) with an event, as Lambda would."""
        if not self._started:
            raise RuntimeError("the local stack is not started")
        try:
            return self._pools[function].invoke(event)
        finally:
            _forget_moto_instances()
            _drop_unpublished_metrics()

    def invoke_api_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The proxy response of the function routed for `event` (a 404/405 answer if none is)."""
        found = match_route(str(event["httpMethod"]), str(event["path"]))
        if found is None:
            return route_not_found(str(event["httpMethod"]), str(event["path"]))
        with _API_INVOCATION:
            response: dict[str, Any] = self.invoke(found[0].function, event)
        if response.get("statusCode") == 202 and found[0].function == "submit":
            with contextlib.suppress(ValueError, TypeError, KeyError):
                self._emit(JobEvent(json.loads(response["body"])["execution_id"], "submitted"))
        return response

    def invoke_api(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        user: str | None = "local-user",
        query: str | Mapping[str, str | list[str]] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """Call the HTTP API through API Gateway proxy events: (status, headers, body parsed from JSON).

        `body`: a str is sent as is, anything else as JSON; `user` is the Cognito `sub` of the caller
        (None: an unauthenticated request). A query string in `path` is split off into the event.
        """
        if "?" in path:
            path, query = path.split("?", 1)
        hdrs = dict(headers or {})
        raw: str | None = body if body is None or isinstance(body, str) else json.dumps(body)
        if raw is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        event = api_event(method, path, query=query, headers=hdrs, body=raw, user=user)
        response = self.invoke_api_event(event)
        out_headers = response_headers(response)
        text = response.get("body") or ""
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return int(response["statusCode"]), out_headers, parsed

    # ---- the SQS event source mapping -----------------------------------------------------------

    def poll_queue(self, *, wait_seconds: int = 0) -> BatchOutcome:
        """One poll of the event source mapping: receive a batch, run it, delete what succeeded."""
        sqs: SQSClient = self.client("sqs")
        queue_url = self.resources.jobs_queue_url
        # One receive at a time: moto's receive is not atomic across threads (two pollers could both
        # take one message); SQS guarantees that, and the runs themselves still overlap.
        with self._receive_lock:
            out = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=self.batch_size,
                VisibilityTimeout=self.visibility_timeout_seconds,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        messages = out.get("Messages", [])
        outcome = BatchOutcome(received=len(messages))
        if not messages:
            return outcome
        ids = {m["MessageId"]: _execution_id(m.get("Body", "")) for m in messages}
        counts = {m["MessageId"]: int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) for m in messages}
        for message_id, execution_id in ids.items():
            if execution_id:
                self._emit(JobEvent(execution_id, "running", attempt=counts[message_id]))
        started = time.perf_counter()
        event = sqs_event(list(messages), queue_arn=self._jobs_queue_arn, region=self.region)  # type: ignore[arg-type]
        try:
            response = self.invoke("run_backtest", event)
            failed_ids = _batch_item_failures(response, set(ids))
        except Exception:
            log.exception("run_backtest raised: the whole batch is retried")
            failed_ids = set(ids)
        elapsed = time.perf_counter() - started

        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        for m in messages:
            if m["MessageId"] in failed_ids and self.retry_delay_seconds is not None:
                with contextlib.suppress(Exception):  # the message may already be gone
                    sqs.change_message_visibility(
                        QueueUrl=queue_url,
                        ReceiptHandle=m["ReceiptHandle"],
                        VisibilityTimeout=max(0, round(self.retry_delay_seconds)),
                    )
        outcome.succeeded = [m["MessageId"] for m in done]
        outcome.failed = [m["MessageId"] for m in messages if m["MessageId"] in failed_ids]
        for message_id, execution_id in ids.items():
            if execution_id:
                self._report_job(execution_id, counts[message_id], message_id in failed_ids, elapsed)
        return outcome

    def drain_queue(self, *, wait_for_retries: bool = False, timeout_seconds: float = 600.0) -> int:
        """Poll until the jobs queue is empty; the number of messages processed.

        With `wait_for_retries`, also wait for failed messages to come back (after the retry delay)
        until every message was either deleted or moved to the DLQ.
        """
        processed = 0
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            outcome = self.poll_queue()
            processed += outcome.received
            if outcome.received:
                continue
            if not wait_for_retries or self.queue_depth()["in_flight"] == 0:
                return processed
            time.sleep(0.2)
        raise TimeoutError(f"the jobs queue did not drain within {timeout_seconds:.0f} s")

    def queue_depth(self) -> dict[str, int]:
        """Visible and in-flight messages of the jobs queue, and messages in the DLQ."""
        sqs = self.client("sqs")

        def count(url: str) -> tuple[int, int]:
            a = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

        visible, in_flight = count(self.resources.jobs_queue_url)
        dlq_visible, dlq_in_flight = count(self.resources.dlq_url)
        return {"visible": visible, "in_flight": in_flight, "dlq": dlq_visible + dlq_in_flight}

    # ---- jobs -----------------------------------------------------------------------------------

    def job(self, execution_id: str) -> dict[str, Any] | None:
        """The job's item in the jobs table (all attributes), None if there is none."""
        from backtest_service.job_store import JobStore

        record = JobStore(self.resources.jobs_table, self.client("dynamodb")).get(execution_id)
        return record.model_dump(mode="json") if record else None

    def _report_job(self, execution_id: str, receive_count: int, failed: bool, elapsed: float) -> None:
        if not self.listeners:
            return
        try:
            job = self.job(execution_id)
        except Exception:  # the log line is not worth failing the poll for
            job = None
        status = (job or {}).get("status")
        error = (job or {}).get("error") or {}
        attempt = int((job or {}).get("attempts") or receive_count)
        what = f"{error.get('type', '')}: {error.get('message', '')}".strip(": ")
        if error.get("line"):
            what += f" (line {error['line']})"
        if failed:
            max_receives = topology.JOBS_QUEUE.max_receive_count
            if status == "FAILED" or receive_count >= max_receives:
                self._emit(JobEvent(execution_id, "dead_lettered", attempt, elapsed, what))
            else:
                self._emit(
                    JobEvent(execution_id, "retry", attempt, elapsed, f"receive {receive_count} of {max_receives}")
                )
        elif status == "SUCCEEDED":
            self._emit(JobEvent(execution_id, "succeeded", attempt, elapsed))
        elif status == "FAILED":
            self._emit(JobEvent(execution_id, "failed", attempt, elapsed, what))
        else:
            self._emit(JobEvent(execution_id, "skipped", attempt, elapsed, f"job is {status}"))

    def _emit(self, event: JobEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("job listener failed")

    # ---- fault injection (local only) -----------------------------------------------------------

    @contextlib.contextmanager
    def inject_fault(
        self, service: str, operation: str, *, code: str = "ServiceUnavailable", status: int = 503
    ) -> Iterator[list[str]]:
        """While the block runs, the functions' `service` client fails every `operation` call.

        A local-only hook on the shared clients of `backtest_service.clients` (botocore's
        `before-call` event): what the runner sees is exactly what an S3/SQS/DynamoDB outage raises, a
        `ClientError`. Yields the list of failed calls (one request id each).
        """
        from botocore.exceptions import ClientError

        from backtest_service import clients

        factory = {"s3": clients.s3, "sqs": clients.sqs, "dynamodb": clients.dynamodb}[service]
        client = factory()
        calls: list[str] = []

        def fail(**_: Any) -> None:
            calls.append(str(uuid.uuid4()))
            error: Any = {
                "Error": {
                    "Code": code,
                    "Message": f"injected local fault: {service}.{operation} is unavailable",
                },
                "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": calls[-1]},
            }
            raise ClientError(error, operation)

        event_name = f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}"
        client.meta.events.register(event_name, fail, unique_id=f"local-fault-{operation}")
        try:
            yield calls
        finally:
            client.meta.events.unregister(event_name, unique_id=f"local-fault-{operation}")


def response_headers(response: Mapping[str, Any]) -> dict[str, str]:
    """A proxy response's headers: `multiValueHeaders` joined, then `headers` (which win)."""
    out: dict[str, str] = {}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        out[str(key)] = ", ".join(str(v) for v in values)
    out.update({str(k): str(v) for k, v in (response.get("headers") or {}).items()})
    return out


def route_not_found(method: str, path: str) -> dict[str, Any]:
    from local.events import allowed_methods

    methods = allowed_methods(path)
    if methods:
        status, kind, message = 405, "MethodNotAllowed", f"{path} answers {', '.join(methods)}, not {method}"
    else:
        status, kind = 404, "RouteNotFound"
        message = f"no route {method} {path}; see /api/backtest/openapi.json"
    headers = {"Content-Type": "application/json"}
    if methods:
        headers["Allow"] = ", ".join([*methods, "OPTIONS"])
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps({"success": False, "error": {"type": kind, "message": message}}),
        "isBase64Encoded": False,
    }


def _forget_moto_instances() -> None:
    """Drop moto's list of every model object it ever created (kept only for its dashboard).

    Moto appends each instance of its models to a class-level list, including the copy of every item a
    DynamoDB query returns: a long-running `backtest local` polled by a frontend would grow by about
    0.5 MB per job list. Moto's state (tables, items, queues, objects) is held elsewhere and kept.
    """
    from moto.core.model_instances import reset_model_data

    reset_model_data()


def _drop_unpublished_metrics() -> None:
    """Empty the shared powertools `Metrics`: with POWERTOOLS_METRICS_DISABLED it never flushes, so
    the values every invocation adds would pile up for as long as the stack runs."""
    from backtest_service.observability import metrics

    metrics.clear_metrics()


def _execution_id(body: str) -> str | None:
    from backtest_service.job_queue import InvalidMessage, decode_message

    try:
        return decode_message(body)
    except InvalidMessage:
        return None


def _batch_item_failures(response: Any, message_ids: set[str]) -> set[str]:
    """The message ids a `ReportBatchItemFailures` response names; a malformed answer fails the batch."""
    if response is None:
        return set()
    if not isinstance(response, Mapping) or not isinstance(response.get("batchItemFailures", []), list):
        log.error("run_backtest returned %r: Lambda treats that as a failure of the whole batch", response)
        return set(message_ids)
    failed: set[str] = set()
    for item in response.get("batchItemFailures", []):
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not ident or ident not in message_ids:
            log.error("batchItemFailures names %r, not a message of the batch: the whole batch is retried", ident)
            return set(message_ids)
        failed.add(ident)
    return failed
