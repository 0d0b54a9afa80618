"""Request and response bodies of the HTTP API (DESIGN.md "HTTP API"); the OpenAPI document is
generated from these. Field names keep the seed frontend's (`execution_id`, `total_return_percent`,
`trade_summary`, `market_data_stats`, ...). No numpy, no pandas: the API functions import this.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from backtest_engine.models import BacktestRequest, MarketDataStats, MetricValue, TradeSummary
from backtest_service.jobs import Status


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


class SubmitResponse(BaseModel):
    success: Literal[True] = True
    execution_id: str
    status: Literal[Status.QUEUED] = Status.QUEUED
    status_url: Annotated[str, Field(description="Where to poll the job: GET this path.")]


class ErrorDetail(BaseModel):
    type: Annotated[str, Field(description="Stable error code, e.g. ValidationError, StrategyCompileError.")]
    message: Annotated[str, Field(description="What went wrong and what to change.")]
    field: Annotated[str | None, Field(description="The request field at fault, dotted.")] = None
    line: Annotated[int | None, Field(description="Line of the strategy code at fault.")] = None


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: ErrorDetail


class JobError(BaseModel):
    """Why a job FAILED: the strategy's own fault (not retried) or the service's (`InfrastructureError`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    line: int | None = None


class JobStatus(BaseModel):
    """One backtest job as the caller sees it."""

    success: Literal[True] = True
    execution_id: str
    status: Status
    name: str | None = None
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
    error: JobError | None = None
    results_url: Annotated[
        str | None,
        Field(description="Presigned link to the full result JSON (trades, equity curve, logs); SUCCEEDED only."),
    ] = None
    results_url_expires_in: Annotated[int | None, Field(description="Seconds the results_url stays valid.")] = None


class JobSummary(BaseModel):
    """One line of the caller's job list."""

    execution_id: str
    status: Status
    name: str | None = None
    symbol: str
    timeframe: str
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    total_return_percent: float | None = None
    error: JobError | None = None


class JobList(BaseModel):
    success: Literal[True] = True
    executions: list[JobSummary]
    next_token: Annotated[
        str | None, Field(description="Pass as next_token to get the next page; absent on the last page.")
    ] = None


class SymbolInfo(BaseModel):
    symbol: str
    name: str
    asset_class: str
    calendar: str
    session: str
    lot_size: float
    periods_per_year: int


class TimeframeInfo(BaseModel):
    timeframe: str
    minutes: int
    description: str


class DateRangeInfo(BaseModel):
    start: date
    end: date


class SymbolsResponse(BaseModel):
    success: Literal[True] = True
    symbols: list[SymbolInfo]
    timeframes: list[TimeframeInfo]
    date_range: DateRangeInfo
    max_bars: Annotated[int, Field(description="Most bars one request may span.")]


class MetricDefinition(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str
    name: str
    description: str
    formula: str
    unit: str
    higher_is_better: bool | None
    category: str


class MetricDefinitionsResponse(BaseModel):
    success: Literal[True] = True
    metrics: list[MetricDefinition]


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    service: str
    version: str


def error_body(
    type_: str, message: str, *, field: str | None = None, line: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The JSON of every error answer: `{"success": false, "error": {type, message, field?, line?}}`."""
    detail: dict[str, Any] = {"type": type_, "message": message}
    if field is not None:
        detail["field"] = field
    if line is not None:
        detail["line"] = line
    detail.update(extra)
    return {"success": False, "error": detail}
