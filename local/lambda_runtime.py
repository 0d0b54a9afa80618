"""Lambda's Python runtime, locally: a function's handler module loaded as a cold start does, and a pool of
warm "containers" per function.

    pool = FunctionPool(topology.SUBMIT)
    response = pool.invoke(event)      # a LambdaContext with the function's memory and timeout

Each function is a pool: a handler module instance serves one event at a time and a busy pool loads
another instance, as Lambda scales out, so a handler's own module state (its resolver, batch processor,
settings) never serves two invocations at once. The layer's modules (boto3 clients, powertools logger and
metrics) are imported once and shared, as they are not on AWS: `clear_service_caches()` drops what they
cached when the AWS underneath changes.
"""

from __future__ import annotations

import importlib.util
import itertools
import queue
import sys
import threading
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from backtest_service import topology
from backtest_service.topology import FunctionSpec
from local.events import LambdaContext

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
# Stand-in resource names with which any handler module imports (Settings requires them at cold start)
# when nothing real is behind them: the cold-start probe, the OpenAPI tool.
STAND_IN_RESOURCES = {
    "jobs_table": "jobs",
    "idempotency_table": "idempotency",
    "jobs_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    "results_bucket": "results-bucket",
    "datasets_table": "datasets",
    "optimizations_table": "optimizations",
    "optimization_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/optimization-chunks",
}
_module_ids = itertools.count(1)

Handler = Callable[[dict[str, Any], Any], Any]


def handler_path(function: str, functions_dir: Path = FUNCTIONS_DIR) -> Path:
    return functions_dir / function / f"{topology.HANDLER_MODULE}.py"


def load_handler_module(function: str, functions_dir: Path = FUNCTIONS_DIR) -> types.ModuleType:
    """`functions/<function>/handler.py` as a fresh module with a unique name (a cold start)."""
    path = handler_path(function, functions_dir)
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


def entry_point(module: types.ModuleType) -> Handler | None:
    """The function Lambda calls in a handler module (topology.HANDLER_FUNCTION), or None."""
    fn = getattr(module, topology.HANDLER_FUNCTION, None)
    return fn if callable(fn) else None


def context_for(spec: FunctionSpec, region: str) -> LambdaContext:
    """The context Lambda passes an invocation of `spec` (its memory and timeout)."""
    return LambdaContext(
        function_name=f"backtest-{spec.name}",
        memory_limit_in_mb=spec.memory_mb,
        timeout_seconds=spec.timeout_seconds,
        region=region,
    )


class FunctionPool:
    """Warm containers of one function: each module instance handles one event at a time."""

    def __init__(self, spec: FunctionSpec, functions_dir: Path = FUNCTIONS_DIR, *, region: str = "us-east-1") -> None:
        self.spec = spec
        self.functions_dir = functions_dir
        self.region = region
        self._idle: queue.SimpleQueue[types.ModuleType] = queue.SimpleQueue()
        self._loaded: list[str] = []
        self._lock = threading.Lock()
        self.cold_starts = 0

    def warm(self) -> None:
        """Load one container now (a configuration error shows at start, not on the first request)."""
        self._idle.put(self._load())

    def _load(self) -> types.ModuleType:
        with self._lock:
            module = load_handler_module(self.spec.name, self.functions_dir)
            self._loaded.append(module.__name__)
            self.cold_starts += 1
            return module

    def invoke(self, event: Mapping[str, Any]) -> Any:
        try:
            module = self._idle.get_nowait()
        except queue.Empty:
            module = self._load()
        try:
            fn = entry_point(module)
            assert fn is not None  # checked at load
            return fn(dict(event), context_for(self.spec, self.region))
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


def clear_service_caches() -> None:
    """Drop what the shared service modules cached (settings, clients, stores) for another AWS."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("backtest_service") or module is None:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()
    from backtest_service import clients

    clients.reset_clients()


def drop_unpublished_metrics() -> None:
    """Empty the shared powertools `Metrics`: with POWERTOOLS_METRICS_DISABLED it never flushes, so the
    values every invocation adds would pile up for as long as the local stack runs."""
    from backtest_service.observability import metrics

    metrics.clear_metrics()
