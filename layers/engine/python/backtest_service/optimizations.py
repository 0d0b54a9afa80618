"""A parameter optimization's records and lifecycle (issue 14): the optimization itself and its chunks.

The submit expands the search (`backtest_engine.optimization.space`), cuts the combinations into chunks of
`chunk_size` (chunk n holds combinations [n·size, (n+1)·size)) and queues one message per chunk. Each chunk
runs on the runner function, stores its results in S3 and is then counted, once, into its optimization;
the chunk whose count reaches the total aggregates (ranking, walk-forward windows, the full table) and ends
the optimization SUCCEEDED. Nothing polls.

Optimization (item ``optimization``):

    QUEUED ──► RUNNING ──► SUCCEEDED   the last chunk counted aggregates (an idempotent final write)
       │          ├──────► FAILED      a chunk's input error; or every chunk settled, one dead-lettered
       │          └──────► CANCELLED   the owner cancelled: at once; running chunks stop within ~1 s and
       │                               queued ones never run
       ├─────────────────► FAILED      the queue refused the chunks at submit (QueueUnavailable)
       └─────────────────► CANCELLED
    FAILED (dead-lettered) ──► RUNNING   ops replay a dead-lettered chunk (`backtest replay`)

Chunk (item ``chunk#00042``; no item yet: not started):

    (none) ──► RUNNING ──► SUCCEEDED   its results are in S3; it is then counted into the optimization
                 │ ▲  ├──► FAILED      dead-lettered (ops replay it: → QUEUED), or an input error
                 │ │  └──► CANCELLED   its optimization was cancelled
                 │ └── RUNNING again: after an infrastructure fault it recorded (`retry_attempt` = attempts),
                 │     or a continuation (its time budget ran out: it checkpointed and queued itself again)
    (none) ──► CANCELLED               its optimization was cancelled (or had failed) before it ran

Exactly once per chunk: a chunk's S3 key is made of the optimization id and the chunk number (a rerun
overwrites), its transitions are conditional writes on its own item, and the count into the optimization
is one update that adds the chunk number to the set `counted` on condition that it is not in it yet
(`ADD chunks_done :one, counted :n` with `NOT contains(counted, :n)`), so a duplicate, a redelivery or a
replay can never count it twice. The same update merges the chunk's best combinations into the running top
K (idempotent: a merge keyed by combination index) under an optimistic `version`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator

from backtest_engine.base_model import Model
from backtest_service.errors import ServiceError
from backtest_service.jobs import Status

HEADER_ITEM = "optimization"
CHUNK_ITEM_PREFIX = "chunk#"
CHUNK_KIND = "optimization_chunk"

# Error types the service records on an optimization or a chunk (the combinations' own are the engine's).
NO_FEASIBLE = "NoFeasibleCombination"


def chunk_item(chunk: int) -> str:
    """The sort key of chunk `chunk`'s item."""
    return f"{CHUNK_ITEM_PREFIX}{chunk:05d}"


def chunk_bounds(chunk: int, chunk_size: int, total: int) -> tuple[int, int]:
    """[start, stop): the combinations (search order) chunk `chunk` holds."""
    start = chunk * chunk_size
    return start, min(start + chunk_size, total)


def _number_set(value: Any) -> set[int]:
    if value is None:
        return set()
    return {int(v) for v in value}


class OptimizationRecord(Model):
    """The optimization's item: who, what (the request), the plan, the counters, the running top K."""

    model_config = ConfigDict(extra="ignore")

    optimization_id: str
    item: str = HEADER_ITEM
    owner: str
    status: Status
    created_at: str
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    name: str | None = None
    symbol: str
    timeframe: str
    start_date: str | None = None
    end_date: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    expires_at: int | None = Field(default=None, description="Epoch seconds: DynamoDB TTL.")
    # The plan, fixed at submit.
    style: str = "vectorized"
    bars: int = 0
    method: str = "grid"
    target: str = "sharpe_ratio"
    direction: str = "max"
    top_k: int = 10
    combinations: int = 0
    grid_points: int = 0
    chunks: int = 0
    chunk_size: int = 0
    estimated_seconds: float | None = None
    # Counters (each chunk counted once: its number is in `counted`).
    chunks_done: int = 0
    combinations_done: int = 0
    combinations_failed: int = 0
    combinations_feasible: int = 0
    counted: set[int] = Field(default_factory=set)
    dead_chunks: set[int] = Field(default_factory=set)
    version: int = 0
    # The best combinations so far, best first ({index, params, metrics: headline}), and the first failures.
    top: list[dict[str, Any]] = Field(default_factory=list)
    failed_examples: list[dict[str, Any]] = Field(default_factory=list)
    cancel_requested_at: str | None = None
    error: dict[str, Any] | None = None
    dead_lettered: bool = False
    # Set when SUCCEEDED.
    best: dict[str, Any] | None = None
    windows: list[dict[str, Any]] | None = None
    stitched_out_of_sample_metrics: dict[str, Any] | None = None
    table_json_key: str | None = None
    table_csv_key: str | None = None
    timings: dict[str, Any] | None = None

    @field_validator("counted", "dead_chunks", mode="before")
    @classmethod
    def _sets(cls, v: Any) -> set[int]:
        return _number_set(v)

    @property
    def settled(self) -> int:
        """Chunks that will not run again by themselves: counted, or dead-lettered."""
        return len(self.counted | self.dead_chunks)


class ChunkRecord(Model):
    """One chunk's item: its lifecycle, attempts, heartbeat and checkpoint."""

    model_config = ConfigDict(extra="ignore")

    optimization_id: str
    item: str
    chunk: int
    status: Status
    attempts: int = 0
    started_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    heartbeat_at: str | None = None
    # The attempt whose infrastructure fault (or continuation) was recorded before the message came back.
    retry_attempt: int | None = None
    # While RUNNING: {done, total} backtests of this chunk (its combinations × sweeps).
    progress: dict[str, Any] | None = None
    # The checkpoint: backtests (units) of this chunk already stored in its S3 object by an earlier attempt.
    next_unit: int = 0
    succeeded: int | None = None
    failed: int | None = None
    feasible: int | None = None
    error: dict[str, Any] | None = None
    dead_lettered: bool = False
    expires_at: int | None = None


# ---- the running top K and the first failures: merges that are idempotent ----------------------------------

# How many failed combinations an optimization shows (the lowest indices), each with its error.
FAILED_EXAMPLES = 3
# The metrics each top-K entry shows (with the target's and the constraints'); the table has them all.
TOP_METRICS = (
    "total_return_percent",
    "sharpe_ratio",
    "max_drawdown_percent",
    "win_rate",
    "profit_factor",
    "total_trades",
    "final_capital",
)


def shown_metrics(target: str, constraint_metrics: list[str]) -> tuple[str, ...]:
    """The metrics of a top-K entry: the target first, then `TOP_METRICS` and the constraints' metrics."""
    return tuple(dict.fromkeys([target, *TOP_METRICS, *constraint_metrics]))


def rank_value(entry: dict[str, Any], target: str, direction: str) -> tuple[float, int]:
    """The ranking's order (`backtest_engine.optimization.ranking.rank_key`) of a top-K entry."""
    value = float(entry["metrics"][target])
    return (-value if direction == "max" else value, int(entry["index"]))


def merge_top(
    current: list[dict[str, Any]], more: list[dict[str, Any]], *, k: int, target: str, direction: str
) -> list[dict[str, Any]]:
    """The best `k` of both lists (entries {index, params, metrics}, feasible only), best first. Keyed by
    index: merging the same entries twice gives the same list."""
    by_index = {int(e["index"]): e for e in [*current, *more]}
    return sorted(by_index.values(), key=lambda e: rank_value(e, target, direction))[:k]


def merge_failures(current: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failed combinations of lowest index ({index, params, error}), at most `FAILED_EXAMPLES`."""
    by_index = {int(e["index"]): e for e in [*current, *more]}
    return [by_index[i] for i in sorted(by_index)[:FAILED_EXAMPLES]]


# ---- errors ---------------------------------------------------------------------------------------------


class OptimizationNotFound(ServiceError):
    """Unknown id, or one owned by someone else: one answer for both, so ids cannot be probed."""

    code = "NotFound"
    status = 404

    def __init__(self, optimization_id: str) -> None:
        super().__init__(f"no optimization with optimization_id {optimization_id!r}")
        self.optimization_id = optimization_id


class ChunkDone(ServiceError):
    """The chunk already SUCCEEDED (a duplicate, a redelivery, a replay): its count is checked, not its run."""

    code = "ChunkDone"
    status = 409

    def __init__(self, chunk: ChunkRecord) -> None:
        super().__init__(f"chunk {chunk.chunk} of optimization {chunk.optimization_id} is done")
        self.chunk = chunk


class ChunkStopped(ServiceError):
    """The chunk was CANCELLED or FAILED: it is not run again (a dead-lettered one only after a replay)."""

    code = "ChunkStopped"
    status = 409

    def __init__(self, chunk: ChunkRecord) -> None:
        super().__init__(f"chunk {chunk.chunk} of optimization {chunk.optimization_id} is {chunk.status}")
        self.chunk = chunk


class ChunkBusy(ServiceError):
    """Another runner is alive on this chunk (fresh heartbeat): a duplicate delivery leaves it alone."""

    code = "ChunkBusy"
    status = 409


class ChunkVanished(ServiceError):
    """The chunk is RUNNING but its runner stopped writing heartbeats without recording a fault: killed by
    its platform (out of memory, timeout)."""

    code = "RunnerKilled"
    status = 500

    def __init__(self, chunk: ChunkRecord) -> None:
        super().__init__(f"the runner of chunk {chunk.chunk} of optimization {chunk.optimization_id} vanished")
        self.chunk = chunk


class OptimizationContended(ServiceError):
    """The optimization's item kept changing under a chunk's count (many chunks finishing at once): retried."""

    code = "OptimizationContended"
    status = 503
