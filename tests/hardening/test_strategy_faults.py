"""Strategies that misbehave at run time, through the engine and through the runner on moto.

Each fault ends with its typed error inside the sandbox's limits (small ones here: 2 s of CPU, 128 MB;
settings STRATEGY_CPU_SECONDS / STRATEGY_MEMORY_MB), the job ends FAILED with that error and is not
retried (no batchItemFailures, one attempt, nothing left on the queues, no result object), and the same
warm runner then runs a good job to SUCCEEDED.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from backtest_engine.engine import run_backtest
from backtest_engine.errors import EngineError
from backtest_engine.market_data import load_bars
from backtest_engine.models import BacktestRequest
from backtest_engine.sandbox import SandboxLimits
from backtest_service.topology import RESULTS_PREFIX
from local.lambda_runtime import clear_service_caches
from local.stack import LocalStack
from tests.support import SMA_CROSS, Api, in_jobs_queue

pytestmark = pytest.mark.xdist_group("hardening-strategy")

CPU_SECONDS = 2
MEMORY_MB = 128
LIMITS = SandboxLimits(cpu_seconds=CPU_SECONDS, wall_seconds=2 * CPU_SECONDS, memory_mb=MEMORY_MB)
RUN: dict[str, Any] = {"symbol": "AAPL", "timeframe": "1d", "start_date": "2024-01-01", "end_date": "2024-01-31"}
BARS = len(load_bars("AAPL", "1d", date(2024, 1, 1), date(2024, 1, 31)))


@dataclasses.dataclass(frozen=True)
class Fault:
    id: str
    code: str
    error: str  # the error type the job reports
    says: tuple[str, ...]
    line: int | None = None
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)


def vectorized(body: str) -> str:
    lines = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
    return f"import numpy as np\n\n\ndef generate_signals(data, params):\n{lines}\n"


def event(body: str) -> str:
    lines = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
    return f"def on_bar(ctx, bar):\n{lines}\n"


FAULTS = [
    # ---- resources -------------------------------------------------------------------------------
    Fault(
        "infinite_loop",
        vectorized("x = 0\nwhile True:\n    x += 1"),
        "StrategyTimeout",
        ("limit of", "was stopped"),  # CPU time or, on a busy machine, wall clock
    ),
    Fault(
        "infinite_loop_in_on_bar",
        event("while ctx.i >= 0:\n    pass"),
        "StrategyTimeout",
        ("limit",),
    ),
    Fault(
        "deep_recursion",
        "def dive(n):\n    return dive(n + 1)\n\n\ndef generate_signals(data, params):\n    return dive(0)\n",
        "StrategyError",
        ("line 2", "RecursionError", "recursed too deeply"),
        line=2,
    ),
    Fault(
        "memory_bomb_list",
        vectorized("hoard = []\nwhile True:\n    hoard.append('x' * 1_000_000)"),
        "StrategyMemoryError",
        ("ran out of memory",),
        line=7,
    ),
    Fault(
        "memory_bomb_numpy",
        vectorized("big = np.ones(4_000_000_000)\nreturn big[: len(data)]"),
        "StrategyMemoryError",
        ("ran out of memory",),
        line=5,
    ),
    Fault(
        "print_flood",
        vectorized("for i in range(1_000_000):\n    print('tick', i)\nreturn np.zeros(len(data))"),
        "StrategyOutputLimit",
        ("printed more than 2000 lines",),
    ),
    Fault(
        "log_flood_of_long_lines",
        event("for _ in range(100):\n    ctx.log('y' * 10_000)"),
        "StrategyOutputLimit",
        ("printed more than 262144 bytes",),
    ),
    # ---- exceptions ------------------------------------------------------------------------------
    Fault(
        "exception_on_the_first_bar",
        event("if ctx.i == 0:\n    raise ValueError('no data yet')"),
        "StrategyError",
        ("line 3", "ValueError: no data yet"),
        line=3,
    ),
    Fault(
        "exception_on_the_last_bar",
        event("if ctx.i == params_last(ctx):\n    raise RuntimeError(f'last bar {ctx.i}')")
        + "\n\ndef params_last(ctx):\n    return ctx.params['last']\n",
        "StrategyError",
        ("line 3", f"RuntimeError: last bar {BARS - 1}"),
        line=3,
        parameters={"last": BARS - 1},
    ),
    Fault(
        "exception_in_initialize",
        "def initialize(ctx):\n    ctx.state['x'] = 1 / 0\n\n\n" + event("pass"),
        "StrategyError",
        ("line 2", "ZeroDivisionError"),
        line=2,
    ),
    Fault(
        "missing_parameter",
        vectorized("return np.full(len(data), params['threshold'])"),
        "StrategyError",
        ("line 5", "KeyError", "threshold"),
        line=5,
    ),
    Fault(
        "system_exit",
        vectorized("raise SystemExit(0)"),
        "StrategyError",
        ("line 5", "SystemExit"),
        line=5,
    ),
    Fault(
        "keyboard_interrupt",
        vectorized("raise KeyboardInterrupt()"),
        "StrategyError",
        ("line 5", "KeyboardInterrupt"),
        line=5,
    ),
    Fault(
        "exposure_out_of_range_in_on_bar",
        event("ctx.target(5)"),
        "StrategyError",
        ("line 2", "target exposure must lie in [-1, 1]"),
        line=2,
    ),
    # ---- signals ---------------------------------------------------------------------------------
    Fault(
        "infinite_signal",
        vectorized("s = np.zeros(len(data))\ns[3] = np.inf\nreturn s"),
        "InvalidSignals",
        ("signal inf at bar 3 is out of range", "[-1, 1]"),
    ),
    Fault(
        "negative_infinite_signal",
        vectorized("return np.full(len(data), -np.inf)"),
        "InvalidSignals",
        ("signal -inf at bar 0 is out of range",),
    ),
    Fault(
        "signal_out_of_range",
        vectorized("s = np.zeros(len(data))\ns[-1] = 2.5\nreturn s"),
        "InvalidSignals",
        (f"signal 2.5 at bar {BARS - 1} is out of range",),
    ),
    Fault(
        "too_few_signals",
        vectorized("return np.zeros(len(data) - 1)"),
        "InvalidSignals",
        (f"returned {BARS - 1} values for {BARS} bars",),
    ),
    Fault(
        "too_many_signals",
        vectorized("return np.zeros(len(data) * 2)"),
        "InvalidSignals",
        (f"returned {2 * BARS} values for {BARS} bars",),
    ),
    Fault(
        "no_signals_returned",
        vectorized("x = 1"),
        "InvalidSignals",
        ("expected a 1-D series",),
    ),
    Fault(
        "text_signals",
        vectorized("return ['buy'] * len(data)"),
        "InvalidSignals",
        ("must return numbers",),
    ),
    Fault(
        "two_dimensional_signals",
        vectorized("return np.zeros((len(data), 2))"),
        "InvalidSignals",
        ("expected a 1-D series",),
    ),
    Fault(
        "dataframe_signals",
        vectorized("return data"),
        "InvalidSignals",
        ("returned a DataFrame",),
    ),
    Fault(
        "signals_that_read_the_future",
        vectorized("return np.sign(data.close.shift(-1) - data.close).fillna(0).values"),
        "LookAheadError",
        ("reads future bars",),
    ),
]

# NaN is not a fault: it keeps the previous target (DESIGN.md), so all-NaN is a run that never trades.
ALL_NAN = vectorized("return np.full(len(data), np.nan)")
GOOD = {"strategy_code": SMA_CROSS, **RUN, "parameters": {"fast": 3, "slow": 8}}


# ---- the engine --------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_the_engine_raises_the_typed_error_inside_the_limits(fault: Fault) -> None:
    request = BacktestRequest(strategy_code=fault.code, parameters=fault.parameters, **RUN)
    with pytest.raises(EngineError) as raised:
        run_backtest(request, limits=LIMITS)
    assert raised.value.code == fault.error, raised.value.to_dict()
    for fragment in fault.says:
        assert fragment in raised.value.message, raised.value.message
    if fault.line is not None:
        assert raised.value.line == fault.line


def test_all_nan_signals_are_a_run_without_trades() -> None:
    result = run_backtest(BacktestRequest(strategy_code=ALL_NAN, **RUN), limits=LIMITS)
    assert result.trade_summary.total_trades == 0
    assert result.performance_metrics["total_return_percent"] == 0


# ---- the runner ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_stack(module_stack: LocalStack) -> Iterator[LocalStack]:
    """The shared deployment, its runner configured with the small limits."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STRATEGY_CPU_SECONDS", str(CPU_SECONDS))
        env.setenv("STRATEGY_MEMORY_MB", str(MEMORY_MB))
        clear_service_caches()
        from backtest_service import runner

        assert runner.default_deps().settings.strategy_cpu_seconds == CPU_SECONDS
        assert runner.default_deps().settings.strategy_memory_mb == MEMORY_MB
        yield module_stack
    clear_service_caches()


def _submit_and_run(stack: LocalStack, body: dict[str, Any]) -> tuple[str, Any]:
    response = Api(stack).call("POST", "/api/backtest/run", body=body)
    assert response.status == 202, response.body
    execution_id = response.body["execution_id"]
    run = stack.poll_queue()
    assert run is not None and run.event["Records"][0]["body"].find(execution_id) > 0
    return execution_id, run


def _assert_queues_empty(stack: LocalStack) -> None:
    assert in_jobs_queue(stack) == 0
    assert stack.queue_depth()["dlq"] == 0


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_a_faulty_strategy_fails_once_with_its_typed_error_and_the_runner_serves_the_next_job(
    limited_stack: LocalStack, fault: Fault
) -> None:
    stack = limited_stack
    # When the faulty strategy is submitted and the runner receives it
    execution_id, run = _submit_and_run(stack, {"strategy_code": fault.code, **RUN, "parameters": fault.parameters})

    # Then the record is not reported failed: SQS neither retries it nor moves it to the DLQ
    assert run.failed_ids == []
    _assert_queues_empty(stack)
    # And the job is FAILED with the typed error, after one attempt, without a result object
    status = Api(stack).status(execution_id).body
    assert (status["status"], status["attempts"]) == ("FAILED", 1), status
    assert status["error"]["type"] == fault.error
    for fragment in fault.says:
        assert fragment in status["error"]["message"], status["error"]
    if fault.line is not None:
        assert status["error"]["line"] == fault.line
    assert status["results_url"] is None
    assert f"{RESULTS_PREFIX}{execution_id}.json" not in stack.result_keys()
    job = stack.job(execution_id)
    assert job is not None and job["dead_lettered"] is False

    # When a good strategy comes next to the same warm runner
    good_id, good_run = _submit_and_run(stack, GOOD)
    # Then it succeeds
    assert good_run.failed_ids == []
    good = Api(stack).status(good_id).body
    assert (good["status"], good["attempts"], good["error"]) == ("SUCCEEDED", 1, None), good
    assert good["market_data_stats"]["data_points"] == BARS
    _assert_queues_empty(stack)


def test_all_nan_signals_succeed_without_trades_through_the_runner(limited_stack: LocalStack) -> None:
    execution_id, run = _submit_and_run(limited_stack, {"strategy_code": ALL_NAN, **RUN})
    assert run.failed_ids == []
    status = Api(limited_stack).status(execution_id).body
    assert status["status"] == "SUCCEEDED", status
    assert status["trade_summary"]["total_trades"] == 0
    assert math.isclose(status["performance_metrics"]["total_return_percent"], 0.0, abs_tol=1e-12)
