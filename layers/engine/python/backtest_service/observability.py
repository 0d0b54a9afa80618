"""Logger, Tracer and Metrics: one instance each per container, shared by every module of a function.

Service name and metrics namespace come from the powertools variables (`POWERTOOLS_SERVICE_NAME`,
`POWERTOOLS_METRICS_NAMESPACE`) and default to topology's. `Tracer()` costs about 0.3 s to create,
so it is created here, once, at import.
"""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from backtest_service import topology

# Read here rather than through Settings: powertools itself reads these variables, and logging must
# work even when the settings are invalid (that is exactly when the cold-start error is logged).
_SERVICE = os.environ.get(topology.Env.POWERTOOLS_SERVICE_NAME) or topology.SERVICE_NAME
_NAMESPACE = os.environ.get(topology.Env.POWERTOOLS_METRICS_NAMESPACE) or topology.METRICS_NAMESPACE

# An invocation that adds no metric (a 4xx, a read) is normal here, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger(service=_SERVICE)
tracer = Tracer(service=_SERVICE)
metrics = Metrics(namespace=_NAMESPACE, service=_SERVICE)

__all__ = ["MetricUnit", "count_failure", "logger", "metrics", "tracer"]


def count_failure(error_type: str) -> None:
    """Emit `JobsFailed` with its own `error_type` dimension (the shared `metrics` has none)."""
    with single_metric(
        name="JobsFailed", unit=MetricUnit.Count, value=1, namespace=_NAMESPACE, default_dimensions={}
    ) as metric:
        metric.add_dimension(name="service", value=_SERVICE)
        metric.add_dimension(name="error_type", value=error_type)
