"""The optimization service's pure parts (issue 14): chunk sizing and estimates, the merges that make a chunk's
count idempotent, the typed queue messages."""

from __future__ import annotations

from typing import Any

import pytest

from backtest_engine.optimization.cost import estimate_seconds
from backtest_engine.optimization.models import OptimizationRequest
from backtest_service.job_queue import ChunkMessage, InvalidMessage, JobMessage, decode_message, encode_message
from backtest_service.optimization_plan import MAX_CHUNK_COMBINATIONS, MAX_CHUNKS, make_plan
from backtest_service.optimizations import chunk_bounds, chunk_item, merge_failures, merge_top

CODE = "def generate_signals(data, params):\n    return data.close.values * 0\n"


def request(**fields: Any) -> OptimizationRequest:
    body = {"strategy_code": CODE, "parameters": {"x": {"min": 1, "max": 10}}, **fields}
    return OptimizationRequest.model_validate(body, context={"max_bars": None})


def test_a_chunk_holds_about_the_target_work() -> None:
    # 100k bars: about 7 ms a combination, so 60 s is 8,571 of them, capped at MAX_CHUNK_COMBINATIONS
    plan = make_plan(request(), combinations=9_000, bars=100_000, style="vectorized", chunk_seconds=60)
    assert plan.chunk_size == MAX_CHUNK_COMBINATIONS and plan.chunks == 9
    # 2,000,000 bars: 0.11 s a combination: 538 a chunk
    big = make_plan(request(), combinations=9_000, bars=2_000_000, style="vectorized", chunk_seconds=60)
    assert big.chunk_size == int(60 / estimate_seconds(1, 2_000_000)) == 538
    assert big.chunks == 17
    # Event style costs more a bar: smaller chunks
    event = make_plan(request(), combinations=2_000, bars=2_000_000, style="event", chunk_seconds=60)
    assert event.chunk_size == int(60 / estimate_seconds(1, 2_000_000, "event")) < big.chunk_size


def test_a_small_search_is_one_chunk_of_its_size() -> None:
    plan = make_plan(request(), combinations=90, bars=99_360, style="vectorized", chunk_seconds=60)
    assert (plan.chunks, plan.chunk_size) == (1, 90)
    assert plan.estimated_seconds > plan.chunk_seconds and plan.lambda_seconds > plan.work_seconds


def test_chunks_never_exceed_the_cap() -> None:
    plan = make_plan(request(), combinations=10_000, bars=2_000_000, style="event", chunk_seconds=1)
    assert plan.chunks <= MAX_CHUNKS and plan.chunk_size * plan.chunks >= 10_000


def test_walk_forward_adds_a_sweep_per_fold() -> None:
    wf = request(validation={"kind": "walk_forward", "windows": 4, "out_of_sample_fraction": 0.25})
    plan = make_plan(wf, combinations=100, bars=10_000, style="vectorized", chunk_seconds=60)
    assert len(plan.sweeps) == 5 and len(plan.out_of_sample) == 4
    assert plan.sweeps[0] == 10_000 and all(n < 10_000 for n in plan.sweeps[1:])
    assert plan.seconds_per_combination == pytest.approx(sum(estimate_seconds(1, n) for n in plan.sweeps))


def test_chunk_bounds_tile_the_search() -> None:
    bounds = [chunk_bounds(n, 3, 10) for n in range(4)]
    assert bounds == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert chunk_item(42) == "chunk#00042"


def test_merging_the_same_chunk_twice_changes_nothing() -> None:
    def entry(index: int, sharpe: float) -> dict[str, Any]:
        return {"index": index, "params": {"x": index}, "metrics": {"sharpe_ratio": sharpe}}

    a = [entry(0, 1.0), entry(3, 2.0)]
    b = [entry(5, 2.0), entry(7, 0.5)]
    once = merge_top(a, b, k=3, target="sharpe_ratio", direction="max")
    assert [e["index"] for e in once] == [3, 5, 0]  # a tie goes to the earlier combination
    assert merge_top(once, b, k=3, target="sharpe_ratio", direction="max") == once
    assert [e["index"] for e in merge_top(a, b, k=2, target="sharpe_ratio", direction="min")] == [7, 0]
    failures = merge_failures([{"index": 9}, {"index": 2}], [{"index": 4}, {"index": 1}, {"index": 2}])
    assert [f["index"] for f in failures] == [1, 2, 4]


def test_messages_are_typed() -> None:
    assert decode_message(encode_message("abc")) == JobMessage("abc")
    assert decode_message(ChunkMessage("opt-1", 3).encode()) == ChunkMessage("opt-1", 3)
    for bad in (
        '{"kind": "optimization_chunk", "optimization_id": "opt-1", "chunk": -1}',
        '{"kind": "optimization_chunk", "optimization_id": "opt-1", "chunk": true}',
        '{"kind": "optimization_chunk", "chunk": 1}',
        '{"kind": "other", "execution_id": "abc"}',
        "[1]",
        "nope",
    ):
        with pytest.raises(InvalidMessage):
            decode_message(bad)
