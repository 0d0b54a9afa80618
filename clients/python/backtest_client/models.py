# Generated from openapi.json by clients/generate.py (datamodel-code-generator): do not edit.
# After the API changed: python -m tools.openapi --write && python clients/generate.py --write
# mypy: disable-error-code=assignment
# ruff: noqa: E501

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class DateRange(BaseModel):
    start: Annotated[str, Field(title="Start")]
    end: Annotated[str, Field(title="End")]


class ErrorDetail(BaseModel):
    type: Annotated[
        Literal[
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
        ],
        Field(title="Type"),
    ]
    """
    Stable error code (see ErrorType).
    """
    message: Annotated[str, Field(title="Message")]
    """
    What went wrong and what to change.
    """
    field: Annotated[str | None, Field(title="Field")] = None
    """
    The (first) request field at fault, dotted.
    """
    line: Annotated[int | None, Field(title="Line")] = None
    """
    Line of the strategy code at fault.
    """


class FieldError(BaseModel):
    field: Annotated[str | None, Field(title="Field")]
    """
    The request field at fault, dotted (parameters.fast).
    """
    message: Annotated[str, Field(title="Message")]


class JobError(BaseModel):
    """
    Why a job FAILED: the strategy's own fault (not retried) or the service's (`InfrastructureError`).
    """

    model_config = ConfigDict(
        extra="allow",
    )
    type: Annotated[str, Field(title="Type")]
    message: Annotated[str, Field(title="Message")]
    line: Annotated[int | None, Field(title="Line")] = None


class PriceRange(BaseModel):
    min: Annotated[float, Field(title="Min")]
    max: Annotated[float, Field(title="Max")]


class Progress(BaseModel):
    """
    How far a job is: `queued` while it waits; then, while RUNNING, the stage it is in (`data`, `strategy`,
    `metrics`, `storing`) and the bars the strategy has seen. Written by the runner at most every 2 s.
    """

    stage: Annotated[
        Literal["queued", "data", "strategy", "metrics", "storing"],
        Field(title="Stage"),
    ]
    percent: Annotated[float, Field(ge=0.0, le=100.0, title="Percent")]
    bars_done: Annotated[int, Field(title="Bars Done")] = 0
    bars_total: Annotated[int, Field(title="Bars Total")] = 0
    updated_at: Annotated[str | None, Field(title="Updated At")] = None


class Name(RootModel[str]):
    root: Annotated[str, Field(max_length=200, title="Name")]
    """
    A label for the run.
    """


class DatasetId(RootModel[str]):
    root: Annotated[str, Field(pattern="^[A-Za-z0-9_-]{1,128}$", title="Dataset Id")]
    """
    One of your READY datasets (POST /api/backtest/datasets), in place of symbol: its bars are the market data. timeframe, start_date and end_date then default to the dataset's own; given, they pick its days and a coarser timeframe to aggregate to, checked against the dataset.
    """


class SubmitRequest(BaseModel):
    """
    The body of `POST /api/backtest/run`: a backtest request.

    Parsing checks types and the catalog (symbol, timeframe, number formats); the two limits that
    depend on the deployment are checked by the submit logic right after, with the settings: the
    size of `strategy_code` (64 KiB: 413) and the number of bars the dates span (`MAX_BARS`: 422),
    together with the order and range of the dates.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    strategy_code: Annotated[
        str,
        Field(
            examples=[
                'import numpy as np\nimport talib\n\n\ndef generate_signals(data, params):\n    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 10))\n    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 30))\n    return np.where(fast > slow, 1.0, 0.0)\n'
            ],
            title="Strategy Code",
        ),
    ]
    """
    Python source defining generate_signals(data, params), or initialize(ctx) + on_bar(ctx, bar).
    """
    symbol: Annotated[str, Field(title="Symbol")] = "AAPL"
    """
    One of the symbols listed by /market-data/symbols.
    """
    timeframe: Annotated[Literal["1m", "5m", "15m", "1h", "4h", "1d"], Field(title="Timeframe")] = "1h"
    """
    Bar size.
    """
    start_date: Annotated[date, Field(title="Start Date")] = "2024-01-01"
    """
    First day of the backtest (inclusive), YYYY-MM-DD.
    """
    end_date: Annotated[date, Field(title="End Date")] = "2024-12-31"
    """
    Last day of the backtest (inclusive), YYYY-MM-DD.
    """
    initial_capital: Annotated[float, Field(gt=0.0, le=1000000000000.0, title="Initial Capital")] = 10000.0
    """
    Starting cash.
    """
    commission: Annotated[float, Field(ge=0.0, le=0.1, title="Commission")] = 0.001
    """
    Fraction of each fill's notional, e.g. 0.001 = 0.1%.
    """
    slippage: Annotated[float, Field(ge=0.0, le=0.1, title="Slippage")] = 0.0005
    """
    Fraction the fill price moves against the trader.
    """
    parameters: Annotated[
        dict[str, bool | int | float | str] | None,
        Field(examples=[{"fast": 10, "slow": 30}], title="Parameters"),
    ] = None
    """
    Strategy parameters (name → number, string or bool), read as params / ctx.params.
    """
    name: Annotated[Name | None, Field(title="Name")] = None
    """
    A label for the run.
    """
    dataset_id: Annotated[DatasetId | None, Field(title="Dataset Id")] = None
    """
    One of your READY datasets (POST /api/backtest/datasets), in place of symbol: its bars are the market data. timeframe, start_date and end_date then default to the dataset's own; given, they pick its days and a coarser timeframe to aggregate to, checked against the dataset.
    """


class SubmitResponse(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    execution_id: Annotated[str, Field(title="Execution Id")]
    status: Annotated[Literal["QUEUED"], Field(title="Status")] = "QUEUED"
    status_url: Annotated[str, Field(title="Status Url")]
    """
    Where to poll the job: an absolute URL (also the answer's Location header).
    """


class TradeSummary(BaseModel):
    total_trades: Annotated[int, Field(title="Total Trades")]
    winning_trades: Annotated[int, Field(title="Winning Trades")]
    losing_trades: Annotated[int, Field(title="Losing Trades")]
    breakeven_trades: Annotated[int, Field(title="Breakeven Trades")] = 0
    long_trades: Annotated[int, Field(title="Long Trades")] = 0
    short_trades: Annotated[int, Field(title="Short Trades")] = 0
    gross_profit: Annotated[float, Field(title="Gross Profit")] = 0.0
    gross_loss: Annotated[float, Field(title="Gross Loss")] = 0.0
    total_commission: Annotated[float, Field(title="Total Commission")] = 0.0
    closed_by_end_of_data: Annotated[int, Field(title="Closed By End Of Data")] = 0


class ValidateResponse(BaseModel):
    """
    `POST /validate`: the request would be accepted by `POST /run` (nothing was stored or queued).
    """

    success: Annotated[Literal[True], Field(title="Success")] = True
    valid: Annotated[Literal[True], Field(title="Valid")] = True
    style: Annotated[Literal["vectorized", "event"], Field(title="Style")]
    """
    The strategy's style.
    """
    estimated_bars: Annotated[int, Field(title="Estimated Bars")]
    """
    Bars the date range spans (the bar cap applies to this).
    """
    parameters: Annotated[dict[str, bool | int | float | str], Field(title="Parameters")]
    """
    The parameters the strategy will see: its declared defaults, overridden by the request's.
    """
    declared_parameters: Annotated[dict[str, str], Field(title="Declared Parameters")]
    """
    What the strategy declares (PARAMETERS or params.get defaults): name → type.
    """


class JobSummary(BaseModel):
    """
    One line of the caller's job list.
    """

    execution_id: Annotated[str, Field(title="Execution Id")]
    status: Annotated[
        Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
        Field(title="Status"),
    ]
    name: Annotated[str | None, Field(title="Name")] = None
    notes: Annotated[str | None, Field(title="Notes")] = None
    symbol: Annotated[str, Field(title="Symbol")]
    timeframe: Annotated[str, Field(title="Timeframe")]
    start_date: Annotated[date | None, Field(title="Start Date")] = None
    end_date: Annotated[date | None, Field(title="End Date")] = None
    created_at: Annotated[str, Field(title="Created At")]
    started_at: Annotated[str | None, Field(title="Started At")] = None
    finished_at: Annotated[str | None, Field(title="Finished At")] = None
    attempts: Annotated[int, Field(title="Attempts")] = 0
    parameters: Annotated[dict[str, bool | int | float | str] | None, Field(title="Parameters")] = None
    total_return_percent: Annotated[float | None, Field(title="Total Return Percent")] = None
    performance_metrics: Annotated[dict[str, float | int | None] | None, Field(title="Performance Metrics")] = None
    """
    The headline metrics (the job has them all).
    """
    progress: Progress | None = None
    error: JobError | None = None
    status_url: Annotated[str | None, Field(title="Status Url")] = None


class Notes(RootModel[str]):
    root: Annotated[str, Field(max_length=4000, title="Notes")]
    """
    Free text about the run.
    """


class UpdateRequest(BaseModel):
    """
    `PATCH /executions/{id}`: the fields to change; null clears one, an absent one stays.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    name: Annotated[Name | None, Field(title="Name")] = None
    """
    A label for the run.
    """
    notes: Annotated[Notes | None, Field(title="Notes")] = None
    """
    Free text about the run.
    """


class EquityResponse(BaseModel):
    """
    The equity and drawdown curve of a SUCCEEDED job, downsampled to at most `points` points that keep every
    bucket's minimum and maximum (of equity and of drawdown), so the envelope and the maximum drawdown of the
    range are exact.
    """

    success: Annotated[Literal[True], Field(title="Success")] = True
    execution_id: Annotated[str, Field(title="Execution Id")]
    points: Annotated[int, Field(title="Points")]
    """
    Points in this answer (≤ the points asked for).
    """
    total_points: Annotated[int, Field(title="Total Points")]
    """
    Bars in the requested range at full resolution.
    """
    start: Annotated[str | None, Field(title="Start")]
    """
    Time of the first point (ISO-8601 UTC).
    """
    end: Annotated[str | None, Field(title="End")]
    """
    Time of the last point.
    """
    max_drawdown_pct: Annotated[float | None, Field(title="Max Drawdown Pct")]
    """
    The deepest drawdown in the range (≤ 0).
    """
    time: Annotated[list[str], Field(title="Time")]
    equity: Annotated[list[float], Field(title="Equity")]
    drawdown_pct: Annotated[list[float], Field(title="Drawdown Pct")]


class Trade(BaseModel):
    entry_time: Annotated[str, Field(title="Entry Time")]
    exit_time: Annotated[str, Field(title="Exit Time")]
    entry_bar: Annotated[int, Field(title="Entry Bar")]
    exit_bar: Annotated[int, Field(title="Exit Bar")]
    side: Annotated[Literal["long", "short"], Field(title="Side")]
    size: Annotated[float, Field(title="Size")]
    entry_price: Annotated[float, Field(title="Entry Price")]
    exit_price: Annotated[float, Field(title="Exit Price")]
    pnl: Annotated[float, Field(title="Pnl")]
    return_pct: Annotated[float, Field(title="Return Pct")]
    commission: Annotated[float, Field(title="Commission")]
    exit_reason: Annotated[
        Literal["signal", "stop_loss", "take_profit", "end_of_data"],
        Field(title="Exit Reason"),
    ]
    bars_held: Annotated[int, Field(title="Bars Held")]


class TradesResponse(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    execution_id: Annotated[str, Field(title="Execution Id")]
    total: Annotated[int, Field(title="Total")]
    """
    Trades of the job.
    """
    offset: Annotated[int, Field(title="Offset")]
    """
    Index of this page's first trade (trades are in exit order).
    """
    trades: Annotated[list[Trade], Field(title="Trades")]
    next_token: Annotated[str | None, Field(title="Next Token")] = None
    """
    Pass as next_token for the next page; absent at the end.
    """


class DateRangeInfo(BaseModel):
    start: Annotated[date, Field(title="Start")]
    end: Annotated[date, Field(title="End")]


class HealthResponse(BaseModel):
    status: Annotated[Literal["ok"], Field(title="Status")] = "ok"
    service: Annotated[str, Field(title="Service")]
    version: Annotated[str, Field(title="Version")]


class MetricDefinition(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    key: Annotated[str, Field(title="Key")]
    name: Annotated[str, Field(title="Name")]
    description: Annotated[str, Field(title="Description")]
    formula: Annotated[str, Field(title="Formula")]
    unit: Annotated[str, Field(title="Unit")]
    higher_is_better: Annotated[bool | None, Field(title="Higher Is Better")]
    category: Annotated[str, Field(title="Category")]


class MetricDefinitionsResponse(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    metrics: Annotated[list[MetricDefinition], Field(title="Metrics")]


class SymbolInfo(BaseModel):
    symbol: Annotated[str, Field(title="Symbol")]
    name: Annotated[str, Field(title="Name")]
    asset_class: Annotated[str, Field(title="Asset Class")]
    calendar: Annotated[str, Field(title="Calendar")]
    session: Annotated[str, Field(title="Session")]
    lot_size: Annotated[float, Field(title="Lot Size")]
    periods_per_year: Annotated[int, Field(title="Periods Per Year")]


class TimeframeInfo(BaseModel):
    timeframe: Annotated[str, Field(title="Timeframe")]
    minutes: Annotated[int, Field(title="Minutes")]
    description: Annotated[str, Field(title="Description")]


class CreateDatasetRequest(BaseModel):
    """
    The body of `POST /api/backtest/datasets`.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    name: Annotated[str, Field(max_length=200, min_length=1, title="Name")]
    """
    A label for the dataset.
    """
    format: Annotated[Literal["csv", "parquet"], Field(title="Format")] = "csv"
    """
    What the upload will be: csv or parquet.
    """
    lot_size: Annotated[float, Field(gt=0.0, le=1000000000.0, title="Lot Size")] = 1.0
    """
    Smallest tradable quantity (1: whole units; 0.001 for crypto).
    """
    calendar: Annotated[Literal["weekdays", "24/7"] | None, Field(title="Calendar")] = None
    """
    weekdays (252 periods a year) or 24/7 (365); omitted: inferred from weekend bars.
    """


class CreateDatasetResponse(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    dataset_id: Annotated[str, Field(title="Dataset Id")]
    status: Annotated[Literal["PENDING"], Field(title="Status")] = "PENDING"
    upload_url: Annotated[str, Field(title="Upload Url")]
    """
    POST the file here as multipart/form-data (presigned S3 POST).
    """
    upload_fields: Annotated[dict[str, str], Field(title="Upload Fields")]
    """
    Form fields to send with the file, before it and unchanged.
    """
    upload_method: Annotated[Literal["POST"], Field(title="Upload Method")] = "POST"
    content_type: Annotated[str, Field(title="Content Type")]
    """
    The Content-Type the upload must declare (a form field).
    """
    expires_in: Annotated[int, Field(title="Expires In")]
    """
    Seconds the upload_url and fields stay valid.
    """
    max_bytes: Annotated[int, Field(title="Max Bytes")]
    """
    Largest upload S3 accepts (the policy's content-length-range).
    """
    dataset_url: Annotated[str, Field(title="Dataset Url")]
    """
    Where to poll the dataset: GET this path.
    """


class DatasetError(BaseModel):
    """
    Why a dataset is INVALID: the problem, with the file's line (CSV) and column in the message.
    """

    model_config = ConfigDict(
        extra="allow",
    )
    type: Annotated[str, Field(title="Type")]
    message: Annotated[str, Field(title="Message")]
    line: Annotated[int | None, Field(title="Line")] = None


class DatasetStats(BaseModel):
    """
    What the validation found in a READY dataset.
    """

    rows: Annotated[int, Field(title="Rows")]
    first_time: Annotated[str, Field(title="First Time")]
    last_time: Annotated[str, Field(title="Last Time")]
    timeframe: Annotated[str, Field(title="Timeframe")]
    """
    Inferred bar size (1m ... 1d), or custom when irregular.
    """
    calendar: Annotated[Literal["weekdays", "24/7"], Field(title="Calendar")]
    periods_per_year: Annotated[int, Field(title="Periods Per Year")]
    price_range: Annotated[dict[str, float], Field(title="Price Range")]
    fingerprint: Annotated[str, Field(title="Fingerprint")]
    """
    Content hash of the bars (the result's data_fingerprint).
    """
    bytes: Annotated[int, Field(title="Bytes")]
    """
    Size of the upload.
    """


class DatasetSummary(BaseModel):
    dataset_id: Annotated[str, Field(title="Dataset Id")]
    name: Annotated[str, Field(title="Name")]
    format: Annotated[Literal["csv", "parquet"], Field(title="Format")]
    status: Annotated[Literal["PENDING", "READY", "INVALID"], Field(title="DatasetStatus")]
    created_at: Annotated[str, Field(title="Created At")]
    rows: Annotated[int | None, Field(title="Rows")] = None
    timeframe: Annotated[str | None, Field(title="Timeframe")] = None
    error: DatasetError | None = None


class DatasetView(BaseModel):
    """
    One dataset as its owner sees it.
    """

    success: Annotated[Literal[True], Field(title="Success")] = True
    dataset_id: Annotated[str, Field(title="Dataset Id")]
    name: Annotated[str, Field(title="Name")]
    format: Annotated[Literal["csv", "parquet"], Field(title="Format")]
    status: Annotated[Literal["PENDING", "READY", "INVALID"], Field(title="DatasetStatus")]
    lot_size: Annotated[float, Field(title="Lot Size")]
    calendar: Annotated[Literal["weekdays", "24/7"] | None, Field(title="Calendar")] = None
    created_at: Annotated[str, Field(title="Created At")]
    validated_at: Annotated[str | None, Field(title="Validated At")] = None
    expires_at: Annotated[str, Field(title="Expires At")]
    """
    When the dataset and its data are deleted (UTC).
    """
    stats: DatasetStats | None = None
    error: DatasetError | None = None


class DeletedDataset(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    dataset_id: Annotated[str, Field(title="Dataset Id")]
    deleted: Annotated[Literal[True], Field(title="Deleted")] = True


class BestCombination(BaseModel):
    """
    The best combination with every metric (once SUCCEEDED; while RUNNING: the best so far, headline only).
    """

    index: Annotated[int, Field(title="Index")]
    params: Annotated[dict[str, bool | int | float | str], Field(title="Params")]
    metrics: Annotated[dict[str, float | int | None], Field(title="Metrics")]


class Condition(BaseModel):
    """
    A rule between parameters (or a parameter and a number) that a combination must satisfy to be
    tried at all, e.g. ``fast < slow``.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    left: Annotated[str, Field(title="Left")]
    """
    A parameter name.
    """
    op: Annotated[Literal["<", "<=", ">", ">=", "==", "!="], Field(title="Op")]
    right: Annotated[str | int | float, Field(title="Right")]
    """
    A parameter name or a number.
    """


class Constraint(BaseModel):
    """
    A rule on a combination's metrics it must meet to be ranked, e.g. ``total_trades >= 10``. A metric
    that is null (undefined for that run) fails every constraint on it.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    metric: Annotated[str, Field(title="Metric")]
    """
    A metric key (see /performance-metrics/definitions).
    """
    op: Annotated[Literal["<", "<=", ">", ">=", "==", "!="], Field(title="Op")]
    value: Annotated[float, Field(title="Value")]


class FailedCombination(BaseModel):
    index: Annotated[int, Field(title="Index")]
    params: Annotated[dict[str, bool | int | float | str], Field(title="Params")]
    error: JobError | None = None


class OptimizationEstimate(BaseModel):
    """
    `POST /optimizations/estimate`: what the optimization would be (nothing is stored or queued).
    """

    success: Annotated[Literal[True], Field(title="Success")] = True
    combinations: Annotated[int, Field(title="Combinations")]
    grid_points: Annotated[int, Field(title="Grid Points")]
    """
    Points of the full grid, before the conditions.
    """
    chunks: Annotated[int, Field(title="Chunks")]
    chunk_size: Annotated[int, Field(title="Chunk Size")]
    bars: Annotated[int, Field(title="Bars")]
    """
    Bars the date range spans.
    """
    sweeps: Annotated[int, Field(title="Sweeps")]
    """
    Backtests per combination: the whole range and each fold's in-sample.
    """
    style: Annotated[Literal["vectorized", "event"], Field(title="Style")]
    seconds_per_combination: Annotated[float, Field(title="Seconds Per Combination")]
    """
    Estimated single-core seconds of one combination.
    """
    estimated_seconds: Annotated[float, Field(title="Estimated Seconds")]
    """
    Rough wall-clock seconds from the first chunk's start, with free runners.
    """
    lambda_seconds: Annotated[float, Field(title="Lambda Seconds")]
    """
    Rough runner-invocation seconds in all (billed time).
    """
    lambda_gb_seconds: Annotated[float, Field(title="Lambda Gb Seconds")]
    """
    lambda_seconds × the runner's memory in GB.
    """
    max_concurrency: Annotated[int, Field(title="Max Concurrency")]
    """
    Chunks that run at once at most (the queue's cap).
    """
    note: Annotated[str, Field(title="Note")] = (
        "Estimates assume a simple strategy (measured on an SMA crossover); more work per bar takes longer. A chunk that runs out of time continues in a new invocation."
    )


class OptimizationProgress(BaseModel):
    """
    How far it is. `combinations_done` counts finished chunks' combinations and running chunks' progress.
    """

    combinations_done: Annotated[int, Field(title="Combinations Done")]
    combinations_total: Annotated[int, Field(title="Combinations Total")]
    chunks_done: Annotated[int, Field(title="Chunks Done")]
    chunks_total: Annotated[int, Field(title="Chunks Total")]
    chunks_running: Annotated[int, Field(title="Chunks Running")] = 0
    chunks_dead_lettered: Annotated[int, Field(title="Chunks Dead Lettered")] = 0
    """
    Chunks waiting in the DLQ for ops to replay them.
    """
    percent: Annotated[float, Field(ge=0.0, le=100.0, title="Percent")]


class Samples(RootModel[int]):
    root: Annotated[int, Field(ge=1, le=10000, title="Samples")]
    """
    random: how many.
    """


class OptimizationSubmitResponse(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    optimization_id: Annotated[str, Field(title="Optimization Id")]
    status: Annotated[Literal["QUEUED"], Field(title="Status")] = "QUEUED"
    status_url: Annotated[str, Field(title="Status Url")]
    """
    Where to poll it: absolute (also the Location header).
    """
    combinations: Annotated[int, Field(title="Combinations")]
    """
    Combinations the search evaluates.
    """
    chunks: Annotated[int, Field(title="Chunks")]
    """
    Chunks they were cut into (one runner invocation each, about).
    """
    chunk_size: Annotated[int, Field(title="Chunk Size")]
    """
    Combinations per chunk (the last may hold fewer).
    """
    estimated_seconds: Annotated[float, Field(title="Estimated Seconds")]
    """
    Rough wall-clock seconds with free runners.
    """


class OptimizationSummary(BaseModel):
    """
    One line of the caller's optimization list.
    """

    optimization_id: Annotated[str, Field(title="Optimization Id")]
    status: Annotated[
        Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
        Field(title="Status"),
    ]
    name: Annotated[str | None, Field(title="Name")] = None
    symbol: Annotated[str, Field(title="Symbol")]
    timeframe: Annotated[str, Field(title="Timeframe")]
    start_date: Annotated[date | None, Field(title="Start Date")] = None
    end_date: Annotated[date | None, Field(title="End Date")] = None
    created_at: Annotated[str, Field(title="Created At")]
    started_at: Annotated[str | None, Field(title="Started At")] = None
    finished_at: Annotated[str | None, Field(title="Finished At")] = None
    method: Annotated[Literal["grid", "random"], Field(title="Method")]
    target: Annotated[str, Field(title="Target")]
    direction: Annotated[Literal["max", "min"], Field(title="Direction")]
    combinations: Annotated[int, Field(title="Combinations")]
    chunks: Annotated[int, Field(title="Chunks")]
    combinations_done: Annotated[int, Field(title="Combinations Done")]
    failed: Annotated[int, Field(title="Failed")]
    best: BestCombination | None = None
    """
    The best so far, headline metrics.
    """
    error: JobError | None = None
    status_url: Annotated[str, Field(title="Status Url")]


class ParameterRange(BaseModel):
    """
    `min`, `min + step`, ... up to `max` inclusive. All integers give integers; any float gives floats
    (rounded to 12 significant digits, so 0.1 steps do not drift).
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    min: Annotated[int | float, Field(title="Min")]
    """
    First value.
    """
    max: Annotated[int | float, Field(title="Max")]
    """
    Last value (included when reached by whole steps).
    """
    step: Annotated[int | float, Field(title="Step")] = 1
    """
    Distance between two values.
    """


class ParameterValues(BaseModel):
    """
    An explicit list of values (numbers, strings or booleans), tried in this order.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    values: Annotated[
        list[bool | int | float | str],
        Field(max_length=10000, min_length=1, title="Values"),
    ]


class RankedCombination(BaseModel):
    """
    A combination in the ranking: its parameters and headline metrics (the target's, the constraints'; the
    table has every metric).
    """

    rank: Annotated[int, Field(title="Rank")]
    index: Annotated[int, Field(title="Index")]
    """
    Position in the search (grid order, or the random draw's).
    """
    params: Annotated[dict[str, bool | int | float | str], Field(title="Params")]
    metrics: Annotated[dict[str, float | int | None], Field(title="Metrics")]


class Validation(BaseModel):
    """
    Out-of-sample validation.

    - ``walk_forward``: the bars are cut into `windows` folds that step forward by their out-of-sample
      part; each fold optimizes on its in-sample part and runs the winner on the out-of-sample part that
      follows it. The out-of-sample parts tile the end of the history without gaps or overlap, and are
      also reported stitched together. ``anchored``: every in-sample part starts at the first bar.
    - ``holdout``: one fold: optimize on the first 1 − `out_of_sample_fraction` of the bars, run the winner
      on the rest.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    kind: Annotated[Literal["walk_forward", "holdout"], Field(title="Kind")] = "walk_forward"
    windows: Annotated[int, Field(ge=1, le=20, title="Windows")] = 4
    """
    Folds (walk_forward).
    """
    out_of_sample_fraction: Annotated[float, Field(gt=0.0, lt=1.0, title="Out Of Sample Fraction")] = 0.25
    """
    Of each fold (walk_forward), or of all bars (holdout).
    """
    anchored: Annotated[bool, Field(title="Anchored")] = False
    """
    walk_forward: in-sample parts all start at the first bar.
    """


class WindowReport(BaseModel):
    """
    One walk-forward fold: where its parts lie, its winner, the winner's in- and out-of-sample metrics.
    """

    window: Annotated[int, Field(title="Window")]
    in_sample: Annotated[dict[str, Any], Field(title="In Sample")]
    """
    {start, end, bars}: ISO times of the first and last bar.
    """
    out_of_sample: Annotated[dict[str, Any], Field(title="Out Of Sample")]
    best_params: Annotated[dict[str, bool | int | float | str] | None, Field(title="Best Params")] = None
    in_sample_metrics: Annotated[dict[str, float | int | None] | None, Field(title="In Sample Metrics")] = None
    out_of_sample_metrics: Annotated[dict[str, float | int | None] | None, Field(title="Out Of Sample Metrics")] = None
    combinations: Annotated[int, Field(title="Combinations")] = 0
    feasible: Annotated[int, Field(title="Feasible")] = 0
    error: Annotated[dict[str, Any] | None, Field(title="Error")] = None


class EquityCurveDocument(BaseModel):
    time: Annotated[list[str], Field(title="Time")]
    equity: Annotated[list[float], Field(title="Equity")]
    drawdown_pct: Annotated[list[float], Field(title="Drawdown Pct")]


class TradeColumnsDocument(BaseModel):
    """
    Every trade, as columns of equal length (index i of each column is trade i, in exit order).
    """

    entry_time: Annotated[list[str], Field(title="Entry Time")]
    exit_time: Annotated[list[str], Field(title="Exit Time")]
    entry_bar: Annotated[list[int], Field(title="Entry Bar")]
    exit_bar: Annotated[list[int], Field(title="Exit Bar")]
    side: Annotated[list[Literal["long", "short"]], Field(title="Side")]
    size: Annotated[list[float], Field(title="Size")]
    entry_price: Annotated[list[float], Field(title="Entry Price")]
    exit_price: Annotated[list[float], Field(title="Exit Price")]
    pnl: Annotated[list[float], Field(title="Pnl")]
    return_pct: Annotated[list[float], Field(title="Return Pct")]
    commission: Annotated[list[float], Field(title="Commission")]
    exit_reason: Annotated[
        list[Literal["signal", "stop_loss", "take_profit", "end_of_data"]],
        Field(title="Exit Reason"),
    ]
    bars_held: Annotated[list[int], Field(title="Bars Held")]


class ErrorResponse(BaseModel):
    success: Annotated[Literal[False], Field(title="Success")] = False
    error: ErrorDetail
    errors: Annotated[list[FieldError] | None, Field(title="Errors")] = None
    """
    A 422's problems, one entry per bad field, for a form to show beside each field.
    """


class MarketDataStats(BaseModel):
    data_points: Annotated[int, Field(title="Data Points")]
    date_range: DateRange | None
    price_range: PriceRange | None
    symbol: Annotated[str | None, Field(title="Symbol")] = None
    timeframe: Annotated[str | None, Field(title="Timeframe")] = None
    source: Annotated[str | None, Field(title="Source")] = None


class RunResponse(BaseModel):
    """
    `POST /run?wait=S` when the job ended within S seconds: the seed API's synchronous answer
    (`success`, `execution_id`, `performance_metrics`, `trade_summary`, `market_data_stats`) and the job.
    `success` is false when the job FAILED or was CANCELLED (`error` says why).
    """

    success: Annotated[bool, Field(title="Success")] = True
    execution_id: Annotated[str, Field(title="Execution Id")]
    status: Annotated[
        Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
        Field(title="Status"),
    ]
    name: Annotated[str | None, Field(title="Name")] = None
    notes: Annotated[str | None, Field(title="Notes")] = None
    symbol: Annotated[str, Field(title="Symbol")]
    timeframe: Annotated[str, Field(title="Timeframe")]
    start_date: Annotated[date | None, Field(title="Start Date")] = None
    end_date: Annotated[date | None, Field(title="End Date")] = None
    created_at: Annotated[str, Field(title="Created At")]
    started_at: Annotated[str | None, Field(title="Started At")] = None
    finished_at: Annotated[str | None, Field(title="Finished At")] = None
    attempts: Annotated[int, Field(title="Attempts")] = 0
    """
    Times a runner started this job (redeliveries count).
    """
    performance_metrics: Annotated[dict[str, float | int | None] | None, Field(title="Performance Metrics")] = None
    trade_summary: TradeSummary | None = None
    market_data_stats: MarketDataStats | None = None
    engine_version: Annotated[str | None, Field(title="Engine Version")] = None
    data_fingerprint: Annotated[str | None, Field(title="Data Fingerprint")] = None
    parameters: Annotated[dict[str, bool | int | float | str] | None, Field(title="Parameters")] = None
    """
    The parameters the job was submitted with.
    """
    progress: Progress | None = None
    cancel_requested: Annotated[bool, Field(title="Cancel Requested")] = False
    """
    The owner asked to cancel; the runner stops it within about a second.
    """
    expired: Annotated[bool, Field(title="Expired")] = False
    """
    Past expires_at: the stored results are gone or about to be (no result links; 410).
    """
    expires_at: Annotated[int | None, Field(title="Expires At")] = None
    """
    Epoch seconds when the job and its results expire.
    """
    error: JobError | None = None
    status_url: Annotated[str | None, Field(title="Status Url")] = None
    """
    This answer's own absolute URL.
    """
    equity_url: Annotated[str | None, Field(title="Equity Url")] = None
    """
    The downsampled equity and drawdown curve (SUCCEEDED only).
    """
    trades_url: Annotated[str | None, Field(title="Trades Url")] = None
    """
    The trades, a page at a time (SUCCEEDED only).
    """
    results_url: Annotated[str | None, Field(title="Results Url")] = None
    """
    Presigned link to the full result JSON (schema: BacktestResultDocument; gzip-encoded); SUCCEEDED only.
    """
    report_url: Annotated[str | None, Field(title="Report Url")] = None
    """
    Presigned link to the self-contained HTML report (SUCCEEDED only).
    """
    results_url_expires_in: Annotated[int | None, Field(title="Results Url Expires In")] = None
    """
    Seconds results_url and report_url stay valid.
    """


class JobList(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    executions: Annotated[list[JobSummary], Field(title="Executions")]
    next_token: Annotated[str | None, Field(title="Next Token")] = None
    """
    Pass as next_token to get the next page; absent on the last page.
    """


class JobStatus(BaseModel):
    """
    One backtest job as the caller sees it (a few KB whatever the job's size: the curve and the trades
    are behind `equity_url`, `trades_url` and `results_url`).
    """

    success: Annotated[Literal[True], Field(title="Success")] = True
    execution_id: Annotated[str, Field(title="Execution Id")]
    status: Annotated[
        Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
        Field(title="Status"),
    ]
    name: Annotated[str | None, Field(title="Name")] = None
    notes: Annotated[str | None, Field(title="Notes")] = None
    symbol: Annotated[str, Field(title="Symbol")]
    timeframe: Annotated[str, Field(title="Timeframe")]
    start_date: Annotated[date | None, Field(title="Start Date")] = None
    end_date: Annotated[date | None, Field(title="End Date")] = None
    created_at: Annotated[str, Field(title="Created At")]
    started_at: Annotated[str | None, Field(title="Started At")] = None
    finished_at: Annotated[str | None, Field(title="Finished At")] = None
    attempts: Annotated[int, Field(title="Attempts")] = 0
    """
    Times a runner started this job (redeliveries count).
    """
    performance_metrics: Annotated[dict[str, float | int | None] | None, Field(title="Performance Metrics")] = None
    trade_summary: TradeSummary | None = None
    market_data_stats: MarketDataStats | None = None
    engine_version: Annotated[str | None, Field(title="Engine Version")] = None
    data_fingerprint: Annotated[str | None, Field(title="Data Fingerprint")] = None
    parameters: Annotated[dict[str, bool | int | float | str] | None, Field(title="Parameters")] = None
    """
    The parameters the job was submitted with.
    """
    progress: Progress | None = None
    cancel_requested: Annotated[bool, Field(title="Cancel Requested")] = False
    """
    The owner asked to cancel; the runner stops it within about a second.
    """
    expired: Annotated[bool, Field(title="Expired")] = False
    """
    Past expires_at: the stored results are gone or about to be (no result links; 410).
    """
    expires_at: Annotated[int | None, Field(title="Expires At")] = None
    """
    Epoch seconds when the job and its results expire.
    """
    error: JobError | None = None
    status_url: Annotated[str | None, Field(title="Status Url")] = None
    """
    This answer's own absolute URL.
    """
    equity_url: Annotated[str | None, Field(title="Equity Url")] = None
    """
    The downsampled equity and drawdown curve (SUCCEEDED only).
    """
    trades_url: Annotated[str | None, Field(title="Trades Url")] = None
    """
    The trades, a page at a time (SUCCEEDED only).
    """
    results_url: Annotated[str | None, Field(title="Results Url")] = None
    """
    Presigned link to the full result JSON (schema: BacktestResultDocument; gzip-encoded); SUCCEEDED only.
    """
    report_url: Annotated[str | None, Field(title="Report Url")] = None
    """
    Presigned link to the self-contained HTML report (SUCCEEDED only).
    """
    results_url_expires_in: Annotated[int | None, Field(title="Results Url Expires In")] = None
    """
    Seconds results_url and report_url stay valid.
    """


class SymbolsResponse(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    symbols: Annotated[list[SymbolInfo], Field(title="Symbols")]
    timeframes: Annotated[list[TimeframeInfo], Field(title="Timeframes")]
    date_range: DateRangeInfo
    max_bars: Annotated[int, Field(title="Max Bars")]
    """
    Most bars one request may span.
    """


class DatasetList(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    datasets: Annotated[list[DatasetSummary], Field(title="Datasets")]
    next_token: Annotated[str | None, Field(title="Next Token")] = None
    """
    Pass as next_token to get the next page; absent on the last page.
    """


class OptimizationList(BaseModel):
    success: Annotated[Literal[True], Field(title="Success")] = True
    optimizations: Annotated[list[OptimizationSummary], Field(title="Optimizations")]
    next_token: Annotated[str | None, Field(title="Next Token")] = None
    """
    Pass as next_token for the next page; absent at the end.
    """


class OptimizationStatus(BaseModel):
    """
    One optimization as its owner sees it.
    """

    success: Annotated[Literal[True], Field(title="Success")] = True
    optimization_id: Annotated[str, Field(title="Optimization Id")]
    status: Annotated[
        Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
        Field(title="Status"),
    ]
    name: Annotated[str | None, Field(title="Name")] = None
    symbol: Annotated[str, Field(title="Symbol")]
    timeframe: Annotated[str, Field(title="Timeframe")]
    start_date: Annotated[date | None, Field(title="Start Date")] = None
    end_date: Annotated[date | None, Field(title="End Date")] = None
    created_at: Annotated[str, Field(title="Created At")]
    started_at: Annotated[str | None, Field(title="Started At")] = None
    finished_at: Annotated[str | None, Field(title="Finished At")] = None
    method: Annotated[Literal["grid", "random"], Field(title="Method")]
    target: Annotated[str, Field(title="Target")]
    direction: Annotated[Literal["max", "min"], Field(title="Direction")]
    top_k: Annotated[int, Field(title="Top K")]
    parameters: Annotated[
        dict[str, ParameterRange | ParameterValues | bool | int | float | str],
        Field(title="Parameters"),
    ]
    """
    The search space as submitted.
    """
    conditions: Annotated[list[Condition] | None, Field(title="Conditions")] = None
    constraints: Annotated[list[Constraint] | None, Field(title="Constraints")] = None
    validation: Validation | None = None
    combinations: Annotated[int, Field(title="Combinations")]
    chunks: Annotated[int, Field(title="Chunks")]
    chunk_size: Annotated[int, Field(title="Chunk Size")]
    estimated_seconds: Annotated[float | None, Field(title="Estimated Seconds")] = None
    progress: OptimizationProgress
    succeeded: Annotated[int, Field(title="Succeeded")] = 0
    """
    Combinations that ran (so far).
    """
    failed: Annotated[int, Field(title="Failed")] = 0
    """
    Combinations whose strategy failed (so far); see failed_examples.
    """
    feasible: Annotated[int, Field(title="Feasible")] = 0
    """
    Combinations that met every constraint (so far).
    """
    best: BestCombination | None = None
    """
    The best so far (every metric once SUCCEEDED).
    """
    top: Annotated[list[RankedCombination] | None, Field(title="Top")] = None
    """
    The top_k so far, best first.
    """
    failed_examples: Annotated[list[FailedCombination] | None, Field(title="Failed Examples")] = None
    """
    The first failed combinations (lowest index) and their errors.
    """
    windows: Annotated[list[WindowReport] | None, Field(title="Windows")] = None
    """
    Walk-forward / holdout: in- vs out-of-sample per window.
    """
    stitched_out_of_sample_metrics: Annotated[
        dict[str, float | int | None] | None,
        Field(title="Stitched Out Of Sample Metrics"),
    ] = None
    """
    The out-of-sample runs chained together.
    """
    cancel_requested: Annotated[bool, Field(title="Cancel Requested")] = False
    error: JobError | None = None
    status_url: Annotated[str | None, Field(title="Status Url")] = None
    table_json_url: Annotated[str | None, Field(title="Table Json Url")] = None
    """
    Presigned link to every combination's parameters and metrics, JSON (gzip); SUCCEEDED.
    """
    table_csv_url: Annotated[str | None, Field(title="Table Csv Url")] = None
    """
    The same table as CSV (gzip); SUCCEEDED only.
    """
    table_urls_expire_in: Annotated[int | None, Field(title="Table Urls Expire In")] = None
    """
    Seconds the table links stay valid.
    """


class OptimizationSubmitRequest(BaseModel):
    """
    The body of `POST /api/backtest/optimizations` and `.../estimate`: the backtest fields (strategy_code,
    symbol, timeframe, dates, capital, costs, name) and the search: `parameters` (each name → {min, max, step},
    {values: [...]}, or a fixed value), `conditions` between parameters, `method` grid or random (`samples`,
    `seed`), `target` and `direction`, `constraints` on metrics, `top_k`, and `validation` (walk_forward or
    holdout).

    Parsing checks the types, the catalog and the search; the limits of the deployment (the code's size:
    413; the bar cap, the dates: 422) are checked right after, with the settings, as for `POST /run`.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    strategy_code: Annotated[
        str,
        Field(
            examples=[
                'import numpy as np\nimport talib\n\n\ndef generate_signals(data, params):\n    fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 10))\n    slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 30))\n    return np.where(fast > slow, 1.0, 0.0)\n'
            ],
            title="Strategy Code",
        ),
    ]
    """
    Python source defining generate_signals(data, params), or initialize(ctx) + on_bar(ctx, bar).
    """
    symbol: Annotated[str, Field(title="Symbol")] = "AAPL"
    """
    One of the symbols listed by /market-data/symbols.
    """
    timeframe: Annotated[Literal["1m", "5m", "15m", "1h", "4h", "1d"], Field(title="Timeframe")] = "1h"
    """
    Bar size.
    """
    start_date: Annotated[date, Field(title="Start Date")] = "2024-01-01"
    """
    First day of the backtest (inclusive), YYYY-MM-DD.
    """
    end_date: Annotated[date, Field(title="End Date")] = "2024-12-31"
    """
    Last day of the backtest (inclusive), YYYY-MM-DD.
    """
    initial_capital: Annotated[float, Field(gt=0.0, le=1000000000000.0, title="Initial Capital")] = 10000.0
    """
    Starting cash.
    """
    commission: Annotated[float, Field(ge=0.0, le=0.1, title="Commission")] = 0.001
    """
    Fraction of each fill's notional, e.g. 0.001 = 0.1%.
    """
    slippage: Annotated[float, Field(ge=0.0, le=0.1, title="Slippage")] = 0.0005
    """
    Fraction the fill price moves against the trader.
    """
    parameters: Annotated[
        dict[str, ParameterRange | ParameterValues | bool | int | float | str] | None,
        Field(title="Parameters"),
    ] = None
    """
    Each name → {min, max, step}, {values: [...]}, or a fixed value.
    """
    name: Annotated[Name | None, Field(title="Name")] = None
    """
    A label for the run.
    """
    dataset_id: Annotated[DatasetId | None, Field(title="Dataset Id")] = None
    """
    One of your READY datasets (POST /api/backtest/datasets), in place of symbol: its bars are the market data. timeframe, start_date and end_date then default to the dataset's own; given, they pick its days and a coarser timeframe to aggregate to, checked against the dataset.
    """
    conditions: Annotated[list[Condition] | None, Field(max_length=20, title="Conditions")] = None
    """
    Rules between parameters, e.g. fast < slow.
    """
    method: Annotated[Literal["grid", "random"], Field(title="Method")] = "grid"
    """
    grid: every combination; random: `samples` of them.
    """
    samples: Annotated[Samples | None, Field(title="Samples")] = None
    """
    random: how many.
    """
    seed: Annotated[int, Field(ge=0, le=9223372036854776000, title="Seed")] = 0
    """
    random: the same seed draws the same set.
    """
    target: Annotated[str, Field(title="Target")] = "sharpe_ratio"
    """
    The metric key to optimize.
    """
    direction: Annotated[Literal["max", "min"] | None, Field(title="Direction")] = None
    """
    max or min; default: the metric's better direction.
    """
    constraints: Annotated[list[Constraint] | None, Field(max_length=20, title="Constraints")] = None
    top_k: Annotated[int, Field(ge=1, le=100, title="Top K")] = 10
    """
    How many ranked combinations to report.
    """
    validation: Validation | None = None


class BacktestResultDocument(BaseModel):
    """
    The full result behind `results_url` (gzip-encoded JSON), as `backtest run --json` prints it.
    """

    request: Annotated[dict[str, Any], Field(title="Request")]
    style: Annotated[Literal["vectorized", "event"], Field(title="Style")]
    performance_metrics: Annotated[dict[str, float | int | None], Field(title="Performance Metrics")]
    metric_notes: Annotated[dict[str, str], Field(title="Metric Notes")]
    periods_per_year: Annotated[int, Field(title="Periods Per Year")]
    trade_summary: TradeSummary
    market_data_stats: MarketDataStats
    trades: TradeColumnsDocument
    equity_curve: EquityCurveDocument
    logs: Annotated[list[str], Field(title="Logs")]
    engine_version: Annotated[str, Field(title="Engine Version")]
    data_fingerprint: Annotated[str, Field(title="Data Fingerprint")]
    timings: Annotated[dict[str, float], Field(title="Timings")]
