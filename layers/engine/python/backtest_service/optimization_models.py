"""Request and response bodies of the optimizations API (issue 14); the OpenAPI document is generated from
these. No numpy, no pandas: the optimizations function imports this at cold start."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from backtest_engine.base_model import Model
from backtest_engine.models import MetricValue, ParamValue
from backtest_engine.optimization.models import (
    Condition,
    Constraint,
    OptimizationRequest,
    ParameterRange,
    ParameterValues,
    Validation,
    WindowReport,
)
from backtest_service.api_models import JobError
from backtest_service.jobs import Status


class OptimizationSubmitRequest(OptimizationRequest):
    """The body of `POST /api/backtest/optimizations` and `.../estimate`: the backtest fields (strategy_code,
    symbol, timeframe, dates, capital, costs, name) and the search: `parameters` (each name → {min, max, step},
    {values: [...]}, or a fixed value), `conditions` between parameters, `method` grid or random (`samples`,
    `seed`), `target` and `direction`, `constraints` on metrics, `top_k`, and `validation` (walk_forward or
    holdout).

    Parsing checks the types, the catalog and the search; the limits of the deployment (the code's size:
    413; the bar cap, the dates: 422) are checked right after, with the settings, as for `POST /run`."""

    model_config = ConfigDict(title="OptimizationSubmitRequest")

    @field_validator("strategy_code")
    @classmethod
    def _code_size(cls, v: str) -> str:  # overrides BacktestRequest's: size is a 413, checked later
        return v

    @model_validator(mode="after")
    def _dates_and_size(self, info: ValidationInfo) -> OptimizationSubmitRequest:  # checked with the settings
        return self


class OptimizationSubmitResponse(Model):
    success: Literal[True] = True
    optimization_id: str
    status: Literal[Status.QUEUED] = Status.QUEUED
    status_url: Annotated[str, Field(description="Where to poll it: absolute (also the Location header).")]
    combinations: Annotated[int, Field(description="Combinations the search evaluates.")]
    chunks: Annotated[int, Field(description="Chunks they were cut into (one runner invocation each, about).")]
    chunk_size: Annotated[int, Field(description="Combinations per chunk (the last may hold fewer).")]
    estimated_seconds: Annotated[float, Field(description="Rough wall-clock seconds with free runners.")]


class OptimizationEstimate(Model):
    """`POST /optimizations/estimate`: what the optimization would be (nothing is stored or queued)."""

    success: Literal[True] = True
    combinations: int
    grid_points: Annotated[int, Field(description="Points of the full grid, before the conditions.")]
    chunks: int
    chunk_size: int
    bars: Annotated[int, Field(description="Bars the date range spans.")]
    sweeps: Annotated[int, Field(description="Backtests per combination: the whole range and each fold's in-sample.")]
    style: Literal["vectorized", "event"]
    seconds_per_combination: Annotated[float, Field(description="Estimated single-core seconds of one combination.")]
    estimated_seconds: Annotated[
        float, Field(description="Rough wall-clock seconds from the first chunk's start, with free runners.")
    ]
    lambda_seconds: Annotated[float, Field(description="Rough runner-invocation seconds in all (billed time).")]
    lambda_gb_seconds: Annotated[float, Field(description="lambda_seconds × the runner's memory in GB.")]
    max_concurrency: Annotated[int, Field(description="Chunks that run at once at most (the queue's cap).")]
    note: str = (
        "Estimates assume a simple strategy (measured on an SMA crossover); more work per bar takes longer. "
        "A chunk that runs out of time continues in a new invocation."
    )


class RankedCombination(Model):
    """A combination in the ranking: its parameters and headline metrics (the target's, the constraints'; the
    table has every metric)."""

    rank: int
    index: Annotated[int, Field(description="Position in the search (grid order, or the random draw's).")]
    params: dict[str, ParamValue]
    metrics: dict[str, MetricValue]


class BestCombination(Model):
    """The best combination with every metric (once SUCCEEDED; while RUNNING: the best so far, headline only)."""

    index: int
    params: dict[str, ParamValue]
    metrics: dict[str, MetricValue]


class FailedCombination(Model):
    index: int
    params: dict[str, ParamValue]
    error: JobError | None = None


class OptimizationProgress(Model):
    """How far it is. `combinations_done` counts finished chunks' combinations and running chunks' progress."""

    combinations_done: int
    combinations_total: int
    chunks_done: int
    chunks_total: int
    chunks_running: int = 0
    chunks_dead_lettered: Annotated[int, Field(description="Chunks waiting in the DLQ for ops to replay them.")] = 0
    percent: Annotated[float, Field(ge=0, le=100)]


class OptimizationStatus(Model):
    """One optimization as its owner sees it."""

    success: Literal[True] = True
    optimization_id: str
    status: Status
    name: str | None = None
    symbol: str
    timeframe: str
    start_date: date | None = None
    end_date: date | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    method: Literal["grid", "random"]
    target: str
    direction: Literal["max", "min"]
    top_k: int
    parameters: Annotated[
        dict[str, ParameterRange | ParameterValues | ParamValue], Field(description="The search space as submitted.")
    ]
    conditions: list[Condition] = Field(default_factory=list)
    constraints: list[Constraint] = Field(default_factory=list)
    validation: Validation | None = None
    combinations: int
    chunks: int
    chunk_size: int
    estimated_seconds: float | None = None
    progress: OptimizationProgress
    succeeded: Annotated[int, Field(description="Combinations that ran (so far).")] = 0
    failed: Annotated[int, Field(description="Combinations whose strategy failed (so far); see failed_examples.")] = 0
    feasible: Annotated[int, Field(description="Combinations that met every constraint (so far).")] = 0
    best: Annotated[BestCombination | None, Field(description="The best so far (every metric once SUCCEEDED).")] = None
    top: Annotated[list[RankedCombination], Field(description="The top_k so far, best first.")] = Field(
        default_factory=list
    )
    failed_examples: Annotated[
        list[FailedCombination], Field(description="The first failed combinations (lowest index) and their errors.")
    ] = Field(default_factory=list)
    windows: Annotated[
        list[WindowReport] | None, Field(description="Walk-forward / holdout: in- vs out-of-sample per window.")
    ] = None
    stitched_out_of_sample_metrics: Annotated[
        dict[str, MetricValue] | None, Field(description="The out-of-sample runs chained together.")
    ] = None
    cancel_requested: bool = False
    error: JobError | None = None
    status_url: str | None = None
    table_json_url: Annotated[
        str | None,
        Field(description="Presigned link to every combination's parameters and metrics, JSON (gzip); SUCCEEDED."),
    ] = None
    table_csv_url: Annotated[str | None, Field(description="The same table as CSV (gzip); SUCCEEDED only.")] = None
    table_urls_expire_in: Annotated[int | None, Field(description="Seconds the table links stay valid.")] = None


class OptimizationSummary(Model):
    """One line of the caller's optimization list."""

    optimization_id: str
    status: Status
    name: str | None = None
    symbol: str
    timeframe: str
    start_date: date | None = None
    end_date: date | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    method: Literal["grid", "random"]
    target: str
    direction: Literal["max", "min"]
    combinations: int
    chunks: int
    combinations_done: int
    failed: int
    best: Annotated[BestCombination | None, Field(description="The best so far, headline metrics.")] = None
    error: JobError | None = None
    status_url: str


class OptimizationList(Model):
    success: Literal[True] = True
    optimizations: list[OptimizationSummary]
    next_token: Annotated[str | None, Field(description="Pass as next_token for the next page; absent at the end.")] = (
        None
    )


def ranked(entries: list[dict[str, Any]]) -> list[RankedCombination]:
    return [RankedCombination.model_validate({**e, "rank": i}) for i, e in enumerate(entries, start=1)]
