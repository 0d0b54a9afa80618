"""Parameter optimizations through the real handlers on the local stack (issue 14): submit fans a search out
into chunks on the optimization chunks queue, the runner function runs them, the last one aggregates; the
answer is the in-process search's. Checks a form can use, the cap, estimate, random search, constraints,
cancel (queued chunks never run, a running one stops), a chunk that runs out of time, and owners.

One stack for the module, with chunks of about 5 ms of work, so a 12-point grid is 4 chunks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backtest_engine.optimization.models import OptimizationRequest
from backtest_engine.optimization.search import run_optimization
from backtest_service import optimization_runner
from backtest_service.job_queue import ChunkMessage
from backtest_service.optimization_results import chunk_key
from local.stack import LocalStack
from tests.optimization_support import GRID, RUN, Optimizations, chunked_stack, search
from tests.support import SMA_CROSS

pytestmark = pytest.mark.xdist_group("optimizations")

# Event style and slow on purpose (`steps` Python steps a bar): 1,500 steps on a month of hourly BTCUSD bars
# take about 0.4 s, 60,000 a few seconds.
SLOW = """\
def on_bar(ctx, bar):
    total = 0
    for i in range(ctx.params.get("steps", 1500)):
        total += i
    if total < 0:
        ctx.buy()
"""
SLOW_RUN = {"symbol": "BTCUSD", "timeframe": "1h", "start_date": "2024-01-01", "end_date": "2024-01-31"}


@pytest.fixture(scope="module")
def opt_stack() -> Iterator[LocalStack]:
    with chunked_stack() as local_stack:
        yield local_stack


@pytest.fixture
def opt(opt_stack: LocalStack) -> Optimizations:
    opt_stack.drain_queue()  # whatever a failed test left
    return Optimizations(opt_stack)


def _items(stack: LocalStack) -> int:
    return int(stack.client("dynamodb").scan(TableName=stack.resources.optimizations_table, Select="COUNT")["Count"])


def _engine_result(body: dict[str, Any]) -> Any:
    """The same search in this process (`backtest optimize`'s path)."""
    return run_optimization(OptimizationRequest.model_validate(body, context={"max_bars": None}))


# ---- the whole path -------------------------------------------------------------------------------------


def test_a_grid_with_walk_forward_ends_with_every_combination_once_as_the_in_process_search(
    opt: Optimizations, opt_stack: LocalStack
) -> None:
    # Given a 12-point grid with a condition and a 2-window walk-forward
    body = search(
        conditions=[{"left": "fast", "op": "<", "right": "slow"}],
        validation={"kind": "walk_forward", "windows": 2},
    )
    submitted = opt.submit(body)
    # Then it is queued as chunks, with an absolute status link
    assert submitted.status == 202, submitted.body
    answer = submitted.body
    assert (answer["combinations"], answer["chunks"], answer["status"]) == (12, answer["chunks"], "QUEUED")
    assert answer["chunks"] > 1 and answer["chunk_size"] * answer["chunks"] >= 12
    assert answer["status_url"].startswith("https://") and submitted.headers["Location"] == answer["status_url"]
    optimization_id = answer["optimization_id"]
    queued = opt.get(optimization_id).body
    assert queued["status"] == "QUEUED" and queued["progress"]["combinations_done"] == 0
    assert opt_stack.chunk_queue_depth()["visible"] == answer["chunks"]

    # When the runner drains the chunks queue
    deliveries = opt_stack.drain_queue()
    assert len(deliveries) == answer["chunks"] and all(d.failed_ids == [] for d in deliveries)

    # Then the optimization SUCCEEDED with everything counted once
    done = opt.get(optimization_id).body
    assert done["status"] == "SUCCEEDED", done
    assert done["progress"] == {
        "combinations_done": 12,
        "combinations_total": 12,
        "chunks_done": answer["chunks"],
        "chunks_total": answer["chunks"],
        "chunks_running": 0,
        "chunks_dead_lettered": 0,
        "percent": 100.0,
    }
    record = opt.record(optimization_id)
    assert record.counted == set(range(answer["chunks"])) and record.chunks_done == answer["chunks"]
    table = opt.table(optimization_id)
    assert [c["index"] for c in table["combinations"]] == list(range(12))
    # And it is exactly what the in-process search gives: the table, the ranking, the walk-forward windows
    expected = _engine_result(body)
    assert [c["params"] for c in table["combinations"]] == [o.params for o in expected.combinations]
    assert [c["metrics"] for c in table["combinations"]] == [o.metrics for o in expected.combinations]
    assert done["best"]["params"] == expected.best.params and done["best"]["metrics"] == expected.best.metrics
    assert [t["params"] for t in done["top"]] == [o.params for o in expected.top]
    assert [t["rank"] for t in done["top"]] == list(range(1, len(expected.top) + 1))
    assert done["top"][0]["metrics"]["sharpe_ratio"] == expected.top[0].metrics["sharpe_ratio"]
    assert (done["succeeded"], done["failed"], done["feasible"]) == (12, 0, expected.feasible)
    assert len(done["windows"]) == 2
    for window, want in zip(done["windows"], expected.windows, strict=True):
        assert window["best_params"] == want.best_params
        assert window["in_sample_metrics"] == want.in_sample_metrics
        assert window["out_of_sample_metrics"] == want.out_of_sample_metrics
    assert done["stitched_out_of_sample_metrics"] == expected.stitched_out_of_sample_metrics
    # And the table is behind presigned links (gzip-encoded objects under the optimizations prefix)
    assert done["table_json_url"] and done["table_csv_url"] and done["table_urls_expire_in"] == 900
    keys = opt.results.keys(optimization_id)
    assert keys == sorted(
        [chunk_key(optimization_id, n) for n in range(answer["chunks"])]
        + [f"optimizations/{optimization_id}/combinations.csv", f"optimizations/{optimization_id}/combinations.json"]
    )
    csv_object = opt_stack.client("s3").get_object(
        Bucket=opt_stack.resources.results_bucket, Key=f"optimizations/{optimization_id}/combinations.csv"
    )
    assert csv_object["ContentEncoding"] == "gzip" and csv_object["ContentType"].startswith("text/csv")
    # And the chunks each ran once
    for n in range(answer["chunks"]):
        chunk = opt.chunk(optimization_id, n)
        assert chunk is not None and (chunk.status, chunk.attempts) == ("SUCCEEDED", 1)


def test_duplicate_messages_of_every_chunk_change_nothing(opt: Optimizations, opt_stack: LocalStack) -> None:
    # Given every chunk's message sent twice more (an at-least-once queue, a producer's retry)
    optimization_id = opt.started()
    chunks = opt.record(optimization_id).chunks
    sqs = opt_stack.client("sqs")
    for _ in range(2):
        for n in range(chunks):
            sqs.send_message(
                QueueUrl=opt_stack.resources.optimization_queue_url,
                MessageBody=ChunkMessage(optimization_id, n).encode(),
            )
    # When the runner drains them all (some duplicates arrive after the optimization SUCCEEDED)
    deliveries = opt_stack.drain_queue()
    assert len(deliveries) == 3 * chunks and all(d.failed_ids == [] for d in deliveries)
    # Then each chunk ran once and was counted once; every combination is in the table once
    record = opt.record(optimization_id)
    assert (record.status, record.chunks_done, record.combinations_done) == ("SUCCEEDED", chunks, 12)
    assert all(opt.chunk(optimization_id, n).attempts == 1 for n in range(chunks))  # type: ignore[union-attr]
    assert [c["index"] for c in opt.table(optimization_id)["combinations"]] == list(range(12))


def test_a_constraint_excludes_what_it_should(opt: Optimizations, opt_stack: LocalStack) -> None:
    # Given a constraint most combinations fail (few trades over the quarter)
    body = search(constraints=[{"metric": "total_trades", "op": ">=", "value": 8}])
    optimization_id = opt.started(body)
    opt_stack.drain_queue()
    done = opt.get(optimization_id).body
    table = opt.table(optimization_id)["combinations"]
    meets = [c for c in table if c["metrics"]["total_trades"] >= 8 and c["metrics"]["sharpe_ratio"] is not None]
    # Then exactly those are feasible and ranked, and the others are in the table, marked infeasible
    assert 0 < len(meets) < 12
    assert {c["index"] for c in table if c["feasible"]} == {c["index"] for c in meets}
    assert done["feasible"] == len(meets)
    assert all(t["metrics"]["total_trades"] >= 8 for t in done["top"])
    assert {t["index"] for t in done["top"]} <= {c["index"] for c in meets}
    assert "total_trades" in done["top"][0]["metrics"]  # the constraint's metric is shown


def test_a_seeded_random_search_is_reproducible(opt: Optimizations, opt_stack: LocalStack) -> None:
    wide = {"fast": {"min": 2, "max": 20, "step": 1}, "slow": {"min": 20, "max": 60, "step": 5}}
    body = search(parameters=wide, method="random", samples=7, seed=42)
    first, second = opt.started(body), opt.started(body)
    other = opt.started({**body, "seed": 43})
    opt_stack.drain_queue()
    tables = [opt.table(i)["combinations"] for i in (first, second, other)]
    assert [c["params"] for c in tables[0]] == [c["params"] for c in tables[1]]
    assert [c["metrics"] for c in tables[0]] == [c["metrics"] for c in tables[1]]
    assert [c["params"] for c in tables[0]] != [c["params"] for c in tables[2]]
    assert len(tables[0]) == 7 and len({json.dumps(c["params"]) for c in tables[0]}) == 7
    assert opt.get(first).body["top"] == opt.get(second).body["top"]


def test_a_strategy_failing_for_some_combinations_fails_only_those(opt: Optimizations, opt_stack: LocalStack) -> None:
    code = SMA_CROSS.replace(
        "    fast = talib",
        "    if params.get('fast') == 6:\n        raise ValueError('six is unlucky')\n    fast = talib",
    )
    optimization_id = opt.started(search(strategy_code=code))
    opt_stack.drain_queue()
    done = opt.get(optimization_id).body
    assert done["status"] == "SUCCEEDED"
    assert (done["succeeded"], done["failed"]) == (9, 3)
    assert [e["params"]["fast"] for e in done["failed_examples"]] == [6, 6, 6]
    assert done["failed_examples"][0]["error"]["type"] == "StrategyError"
    assert "six is unlucky" in done["failed_examples"][0]["error"]["message"]
    failed = [c for c in opt.table(optimization_id)["combinations"] if c["status"] == "failed"]
    assert len(failed) == 3 and all(c["error"]["line"] == 7 for c in failed)


# ---- checks a form can use, the cap, estimate --------------------------------------------------------------


def test_bad_fields_give_one_entry_each_and_nothing_is_stored(opt: Optimizations, opt_stack: LocalStack) -> None:
    before = _items(opt_stack)
    res = opt.submit(search(commission=5, timeframe="2m", target="sharpness", top_k=0))
    assert res.status == 422, res.body
    assert sorted(e["field"] for e in res.body["errors"]) == ["commission", "target", "timeframe", "top_k"]
    assert _items(opt_stack) == before


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        # 100 × 101 = 10,100 combinations: over the cap
        ({"parameters": {"a": {"min": 1, "max": 100}, "b": {"min": 0, "max": 100}}}, "parameters", "at most 10,000"),
        ({"conditions": [{"left": "fast", "op": "<", "right": "medium"}]}, None, "unknown parameter"),
        ({"constraints": [{"metric": "luck", "op": ">", "value": 1}]}, "constraints.0.metric", "unknown metric"),
        ({"validation": {"kind": "walk_forward", "windows": 20}}, "validation", "each part needs at least"),
        ({"conditions": [{"left": "fast", "op": ">", "right": 100}]}, "conditions", "no combination satisfies"),
        ({"method": "random"}, None, "needs samples"),
        ({"parameters": {"fast": {"values": [5, "ten"]}, "slow": 30}}, "parameters.fast", "'ten'"),
    ],
    ids=["cap", "condition", "constraint", "folds", "empty", "samples", "declared-type"],
)
def test_a_search_that_cannot_run_is_422_naming_the_field(
    opt: Optimizations, opt_stack: LocalStack, fields: dict[str, Any], field: str | None, words: str
) -> None:
    res = opt.submit(search(**fields))
    assert res.status == 422, res.body
    assert words in res.error["message"]
    if field is not None:
        assert res.error["field"] == field
    assert opt_stack.chunk_queue_depth()["visible"] == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"method": "random", "samples": "3"}, "samples"),
        ({"method": "random", "samples": 3, "seed": True}, "seed"),
        ({"top_k": "5"}, "top_k"),
        ({"validation": {"kind": "walk_forward", "anchored": "yes"}}, "validation.anchored"),
        ({"validation": {"kind": "walk_forward", "windows": 2.0}}, "validation.windows"),
        ({"validation": {"kind": "holdout", "out_of_sample_fraction": "0.2"}}, "validation.out_of_sample_fraction"),
        ({"parameters": {"fast": {"min": "5", "max": 20, "step": 5}, "slow": 30}}, "parameters.fast"),
        ({"parameters": {"fast": {"min": 5, "max": 20, "step": True}, "slow": 30}}, "parameters.fast"),
    ],
    ids=[
        "samples-text",
        "seed-bool",
        "top-k-text",
        "anchored-text",
        "windows-float",
        "fraction-text",
        "min-text",
        "step-bool",
    ],
)
def test_a_search_field_of_the_wrong_json_type_is_422_not_coerced(
    opt: Optimizations, fields: dict[str, Any], field: str
) -> None:
    """A form that sends "3" for a number or true for 1 gets told, instead of a silently different search."""
    res = opt.submit(search(**fields))
    assert res.status == 422, res.body
    assert any(e["field"].startswith(field) for e in res.body["errors"]), res.body


def test_code_that_does_not_compile_is_400_with_its_line(opt: Optimizations) -> None:
    res = opt.submit(search(strategy_code="def generate_signals(data, params):\n    return open('x')\n"))
    assert res.status == 400 and res.error["line"] == 2


def test_estimate_answers_the_plan_and_stores_nothing(opt: Optimizations, opt_stack: LocalStack) -> None:
    before = _items(opt_stack)
    res = opt.estimate(search(validation={"kind": "holdout", "out_of_sample_fraction": 0.2}))
    assert res.status == 200, res.body
    plan = res.body
    assert (plan["combinations"], plan["grid_points"], plan["bars"], plan["sweeps"]) == (12, 12, 455, 2)
    assert plan["style"] == "vectorized" and plan["chunks"] * plan["chunk_size"] >= 12
    assert plan["estimated_seconds"] > 0 and 0 < plan["lambda_seconds"] < plan["lambda_gb_seconds"]
    assert plan["max_concurrency"] == 4
    # Nothing was stored or queued
    assert _items(opt_stack) == before
    depth = opt_stack.chunk_queue_depth()
    assert depth["visible"] + depth["in_flight"] == 0
    # The same checks as submit
    assert opt.estimate(search(top_k=500)).status == 422


def test_an_idempotency_key_makes_a_retried_submit_answer_the_first_optimization(
    opt: Optimizations, opt_stack: LocalStack
) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    first = opt.submit(search(name="once"), headers=headers)
    again = opt.submit(search(name="once"), headers=headers)
    assert first.status == again.status == 202
    assert again.body["optimization_id"] == first.body["optimization_id"]
    assert opt_stack.chunk_queue_depth()["visible"] == first.body["chunks"]  # queued once
    assert opt.submit(search(name="twice"), headers=headers).status == 422  # the same key, another body
    opt_stack.drain_queue()


# ---- owners and the list -----------------------------------------------------------------------------------


def test_only_the_owner_sees_or_cancels_it(opt: Optimizations, opt_stack: LocalStack) -> None:
    optimization_id = opt.started()
    assert opt.get(optimization_id, user="bob").status == 404
    assert opt.get(optimization_id, user="bob").error["type"] == "NotFound"
    assert opt.cancel(optimization_id, user="bob").status == 404
    assert opt.list(user="bob").body["optimizations"] == []
    assert opt.get("not-an-id-at-all!").status == 404
    assert opt.get(optimization_id).status == 200
    assert opt.record(optimization_id).status == "QUEUED"  # bob's cancel did nothing
    opt_stack.drain_queue()


def test_the_list_is_newest_first_and_paginated(opt: Optimizations, opt_stack: LocalStack) -> None:
    ids = [opt.started(search(name=f"run {i}"), user="carol") for i in range(3)]
    opt_stack.drain_queue()
    page = opt.list(user="carol", limit="2").body
    assert [o["optimization_id"] for o in page["optimizations"]] == ids[::-1][:2]
    rest = opt.list(user="carol", limit="2", next_token=page["next_token"]).body
    assert [o["optimization_id"] for o in rest["optimizations"]] == ids[:1] and rest.get("next_token") is None
    line = rest["optimizations"][0]
    assert (line["status"], line["combinations_done"], line["name"]) == ("SUCCEEDED", 12, "run 0")
    assert line["best"]["params"] and line["status_url"].endswith(ids[0])
    assert opt.list(user="carol", status="CANCELLED").body["optimizations"] == []
    assert opt.list(user="carol", next_token="garbage").status == 400


# ---- cancel -----------------------------------------------------------------------------------------------


def test_cancel_stops_outstanding_chunks(opt: Optimizations, opt_stack: LocalStack) -> None:
    # Given a 4-chunk optimization whose first chunk ran
    optimization_id = opt.started()
    chunks = opt.record(optimization_id).chunks
    assert chunks == 4
    assert opt_stack.optimization_source.poll() is not None
    running = opt.get(optimization_id).body
    assert running["status"] == "RUNNING" and running["progress"]["chunks_done"] == 1
    best_so_far = running["best"]
    # When its owner cancels it
    cancelled = opt.cancel(optimization_id).body
    assert cancelled["status"] == "CANCELLED" and cancelled["error"]["type"] == "Cancelled"
    assert opt.cancel(optimization_id).body["status"] == "CANCELLED"  # idempotent
    # Then the remaining chunks never run: their messages are consumed, their items say CANCELLED, nothing stored
    assert len(opt_stack.drain_queue()) == chunks - 1
    done = [n for n in range(chunks) if opt.chunk(optimization_id, n).status == "SUCCEEDED"]  # type: ignore[union-attr]
    assert len(done) == 1
    assert {opt.chunk(optimization_id, n).status for n in range(chunks) if n not in done} == {"CANCELLED"}  # type: ignore[union-attr]
    assert opt.results.keys(optimization_id) == [chunk_key(optimization_id, done[0])]
    final = opt.get(optimization_id).body
    assert final["status"] == "CANCELLED" and final["progress"]["chunks_done"] == 1
    assert final["best"] == best_so_far and final["table_json_url"] is None


def test_a_running_chunk_stops_within_a_second_or_two_of_the_cancel(opt: Optimizations, opt_stack: LocalStack) -> None:
    # Given one chunk of slow combinations running in the background
    body = {
        "strategy_code": SLOW,
        **SLOW_RUN,
        "parameters": {"steps": {"values": [60000, 60001, 60002, 60003]}},
        "target": "total_return_percent",
    }
    optimization_id = opt.started(body)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            opt_stack.optimization_source.poll()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=deliver, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while opt.get(optimization_id).body["progress"]["chunks_running"] == 0:
        assert time.monotonic() < deadline, "the chunk never started"
        time.sleep(0.05)
    # When the owner cancels
    cancelled_at = time.monotonic()
    assert opt.cancel(optimization_id).body["status"] == "CANCELLED"
    thread.join(60)
    # Then the chunk stopped soon after (the sandbox child was killed), storing nothing
    assert not thread.is_alive() and not errors
    assert time.monotonic() - cancelled_at < 5
    (stopped,) = opt.store.chunks(optimization_id)
    assert stopped.status == "CANCELLED"
    assert opt.results.keys(optimization_id) == []
    # And the other chunks never run
    opt_stack.drain_queue()
    assert {c.status for c in opt.store.chunks(optimization_id)} == {"CANCELLED"}
    assert opt.results.keys(optimization_id) == []


# ---- a chunk that runs out of time -------------------------------------------------------------------------


def test_a_chunk_out_of_time_checkpoints_and_continues_to_the_same_result(
    opt: Optimizations, opt_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a runner whose chunks may work only 0.05 s an invocation (so each stops after its first backtest),
    # and slow combinations
    real = optimization_runner.default_deps()
    monkeypatch.setattr(optimization_runner, "default_deps", lambda: _with_budget(real, 0.05))
    body = {
        "strategy_code": SLOW,
        **SLOW_RUN,
        "end_date": "2024-01-10",
        "parameters": {"steps": {"values": [3000, 3001, 3002]}},
        "target": "total_return_percent",
        "validation": {"kind": "holdout", "out_of_sample_fraction": 0.25},
    }
    optimization_id = opt.started(body)
    # When it runs: an invocation past its budget checkpoints and queues its chunk again
    deliveries = opt_stack.drain_queue()
    chunks = opt.store.chunks(optimization_id)
    assert {c.status for c in chunks} == {"SUCCEEDED"} and len(chunks) == opt.record(optimization_id).chunks
    assert len(deliveries) == sum(c.attempts for c in chunks)
    assert max(c.attempts for c in chunks) > 1, "no chunk continued"
    # Then the result is whole, once each, and the in-process search's
    table = opt.table(optimization_id)["combinations"]
    expected = _engine_result(body)
    assert [c["params"] for c in table] == [o.params for o in expected.combinations]
    assert [c["metrics"] for c in table] == [o.metrics for o in expected.combinations]
    done = opt.get(optimization_id).body
    assert done["status"] == "SUCCEEDED" and done["windows"][0]["best_params"] == expected.windows[0].best_params


def _with_budget(deps: optimization_runner.ChunkDeps, seconds: float) -> optimization_runner.ChunkDeps:
    import dataclasses

    return dataclasses.replace(deps, budget_seconds=seconds)


def test_the_routes_answer_under_the_api_prefix_only(opt: Optimizations) -> None:
    assert opt.stack.invoke_api("GET", "/api/backtest/optimizations/estimate").status == 404  # an id, unknown
    assert opt.stack.invoke_api("DELETE", f"/api/backtest/optimizations/{'x' * 8}").status in (403, 404, 405)
    assert RUN["symbol"] == "AAPL" and GRID  # the shared search the module uses


def test_an_optimization_on_a_dataset_is_refused_naming_the_field(stack: Any) -> None:
    from tests.support import Api

    body = {
        "strategy_code": "def generate_signals(data, params):\n    return [0.0] * len(data)\n",
        "dataset_id": "0",
        "parameters": {"fast": {"values": [1, 2]}},
    }
    res = Api(stack).call("POST", "/api/backtest/optimizations", body=body)
    assert res.status == 422, res.body
    assert res.error["field"] == "dataset_id"


def test_a_refused_chunks_queue_is_503_and_leaves_the_optimization_failed_not_queued(
    opt: Optimizations, inject_fault: Any
) -> None:
    # Given SQS refuses the chunk messages
    with inject_fault("sqs", "SendMessageBatch") as calls:
        res = opt.submit()
    assert calls
    # Then 503 naming the queue, to retry
    assert res.status == 503, res.body
    assert res.error["type"] == "QueueUnavailable"
    assert "optimization was not started" in res.error["message"]
    # And the optimization it recorded is FAILED, not QUEUED until its TTL
    newest = opt.list().body["optimizations"][0]  # newest first
    assert newest["status"] == "FAILED"
    assert opt.get(newest["optimization_id"]).body["error"]["type"] == "QueueUnavailable"
