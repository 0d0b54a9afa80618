"""The local stack: the four real handlers on the embedded AWS, wired the way AWS wires them. The demo,
`backtest local` and the tests (through `local/pytest_plugin.py`) all run on it.

    with LocalStack() as stack:                       # in-process moto (mock_aws): `backtest demo`, tests
        submitted = stack.invoke_api("POST", "/api/backtest/run", {"strategy_code": code})
        stack.drain_queue()                           # the SQS event source mapping, until the queue is idle
        job = stack.invoke_api("GET", submitted.body["status_url"]).body

    with LocalStack(server=True) as stack:            # moto server on 127.0.0.1: `backtest local`, e2e
        ...                                           # several threads share its state; presigned links work

    with LocalStack(aws_endpoint="http://127.0.0.1:4566") as stack:   # moto in another process
        ...                                           # (`backtest local-aws`): it outlives this one

On start: the embedded AWS with fake credentials and region (`local/embedded_aws.py`), the resources of
`topology` (`local/aws_resources.py`), each function's environment (`topology.function_environment`, as
the CDK stack sets it, plus `LOCAL_RUNTIME_ENV`), then a warm container of each function
(`local/lambda_runtime.py`). One process holds every function, so the environment is the union of the
four (the optional settings one function gets and another does not have the same values as the
settings' defaults). The pieces, one job each:

- API Gateway: `invoke_api` / `invoke_api_event` route by `backtest_service.routes` (`local/events.py`
  builds the events; `local/http_server.py` puts a real HTTP server in front);
- the SQS event source mappings, of the jobs queue and of the optimization chunks queue (its maximum
  concurrency played too): `poll_queue` / `drain_queue` (`local/event_source.py`);
- the bucket's S3 event notifications (dataset uploads → validate_dataset): `poll_uploads` /
  `deliver_uploads` (`local/s3_events.py`);
- job progress for the log and the demo: `listeners` (`local/job_events.py`);
- fault injection: `inject_fault` (`local/faults.py`);
- DynamoDB TTL and S3 lifecycle, which moto does not apply: `expiry` (`local/expiry.py`; `backtest local`
  runs it every minute, tests call `expiry.sweep()` with their own clock).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from backtest_service import topology
from backtest_service.jobs import STALE_AFTER_SECONDS
from backtest_service.routes import SUBMIT_BACKTEST, match_route
from backtest_service.topology import FunctionSpec
from local import faults
from local.aws_resources import DEFAULT_PREFIX, ResourceNames
from local.embedded_aws import (
    DEFAULT_REGION,
    EmbeddedAws,
    EnvironmentPatch,
    forget_model_instances,
    wait_for_endpoint,
)
from local.event_source import DEFAULT_RETRY_DELAY_SECONDS, Delivery, EventSourceMapping
from local.events import DEFAULT_USER, ApiResponse, api_event, route_not_found
from local.expiry import Expiry
from local.job_events import JobListener, JobProgress
from local.lambda_runtime import FUNCTIONS_DIR, FunctionPool, clear_service_caches, drop_unpublished_metrics
from local.s3_events import BucketNotifications

# What the local runtime sets for every function on top of its deployed environment: there is no X-Ray
# daemon here, and EMF metrics would flood stdout (with `emit_metrics` they are printed, as in Lambda).
LOCAL_RUNTIME_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}
# Powertools' resolvers keep the request being handled in a class attribute (`BaseRouter.current_event`),
# shared by every module instance in this process: two API invocations at once would read each other's
# caller and body. Lambda runs one invocation per process; here API invocations take turns.
_API_INVOCATION = threading.Lock()
_BODY_METHODS = ("POST", "PUT", "PATCH")


class LocalStack:
    """The service on moto. `server=False`: moto in this process (`mock_aws`); `server=True`: moto's
    threaded server on 127.0.0.1 with `AWS_ENDPOINT_URL` pointing at it (shared by every thread,
    presigned S3 links fetchable over loopback)."""

    def __init__(
        self,
        *,
        server: bool = False,
        region: str = DEFAULT_REGION,
        prefix: str = DEFAULT_PREFIX,
        moto_port: int = 0,
        retry_delay_seconds: float | None = DEFAULT_RETRY_DELAY_SECONDS,
        visibility_timeout_seconds: int = topology.JOBS_QUEUE.visibility_timeout_seconds,
        batch_size: int = topology.JOBS_QUEUE.batch_size,
        chunk_concurrency: int | None = topology.OPTIMIZATION_QUEUE.max_concurrency,
        allowed_origins: Sequence[str] = ("*",),
        env: Mapping[str, str] | None = None,
        functions_dir: Path = FUNCTIONS_DIR,
        handler_log_level: str = "WARNING",
        emit_metrics: bool = False,
        listener: JobListener | None = None,
        aws_endpoint: str | None = None,
        job_ttl_days: int = topology.JOB_TTL_DAYS,
    ) -> None:
        if not 1 <= job_ttl_days <= 3650:
            raise ValueError("job_ttl_days must be 1 to 3650 (the functions' JOB_TTL_DAYS setting)")
        self.aws = EmbeddedAws(server=server, region=region, port=moto_port, endpoint_url=aws_endpoint)
        self.job_ttl_days = job_ttl_days
        self.expiry = Expiry(region)
        self.region = region
        self.prefix = prefix
        self.retry_delay_seconds = retry_delay_seconds
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.batch_size = batch_size
        self.chunk_concurrency = chunk_concurrency
        self.allowed_origins = tuple(allowed_origins)
        self.extra_env = dict(env or {})
        self.functions_dir = functions_dir
        self.handler_log_level = handler_log_level
        self.emit_metrics = emit_metrics
        self.progress = JobProgress(self.job, [listener] if listener else [])
        self._resources: ResourceNames | None = None
        self._env = EnvironmentPatch()
        self._pools: dict[str, FunctionPool] = {}
        self._event_source: EventSourceMapping | None = None
        self._notifications: BucketNotifications | None = None
        self._optimization_source: EventSourceMapping | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._started = False

    @property
    def server(self) -> bool:
        return self.aws.server

    @property
    def endpoint_url(self) -> str | None:
        return self.aws.endpoint_url

    @property
    def listeners(self) -> list[JobListener]:
        return self.progress.listeners

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self._started:
            return self
        try:
            if self.aws.external is not None:
                wait_for_endpoint(self.aws.external)
            self.aws.start(self._env)
            self.expiry = Expiry(self.region, clock=self.expiry.clock)  # clients of this AWS, not a former one
            clear_service_caches()
            self._start_functions()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def _start_functions(self) -> None:
        from local.aws_resources import create_resources

        self._resources = create_resources(
            self.region, prefix=self.prefix, allowed_origins=self.allowed_origins, job_ttl_days=self.job_ttl_days
        )
        environment: dict[str, str] = {}
        for spec in topology.FUNCTIONS:
            environment.update(self.function_environment(spec))
        self._env.set(environment)
        clear_service_caches()
        # The shared powertools logger read POWERTOOLS_LOG_LEVEL when it was first imported (maybe before
        # this stack set it): set it before the cold starts, which log.
        from backtest_service.observability import logger

        logger.setLevel(self.handler_log_level)
        for spec in topology.FUNCTIONS:
            pool = FunctionPool(spec, self.functions_dir, region=self.region)
            pool.warm()
            self._pools[spec.name] = pool
        self._event_source = EventSourceMapping(
            self.client("sqs"),
            queue_url=self.resources.jobs_queue_url,
            queue_arn=self.resources.jobs_queue_arn,
            region=self.region,
            invoke=lambda event: self.invoke(topology.RUN_BACKTEST.name, event),
            batch_size=self.batch_size,
            visibility_timeout_seconds=self.visibility_timeout_seconds,
            retry_delay_seconds=self.retry_delay_seconds,
            on_receive=self.progress.received,
            on_result=self.progress.delivered,
        )
        # Parameter optimizations (issue 14): the chunks' queue, drained into the same function.
        self._optimization_source = EventSourceMapping(
            self.client("sqs"),
            queue_url=self.resources.optimization_queue_url,
            queue_arn=self.resources.optimization_queue_arn,
            region=self.region,
            invoke=lambda event: self.invoke(topology.RUN_BACKTEST.name, event),
            batch_size=topology.OPTIMIZATION_QUEUE.batch_size,
            visibility_timeout_seconds=self.visibility_timeout_seconds,
            retry_delay_seconds=self.retry_delay_seconds,
            max_concurrency=self.chunk_concurrency,
        )
        self._notifications = BucketNotifications(
            self.client("s3"),
            bucket=self.resources.results_bucket,
            region=self.region,
            invoke=self.invoke,
            function_of_arn=self._function_of_arn,
        )

    def _function_of_arn(self, arn: str) -> str | None:
        from local.aws_resources import function_arn

        return next(
            (spec.name for spec in topology.FUNCTIONS if function_arn(spec, self.region, self.prefix) == arn), None
        )

    def function_environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The environment `spec`'s containers get: the deployed one (the same `topology` function the
        CDK stack calls), the local runtime's variables, and this stack's `env` overrides on top."""
        local = dict(LOCAL_RUNTIME_ENV)
        if self.emit_metrics:
            local.pop("POWERTOOLS_METRICS_DISABLED")
        environment = topology.function_environment(
            spec, log_level=self.handler_log_level, **self.resources.resources()
        )
        if self.job_ttl_days != topology.JOB_TTL_DAYS and topology.Env.JOB_TTL_DAYS in environment:
            environment[topology.Env.JOB_TTL_DAYS] = str(self.job_ttl_days)
        return {**environment, **local, **self._short_visibility_env(), **self.extra_env}

    def _short_visibility_env(self) -> dict[str, str]:
        """With a visibility timeout shorter than AWS's (a crash test's few seconds), a killed runner's job
        comes back sooner than the default heartbeat staleness: take it as stale after a quarter of the
        timeout, so the redeliveries that follow (retried every few seconds) find it stale before the last."""
        stale = self.visibility_timeout_seconds / 4
        return {topology.Env.STALE_AFTER_SECONDS: f"{stale:g}"} if stale < STALE_AFTER_SECONDS else {}

    def stop(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._event_source = None
        self._notifications = None
        self._optimization_source = None
        self.aws.stop()
        self._env.restore()
        self._clients.clear()
        try:
            clear_service_caches()
            drop_unpublished_metrics()  # nothing collected here may leak into whatever runs next
        except ImportError:  # pragma: no cover - interpreter shutdown
            pass
        self._started = False

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
            forget_model_instances()
            drop_unpublished_metrics()

    def invoke_api_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The proxy response of the function routed for `event` (API Gateway's 404/405 if none is)."""
        method, path = str(event["httpMethod"]), str(event["path"])
        found = match_route(method, path)
        if found is None:
            return route_not_found(method, path)
        route = found[0]
        with _API_INVOCATION:
            response: dict[str, Any] = self.invoke(route.function.name, event)
        if response.get("statusCode") in (200, 202) and route == SUBMIT_BACKTEST:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                self.progress.submitted(json.loads(response["body"])["execution_id"])
        return response

    def invoke_api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: str | Mapping[str, str | list[str]] | None = None,
        user: str | None = DEFAULT_USER,
        iam_arn: str | None = None,
    ) -> ApiResponse:
        """Call the HTTP API through API Gateway proxy events, as `user` (a Cognito `sub`) or `iam_arn`
        (a SigV4 caller; pass `user=None`); both None: an unauthenticated request.

        `body` is sent as JSON, `raw_body` as it is; a body, POST, PUT and PATCH get `Content-Type:
        application/json` unless `headers` name one. A query string in `path` is split off into the event.
        """
        if "?" in path:
            path, query = path.split("?", 1)
        hdrs = dict(headers or {})
        text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
        if (text is not None or method.upper() in _BODY_METHODS) and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        event = api_event(method, path, query=query, headers=hdrs, body=text, user=user, iam_arn=iam_arn)
        return ApiResponse.from_proxy(self.invoke_api_event(event), event["requestContext"]["requestId"])

    # ---- the SQS event source mapping -----------------------------------------------------------

    @property
    def event_source(self) -> EventSourceMapping:
        """The mapping that drains the jobs queue into run_backtest."""
        if self._event_source is None:
            raise RuntimeError("the local stack is not started")
        return self._event_source

    @property
    def optimization_source(self) -> EventSourceMapping:
        """The mapping that drains the optimization chunks queue into run_backtest (issue 14)."""
        if self._optimization_source is None:
            raise RuntimeError("the local stack is not started")
        return self._optimization_source

    def poll_queue(self, *, wait_seconds: int = 0) -> Delivery | None:
        """One poll: of the jobs queue, then (when it had nothing) of the optimization chunks queue, so a single
        backtest is taken first (None: nothing to receive)."""
        return self.event_source.poll(wait_seconds=wait_seconds) or self.optimization_source.poll()

    def drain_queue(self, *, wait_for_retries: bool = False, timeout_seconds: float = 600.0) -> list[Delivery]:
        """Poll both queues until they are empty (with `wait_for_retries`, until nothing is in flight either:
        see `EventSourceMapping.drain`)."""
        deliveries: list[Delivery] = []
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            delivery = self.poll_queue()
            if delivery is not None:
                deliveries.append(delivery)
                continue
            sources = (self.event_source, self.optimization_source)
            if not wait_for_retries or all(source.in_flight() == 0 for source in sources):
                return deliveries
            time.sleep(0.2)
        raise TimeoutError(f"the queues did not drain within {timeout_seconds:.0f} s")

    # ---- the bucket's S3 event notifications ----------------------------------------------------

    @property
    def notifications(self) -> BucketNotifications:
        """What delivers the bucket's object-created events (dataset uploads) to their function."""
        if self._notifications is None:
            raise RuntimeError("the local stack is not started")
        return self._notifications

    def poll_uploads(self) -> int:
        """One poll of the bucket's notifications; the invocations made."""
        return self.notifications.poll()

    def deliver_uploads(self, *, timeout_seconds: float = 60.0) -> int:
        """Poll until every uploaded object was delivered to its function (validate_dataset)."""
        return self.notifications.drain(timeout_seconds=timeout_seconds)

    def queue_depth(self) -> dict[str, int]:
        """Visible and in-flight messages of the jobs queue, and messages in the DLQ."""
        return self._depth(self.resources.jobs_queue_url, self.resources.dlq_url)

    def chunk_queue_depth(self) -> dict[str, int]:
        """The same of the optimization chunks queue and its DLQ (issue 14)."""
        return self._depth(self.resources.optimization_queue_url, self.resources.optimization_dlq_url)

    def _depth(self, queue_url: str, dlq_url: str) -> dict[str, int]:
        sqs = self.client("sqs")

        def count(url: str) -> tuple[int, int]:
            a = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

        visible, in_flight = count(queue_url)
        dlq_visible, dlq_in_flight = count(dlq_url)
        return {"visible": visible, "in_flight": in_flight, "dlq": dlq_visible + dlq_in_flight}

    # ---- looking inside -------------------------------------------------------------------------

    def job(self, execution_id: str) -> dict[str, Any] | None:
        """The job's item in the jobs table (all attributes), None if there is none."""
        from backtest_service.job_store import JobStore

        record = JobStore(self.resources.jobs_table, self.client("dynamodb")).get(execution_id)
        return record.model_dump(mode="json") if record else None

    def job_items(self) -> list[dict[str, Any]]:
        """Every item of the jobs table, as DynamoDB returns them (a full scan)."""
        paginator = self.client("dynamodb").get_paginator("scan")
        return [item for page in paginator.paginate(TableName=self.resources.jobs_table) for item in page["Items"]]

    def result_keys(self, prefix: str = topology.RESULTS_PREFIX) -> list[str]:
        """The keys of the results bucket under `prefix`."""
        paginator = self.client("s3").get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.resources.results_bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    # ---- fault injection (local only) -----------------------------------------------------------

    # `with stack.inject_fault("s3", "PutObject"):` the functions' S3 client fails that call (local/faults.py).
    inject_fault = staticmethod(faults.inject_fault)
