"""Request and response bodies of the HTTP API (DESIGN.md "HTTP API"); the OpenAPI document is
generated from these. Field names keep the seed frontend's (`execution_id`, `total_return_percent`,
`trade_summary`, `market_data_stats`, ...). No numpy, no pandas: the API functions import this.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from backtest_engine.base_model import Model
from backtest_engine.models import BacktestRequest, MarketDataStats, MetricValue, ParamValue, TradeSummary
from backtest_service.jobs import Status

# Every `error.type` the API answers or a job records (the engine's `EngineError.code`s and the service's).
ErrorType = Literal[
    "InvalidJSON",
    "ValidationError",
    "UnsupportedContentType",
    "PayloadTooLarge",
    "Unauthorized",
    "NotFound",
    "RouteNotFound",
    "MethodNotAllowed",
    "InvalidNextToken",
    "NotReady",
    "IdempotencyKeyReused",
    "IdempotencyKeyInProgress",
    "QueueUnavailable",
    "ServiceUnavailable",
    "InternalError",
    "InvalidRequest",
    "InvalidMarketData",
    "StrategyCompileError",
    "StrategyError",
    "StrategyTimeout",
    "StrategyMemoryError",
    "StrategyOutputLimit",
    "StrategyPolicyViolation",
    "InvalidSignals",
    "LookAheadError",
    "Cancelled",
    "InfrastructureError",
    "RunnerKilled",
    "SandboxUnavailable",
    "TooManyRequests",
    "Gone",
]


class SubmitRequest(BacktestRequest):
    """The body of `POST /api/backtest/run`: a backtest request.

    Parsing checks types and the catalog (symbol, timeframe, number formats); the two limits that
    depend on the deployment are checked by the submit logic right after, with the settings: the
    size of `strategy_code` (64 KiB: 413) and the number of bars the dates span (`MAX_BARS`: 422),
    together with the order and range of the dates.
    """

    model_config = ConfigDict(title="SubmitRequest")

    @field_validator("strategy_code")
    @classmethod
    def _code_size(cls, v: str) -> str:  # overrides BacktestRequest's: size is a 413, checked later
        return v

    @model_validator(mode="after")
    def _dates_and_size(self, info: ValidationInfo) -> SubmitRequest:  # overrides: checked with settings
        return self


class SubmitResponse(Model):
    success: Literal[True] = True
    execution_id: str
    status: Literal[Status.QUEUED] = Status.QUEUED
    status_url: Annotated[
        str, Field(description="Where to poll the job: an absolute URL (also the answer's Location header).")
    ]


class FieldError(Model):
    field: Annotated[str | None, Field(description="The request field at fault, dotted (parameters.fast).")]
    message: str


class ErrorDetail(Model):
    type: Annotated[ErrorType, Field(description="Stable error code (see ErrorType).")]
    message: Annotated[str, Field(description="What went wrong and what to change.")]
    field: Annotated[str | None, Field(description="The (first) request field at fault, dotted.")] = None
    line: Annotated[int | None, Field(description="Line of the strategy code at fault.")] = None


class ErrorResponse(Model):
    success: Literal[False] = False
    error: ErrorDetail
    errors: Annotated[
        list[FieldError] | None,
        Field(description="A 422's problems, one entry per bad field, for a form to show beside each field."),
    ] = None


class ValidateResponse(Model):
    """`POST /validate`: the request would be accepted by `POST /run` (nothing was stored or queued)."""

    success: Literal[True] = True
    valid: Literal[True] = True
    style: Annotated[Literal["vectorized", "event"], Field(description="The strategy's style.")]
    estimated_bars: Annotated[int, Field(description="Bars the date range spans (the bar cap applies to this).")]
    parameters: Annotated[
        dict[str, ParamValue],
        Field(description="The parameters the strategy will see: its declared defaults, overridden by the request's."),
    ]
    declared_parameters: Annotated[
        dict[str, str],
        Field(description="What the strategy declares (PARAMETERS or params.get defaults): name → type."),
    ]


class JobError(Model):
    """Why a job FAILED: the strategy's own fault (not retried) or the service's (`InfrastructureError`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    line: int | None = None


class Progress(Model):
    """How far a job is: `queued` while it waits; then, while RUNNING, the stage it is in (`data`, `strategy`,
    `metrics`, `storing`) and the bars the strategy has seen. Written by the runner at most every 2 s."""

    stage: Literal["queued", "data", "strategy", "metrics", "storing"]
    percent: Annotated[float, Field(ge=0, le=100)]
    bars_done: int = 0
    bars_total: int = 0
    updated_at: str | None = None


class JobStatus(Model):
    """One backtest job as the caller sees it (a few KB whatever the job's size: the curve and the trades
    are behind `equity_url`, `trades_url` and `results_url`)."""

    success: Literal[True] = True
    execution_id: str
    status: Status
    name: str | None = None
    notes: str | None = None
    symbol: str
    timeframe: str
    start_date: date | None = None
    end_date: date | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: Annotated[int, Field(description="Times a runner started this job (redeliveries count).")] = 0
    performance_metrics: dict[str, MetricValue] | None = None
    trade_summary: TradeSummary | None = None
    market_data_stats: MarketDataStats | None = None
    engine_version: str | None = None
    data_fingerprint: str | None = None
    parameters: Annotated[dict[str, ParamValue], Field(description="The parameters the job was submitted with.")] = (
        Field(default_factory=dict)
    )
    progress: Progress | None = None
    cancel_requested: Annotated[
        bool, Field(description="The owner asked to cancel; the runner stops it within about a second.")
    ] = False
    expired: Annotated[
        bool,
        Field(description="Past expires_at: the stored results are gone or about to be (no result links; 410)."),
    ] = False
    expires_at: Annotated[int | None, Field(description="Epoch seconds when the job and its results expire.")] = None
    error: JobError | None = None
    status_url: Annotated[str | None, Field(description="This answer's own absolute URL.")] = None
    equity_url: Annotated[
        str | None, Field(description="The downsampled equity and drawdown curve (SUCCEEDED only).")
    ] = None
    trades_url: Annotated[str | None, Field(description="The trades, a page at a time (SUCCEEDED only).")] = None
    results_url: Annotated[
        str | None,
        Field(
            description=(
                "Presigned link to the full result JSON (schema: BacktestResultDocument; gzip-encoded); SUCCEEDED only."
            )
        ),
    ] = None
    report_url: Annotated[
        str | None, Field(description="Presigned link to the self-contained HTML report (SUCCEEDED only).")
    ] = None
    results_url_expires_in: Annotated[
        int | None, Field(description="Seconds results_url and report_url stay valid.")
    ] = None


class RunResponse(JobStatus):
    """`POST /run?wait=S` when the job ended within S seconds: the seed API's synchronous answer
    (`success`, `execution_id`, `performance_metrics`, `trade_summary`, `market_data_stats`) and the job.
    `success` is false when the job FAILED or was CANCELLED (`error` says why)."""

    success: bool = True  # type: ignore[assignment]


class UpdateRequest(Model):
    """`PATCH /executions/{id}`: the fields to change; null clears one, an absent one stays."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(max_length=200, description="A label for the run.")] = None
    notes: Annotated[str | None, Field(max_length=4000, description="Free text about the run.")] = None

    @field_validator("name", "notes")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        if v is not None and any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in v):
            raise ValueError("must not contain control characters")
        return v


class EquityResponse(Model):
    """The equity and drawdown curve of a SUCCEEDED job, downsampled to at most `points` points that keep every
    bucket's minimum and maximum (of equity and of drawdown), so the envelope and the maximum drawdown of the
    range are exact."""

    success: Literal[True] = True
    execution_id: str
    points: Annotated[int, Field(description="Points in this answer (≤ the points asked for).")]
    total_points: Annotated[int, Field(description="Bars in the requested range at full resolution.")]
    start: Annotated[str | None, Field(description="Time of the first point (ISO-8601 UTC).")]
    end: Annotated[str | None, Field(description="Time of the last point.")]
    max_drawdown_pct: Annotated[float | None, Field(description="The deepest drawdown in the range (≤ 0).")]
    time: list[str]
    equity: list[float]
    drawdown_pct: list[float]


class Trade(Model):
    entry_time: str
    exit_time: str
    entry_bar: int
    exit_bar: int
    side: Literal["long", "short"]
    size: float
    entry_price: float
    exit_price: float
    pnl: float
    return_pct: float
    commission: float
    exit_reason: Literal["signal", "stop_loss", "take_profit", "end_of_data"]
    bars_held: int


class TradesResponse(Model):
    success: Literal[True] = True
    execution_id: str
    total: Annotated[int, Field(description="Trades of the job.")]
    offset: Annotated[int, Field(description="Index of this page's first trade (trades are in exit order).")]
    trades: list[Trade]
    next_token: Annotated[str | None, Field(description="Pass as next_token for the next page; absent at the end.")] = (
        None
    )


class TradeColumnsDocument(Model):
    """Every trade, as columns of equal length (index i of each column is trade i, in exit order)."""

    entry_time: list[str]
    exit_time: list[str]
    entry_bar: list[int]
    exit_bar: list[int]
    side: list[Literal["long", "short"]]
    size: list[float]
    entry_price: list[float]
    exit_price: list[float]
    pnl: list[float]
    return_pct: list[float]
    commission: list[float]
    exit_reason: list[Literal["signal", "stop_loss", "take_profit", "end_of_data"]]
    bars_held: list[int]


class EquityCurveDocument(Model):
    time: list[str]
    equity: list[float]
    drawdown_pct: list[float]


class BacktestResultDocument(Model):
    """The full result behind `results_url` (gzip-encoded JSON), as `backtest run --json` prints it."""

    request: dict[str, Any]
    style: Literal["vectorized", "event"]
    performance_metrics: dict[str, MetricValue]
    metric_notes: dict[str, str]
    periods_per_year: int
    trade_summary: TradeSummary
    market_data_stats: MarketDataStats
    trades: TradeColumnsDocument
    equity_curve: EquityCurveDocument
    logs: list[str]
    engine_version: str
    data_fingerprint: str
    timings: dict[str, float]


class JobSummary(Model):
    """One line of the caller's job list."""

    execution_id: str
    status: Status
    name: str | None = None
    notes: str | None = None
    symbol: str
    timeframe: str
    start_date: date | None = None
    end_date: date | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    total_return_percent: float | None = None
    performance_metrics: Annotated[
        dict[str, MetricValue] | None, Field(description="The headline metrics (the job has them all).")
    ] = None
    progress: Progress | None = None
    error: JobError | None = None
    status_url: str | None = None


class JobList(Model):
    success: Literal[True] = True
    executions: list[JobSummary]
    next_token: Annotated[
        str | None, Field(description="Pass as next_token to get the next page; absent on the last page.")
    ] = None


class SymbolInfo(Model):
    symbol: str
    name: str
    asset_class: str
    calendar: str
    session: str
    lot_size: float
    periods_per_year: int


class TimeframeInfo(Model):
    timeframe: str
    minutes: int
    description: str


class DateRangeInfo(Model):
    start: date
    end: date


class SymbolsResponse(Model):
    success: Literal[True] = True
    symbols: list[SymbolInfo]
    timeframes: list[TimeframeInfo]
    date_range: DateRangeInfo
    max_bars: Annotated[int, Field(description="Most bars one request may span.")]


class MetricDefinition(Model):
    model_config = ConfigDict(extra="allow")

    key: str
    name: str
    description: str
    formula: str
    unit: str
    higher_is_better: bool | None
    category: str


class MetricDefinitionsResponse(Model):
    success: Literal[True] = True
    metrics: list[MetricDefinition]


class HealthResponse(Model):
    status: Literal["ok"] = "ok"
    service: str
    version: str


def error_body(
    type_: str,
    message: str,
    *,
    field: str | None = None,
    line: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON of every error answer: `{"success": false, "error": {type, message, field?, line?},
    "errors"?: [{field, message}]}` (`errors`: a 422's problems, one per field)."""
    detail: dict[str, Any] = {"type": type_, "message": message}
    if field is not None:
        detail["field"] = field
    if line is not None:
        detail["line"] = line
    detail.update(extra)
    body: dict[str, Any] = {"success": False, "error": detail}
    if errors is not None:
        body["errors"] = errors
    return body
