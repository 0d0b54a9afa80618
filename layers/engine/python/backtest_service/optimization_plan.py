"""How an optimization is cut into chunks, and what it will cost: pure arithmetic on the request, the
strategy's style and the bar count (no numpy: the optimizations API function plans with it).

A combination costs one backtest per sweep: the whole range, plus each walk-forward fold's in-sample part
(the out-of-sample run of each fold's winner is the aggregation's). Its cost comes from
`backtest_engine.optimization.cost.estimate_seconds` (the batch path, measured; event style costs more a bar).

Chunk size: as many combinations as make about `chunk_seconds` (60 s by default, the setting
`OPTIMIZATION_CHUNK_SECONDS`) of work, at least 1 and at most `MAX_CHUNK_COMBINATIONS`; then grown so that no
optimization has more than `MAX_CHUNKS` chunks. Why 60 s: a chunk pays a fixed overhead (an invocation,
the bars generated, the strategy compiled, one sandbox child forked and confined, its results written,
its count: about half a second), which 60 s of work makes about 1%; and a chunk stays far inside the
runner's 300 s timeout even when the estimate is off by 3× (a chunk that does run out of time checkpoints
and continues, see `optimization_runner`). Smaller chunks would finish a large search sooner only while
runners are free, and the optimization queue's concurrency is capped anyway (capacity is shared with single
backtests, see `topology.OPTIMIZATION_QUEUE`). A search under a minute of work is one chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backtest_engine.optimization.cost import Style, estimate_seconds
from backtest_engine.optimization.folds import folds
from backtest_engine.optimization.models import OptimizationRequest
from backtest_service.topology import OPTIMIZATION_QUEUE, RUN_BACKTEST

MAX_CHUNK_COMBINATIONS = 1000  # a chunk's results object stays a few MB
MAX_CHUNKS = 250  # messages one submit sends (25 batch calls), items one status read sums up
# Estimated single-core work one optimization may ask for (4 hours: 250 chunks of about a minute each).
MAX_COMPUTE_SECONDS = 4 * 3600
# What a chunk costs beyond its combinations (invocation, bars, compile, one child, its S3 and DynamoDB writes),
# and what the aggregation costs beyond its walk-forward runs (reading the chunks, writing the table).
CHUNK_OVERHEAD_SECONDS = 0.5
AGGREGATION_SECONDS = 1.0


@dataclass(frozen=True)
class Plan:
    combinations: int
    bars: int
    style: Style
    sweeps: tuple[int, ...]  # bars of each sweep: the whole range, then each fold's in-sample part
    out_of_sample: tuple[int, ...]  # bars of each fold's out-of-sample part (one run each, at aggregation)
    seconds_per_combination: float
    chunk_size: int
    chunks: int
    max_concurrency: int

    @property
    def chunk_seconds(self) -> float:
        return self.chunk_size * self.seconds_per_combination

    @property
    def work_seconds(self) -> float:
        """Single-core seconds of every backtest of the search."""
        oos = sum(estimate_seconds(1, n, self.style) for n in self.out_of_sample)
        return self.combinations * self.seconds_per_combination + oos

    @property
    def lambda_seconds(self) -> float:
        """Runner-invocation seconds in all (what is billed, about)."""
        return self.work_seconds + self.chunks * CHUNK_OVERHEAD_SECONDS + AGGREGATION_SECONDS

    @property
    def lambda_gb_seconds(self) -> float:
        return self.lambda_seconds * RUN_BACKTEST.memory_mb / 1024

    @property
    def estimated_seconds(self) -> float:
        """Wall-clock seconds from the first chunk's start to the end, with free runners: the chunks run in
        waves of `max_concurrency`."""
        waves = math.ceil(self.chunks / self.max_concurrency)
        longest = self.chunk_seconds + CHUNK_OVERHEAD_SECONDS
        oos = sum(estimate_seconds(1, n, self.style) for n in self.out_of_sample)
        return waves * longest + AGGREGATION_SECONDS + oos


def sweep_bars(request: OptimizationRequest, bars: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(bars of each sweep, bars of each out-of-sample part); `UserInputError` when the folds do not fit."""
    if request.validation is None:
        return (bars,), ()
    parts = folds(bars, request.validation)
    return (
        (bars, *(b - a for a, b in (f.in_sample for f in parts))),
        tuple(b - a for a, b in (f.out_of_sample for f in parts)),
    )


def make_plan(
    request: OptimizationRequest,
    *,
    combinations: int,
    bars: int,
    style: Style,
    chunk_seconds: float,
    max_concurrency: int = OPTIMIZATION_QUEUE.max_concurrency,
) -> Plan:
    """The chunks of `combinations` combinations of `request` on `bars` bars (see the module docstring)."""
    sweeps, out_of_sample = sweep_bars(request, bars)
    per_combination = sum(estimate_seconds(1, n, style) for n in sweeps)
    size = max(1, min(MAX_CHUNK_COMBINATIONS, math.floor(chunk_seconds / per_combination)))
    size = min(max(size, math.ceil(combinations / MAX_CHUNKS)), max(combinations, 1))
    return Plan(
        combinations=combinations,
        bars=bars,
        style=style,
        sweeps=sweeps,
        out_of_sample=out_of_sample,
        seconds_per_combination=per_combination,
        chunk_size=size,
        chunks=math.ceil(combinations / size),
        max_concurrency=max_concurrency,
    )
