"""Logger, Tracer and Metrics: one instance each per container, shared by every module of a function.

Service name and metrics namespace come from the powertools variables (`POWERTOOLS_SERVICE_NAME`,
`POWERTOOLS_METRICS_NAMESPACE`) and default to topology's.

`tracer` is a `LazyTracer`: creating powertools' `Tracer()` imports the X-Ray SDK and patches libraries
for it, which was most of the API functions' cold start (outside Lambda the SDK even builds a centralized
sampler with two botocore clients, only for powertools to disable tracing there). The handlers' decorators
are applied at import without creating it; the first traced call creates the real `Tracer` when tracing is
on, i.e. in Lambda (`LAMBDA_TASK_ROOT` set, not SAM local or Chalice) unless `POWERTOOLS_TRACE_DISABLED` is
truthy: powertools' own rule. Otherwise the decorated functions run as they are and X-Ray is never
imported (the local stack, the tests). The real tracer patches only botocore, and only once
`botocore.client` is imported (at once when it already is): every AWS call the functions make goes through
it; the other patches (`http.client`, `sqlite3`, ...) only cost import time, and patching botocore would
import it (about 0.1 s) into the symbols function, which never calls AWS.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar, overload

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from backtest_service import topology

# Read here rather than through Settings: powertools itself reads these variables, and logging must
# work even when the settings are invalid (that is exactly when the cold-start error is logged).
_SERVICE = os.environ.get(topology.Env.POWERTOOLS_SERVICE_NAME) or topology.SERVICE_NAME
_NAMESPACE = os.environ.get(topology.Env.POWERTOOLS_METRICS_NAMESPACE) or topology.METRICS_NAMESPACE

# An invocation that adds no metric (a 4xx, a read) is normal here, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

F = TypeVar("F", bound=Callable[..., Any])
# What the real tracer instruments, each once the module named here is imported: boto3 clients
# (DynamoDB, SQS, S3) are botocore's, and X-Ray's botocore patch wraps botocore.client.
TRACED_MODULES = {"botocore": "botocore.client"}
_FALSE = frozenset({"0", "n", "no", "f", "false", "off", ""})


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """powertools' rule (`Tracer._is_tracer_disabled`): on in Lambda, unless POWERTOOLS_TRACE_DISABLED
    is truthy; off in SAM local, Chalice's local mode and anywhere outside Lambda."""
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in _FALSE:
        return False
    return bool(env.get("LAMBDA_TASK_ROOT")) and not env.get("AWS_SAM_LOCAL") and not env.get("AWS_CHALICE_CLI_MODE")


def _patch(tracer: Tracer, module: str, imported: ModuleType) -> None:
    # A post-import hook runs once `imported` has executed but before the import system binds it to its
    # package; X-Ray's botocore patch reads `botocore.client`, so bind it first (to the same module).
    package, _, name = imported.__name__.rpartition(".")
    if package in sys.modules:
        setattr(sys.modules[package], name, imported)
    tracer.patch([module])


class LazyTracer:
    """powertools' `Tracer`, created on the first traced call, and only when `tracing_enabled()`.

    `capture_lambda_handler` and `capture_method` take the same arguments as the Tracer's. Any other
    attribute (`put_annotation`, `provider`, ...) is the real Tracer's and creates it.
    """

    def __init__(self, service: str, patch_modules: Mapping[str, str] = TRACED_MODULES) -> None:
        self._service = service
        self._patch_modules = dict(patch_modules)
        self._tracer: Tracer | None = None
        self._lock = threading.Lock()

    @property
    def created(self) -> bool:
        """Whether the real Tracer (and so the X-Ray SDK) has been loaded."""
        return self._tracer is not None

    def get(self) -> Tracer:
        """The real Tracer (disabled, as powertools decides, when tracing is off)."""
        if self._tracer is None:
            with self._lock:
                if self._tracer is None:
                    self._tracer = self._create()
        return self._tracer

    def _create(self) -> Tracer:
        import wrapt  # the X-Ray SDK's own dependency

        tracer = Tracer(service=self._service, auto_patch=False)
        if not tracer.disabled:
            for module, trigger in self._patch_modules.items():
                # Called at once when `trigger` is already imported, else when it is.
                wrapt.register_post_import_hook(functools.partial(_patch, tracer, module), trigger)
        return tracer

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    @overload
    def capture_lambda_handler(self, lambda_handler: F, **options: Any) -> F: ...
    @overload
    def capture_lambda_handler(self, lambda_handler: None = None, **options: Any) -> Callable[[F], F]: ...
    def capture_lambda_handler(self, lambda_handler: F | None = None, **options: Any) -> Any:
        if lambda_handler is None:
            return functools.partial(self.capture_lambda_handler, **options)
        return self._deferred(lambda_handler, "capture_lambda_handler", options)

    @overload
    def capture_method(self, method: F, **options: Any) -> F: ...
    @overload
    def capture_method(self, method: None = None, **options: Any) -> Callable[[F], F]: ...
    def capture_method(self, method: F | None = None, **options: Any) -> Any:
        if method is None:
            return functools.partial(self.capture_method, **options)
        return self._deferred(method, "capture_method", options)

    def _deferred(self, function: F, decorator: str, options: dict[str, Any]) -> F:
        if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
            # powertools wraps these in their own way; none of ours is one: decorate them now.
            return getattr(self.get(), decorator)(function, **options)
        target: Callable[..., Any] | None = None

        @functools.wraps(function)
        def traced(*args: Any, **kwargs: Any) -> Any:
            nonlocal target
            if target is None:  # first call: the decision (and, in Lambda, the X-Ray import) is made here
                target = getattr(self.get(), decorator)(function, **options) if tracing_enabled() else function
            return target(*args, **kwargs)

        return traced  # type: ignore[return-value]


logger = Logger(service=_SERVICE)
tracer = LazyTracer(service=_SERVICE)
metrics = Metrics(namespace=_NAMESPACE, service=_SERVICE)

__all__ = ["LazyTracer", "MetricUnit", "count_failure", "logger", "metrics", "tracer", "tracing_enabled"]


def count_failure(error_type: str) -> None:
    """Emit `JobsFailed` with its own `error_type` dimension (the shared `metrics` has none)."""
    with single_metric(
        name="JobsFailed", unit=MetricUnit.Count, value=1, namespace=_NAMESPACE, default_dimensions={}
    ) as metric:
        metric.add_dimension(name="service", value=_SERVICE)
        metric.add_dimension(name="error_type", value=error_type)
