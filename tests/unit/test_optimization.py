"""Parameter optimization in the engine: spaces, random draws, caps, constraints, ranking, walk-forward folds,
and the batch evaluator (many combinations in one sandbox child) against single `run_backtest` runs."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from backtest_engine.engine import run_backtest
from backtest_engine.errors import UserInputError
from backtest_engine.market_data import load_bars
from backtest_engine.metric_definitions import METRIC_KEYS
from backtest_engine.optimization import ranking, space, walk_forward
from backtest_engine.optimization.evaluate import evaluate
from backtest_engine.optimization.models import (
    MAX_COMBINATIONS,
    CombinationOutcome,
    OptimizationRequest,
    Validation,
)
from backtest_engine.optimization.search import run_optimization
from backtest_engine.sandbox import SandboxLimits

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SMA = (EXAMPLES / "sma_crossover_vectorized.py").read_text()
SMA_EVENT = (EXAMPLES / "sma_crossover_event.py").read_text()
RUN = {"symbol": "AAPL", "timeframe": "1h", "start_date": "2024-01-01", "end_date": "2024-06-30"}


def opt(**fields: Any) -> OptimizationRequest:
    body = {
        "strategy_code": SMA,
        **RUN,
        "parameters": {"fast": {"min": 5, "max": 20, "step": 5}, "slow": {"values": [30, 60]}},
    }
    return OptimizationRequest.model_validate({**body, **fields})


# ---- spaces ----------------------------------------------------------------------------------------


def test_grid_is_the_product_in_request_order_without_what_breaks_a_condition():
    # Given the reference sweep's space: fast 5..50 step 5 × slow 20..200 step 20 with fast < slow
    request = opt(
        parameters={"fast": {"min": 5, "max": 50, "step": 5}, "slow": {"min": 20, "max": 200, "step": 20}, "mode": "x"},
        conditions=[{"left": "fast", "op": "<", "right": "slow"}],
    )
    # When it is expanded
    combos = space.combinations(request)
    # Then 90 combinations, first parameter slowest, fixed parameters not searched
    assert len(combos) == 90
    assert combos[0] == {"fast": 5, "slow": 20} and combos[1] == {"fast": 5, "slow": 40}
    assert all(c["fast"] < c["slow"] for c in combos)
    assert request.fixed == {"mode": "x"}


def test_ranges_of_floats_do_not_drift_and_values_keep_their_types():
    request = opt(parameters={"x": {"min": 0.1, "max": 0.5, "step": 0.1}, "flag": {"values": [True, False, "a"]}})
    assert request.spaces["x"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert request.spaces["flag"] == [True, False, "a"]


def test_random_draws_are_reproducible_distinct_and_within_the_grid():
    base = {"parameters": {"a": {"min": 1, "max": 100}, "b": {"min": 1, "max": 100}}, "method": "random", "samples": 50}
    first = space.combinations(opt(**base, seed=7))
    again = space.combinations(opt(**base, seed=7))
    other = space.combinations(opt(**base, seed=8))
    assert first == again
    assert first != other
    assert len({tuple(c.values()) for c in first}) == 50
    assert all(1 <= c["a"] <= 100 and 1 <= c["b"] <= 100 for c in first)


def test_random_with_conditions_draws_only_allowed_points():
    request = opt(
        parameters={"a": {"min": 1, "max": 30}, "b": {"min": 1, "max": 30}},
        conditions=[{"left": "a", "op": "<", "right": "b"}],
        method="random",
        samples=40,
        seed=3,
    )
    combos = space.combinations(request)
    assert len(combos) == 40 and all(c["a"] < c["b"] for c in combos)


def test_random_over_a_huge_grid_does_not_enumerate_it():
    request = opt(
        parameters={f"p{k}": {"min": 1, "max": 1000} for k in range(6)}, method="random", samples=20, seed=1
    )  # 10^18 points
    assert len(space.combinations(request)) == 20


def test_more_combinations_than_the_cap_are_refused_with_what_to_do():
    request = opt(parameters={"a": {"min": 1, "max": 200}, "b": {"min": 1, "max": 200}})  # 40,000
    with pytest.raises(space.TooManyCombinations, match=f"at most {MAX_COMBINATIONS:,}"):
        space.combinations(request)


def test_request_validation_names_what_is_wrong():
    with pytest.raises(ValidationError, match="unknown metric"):
        opt(target="sharpe")
    with pytest.raises(ValidationError, match="needs samples"):
        opt(method="random")
    with pytest.raises(ValidationError, match="unknown parameter"):
        opt(conditions=[{"left": "fast", "op": "<", "right": "slowest"}])
    with pytest.raises(ValidationError, match="below min"):
        opt(parameters={"a": {"min": 5, "max": 1}})
    with pytest.raises(ValidationError, match="no better direction"):
        opt(target="total_trades")
    assert opt(target="max_drawdown_percent").direction == "max"  # higher (less negative) is better
    assert opt(target="volatility_percent").direction == "min"


# ---- constraints and ranking -------------------------------------------------------------------------


CONSTRAINTS = [
    {"metric": "total_trades", "op": ">=", "value": 10},
    {"metric": "max_drawdown_percent", "op": ">", "value": -25},
]


def outcome(index: int, sharpe: float | None, trades: int, dd: float = -10.0) -> CombinationOutcome:
    request = opt(
        constraints=[
            {"metric": "total_trades", "op": ">=", "value": 10},
            {"metric": "max_drawdown_percent", "op": ">", "value": -25},
        ]
    )
    metrics = {"sharpe_ratio": sharpe, "total_trades": trades, "max_drawdown_percent": dd}
    return ranking.outcome(index, {"i": index}, metrics, None, request)


def test_constraints_exclude_and_null_metrics_never_rank():
    request = opt(
        constraints=[
            {"metric": "total_trades", "op": ">=", "value": 10},
            {"metric": "max_drawdown_percent", "op": ">", "value": -25},
        ]
    )
    outcomes = [
        outcome(0, 1.0, 50),
        outcome(1, 3.0, 5),  # too few trades
        outcome(2, 2.0, 50, dd=-40.0),  # drawdown too deep
        outcome(3, None, 50),  # target undefined
        outcome(4, 1.5, 10),
        ranking.outcome(5, {}, None, {"type": "StrategyError", "message": "x"}, request),
    ]
    best = ranking.ranked(outcomes, request)
    assert [o.index for o in best] == [4, 0]
    assert not outcomes[5].feasible and outcomes[5].status == "failed"


def test_ranking_follows_direction_and_breaks_ties_by_index():
    request = opt(target="volatility_percent")  # min
    outcomes = [
        ranking.outcome(i, {}, {"volatility_percent": v}, None, request) for i, v in enumerate([3.0, 1.0, 2.0, 1.0])
    ]
    assert [o.index for o in ranking.ranked(outcomes, request)] == [1, 3, 2, 0]
    request = opt(target="volatility_percent", direction="max")
    assert [o.index for o in ranking.ranked(outcomes, request)] == [0, 2, 1, 3]


# ---- walk-forward ------------------------------------------------------------------------------------


def test_walk_forward_folds_step_by_their_out_of_sample_part_and_tile_the_end():
    folds = walk_forward.folds(1000, Validation(windows=4, out_of_sample_fraction=0.25))
    oos = folds[0].out_of_sample[1] - folds[0].out_of_sample[0]
    assert oos == 1000 * 0.25 // (0.75 + 4 * 0.25)
    for a, b in itertools.pairwise(folds):
        assert b.out_of_sample[0] == a.out_of_sample[1]  # no gap, no overlap
        assert b.in_sample[0] == a.in_sample[0] + oos  # rolling
        assert a.in_sample[1] == a.out_of_sample[0]  # out of sample follows in sample
    assert folds[-1].out_of_sample[1] == 1000
    anchored = walk_forward.folds(1000, Validation(windows=4, anchored=True))
    assert all(f.in_sample[0] == 0 for f in anchored)
    (holdout,) = walk_forward.folds(1000, Validation(kind="holdout", out_of_sample_fraction=0.2))
    assert holdout.in_sample == (0, 800) and holdout.out_of_sample == (800, 1000)


def test_too_many_windows_for_the_bars_is_a_user_error():
    with pytest.raises(UserInputError, match="fewer windows"):
        walk_forward.folds(100, Validation(windows=20))


def test_walk_forward_reports_in_and_out_of_sample_per_window_and_stitched():
    # Given a small grid over two years of hourly bars, 3 walk-forward windows
    request = opt(
        start_date="2023-01-01",
        end_date="2024-12-31",
        validation={"kind": "walk_forward", "windows": 3},
        constraints=[{"metric": "total_trades", "op": ">=", "value": 1}],
    )
    # When it runs
    result = run_optimization(request)
    # Then each window has a winner from its own in-sample sweep, run on the part after it
    assert result.windows is not None and len(result.windows) == 3
    for w in result.windows:
        assert w.best_params is not None and w.in_sample_metrics and w.out_of_sample_metrics
        assert w.out_of_sample["start"] > w.in_sample["end"]
    bars = load_bars("AAPL", "1h", date(2023, 1, 1), date(2024, 12, 31))
    first = result.windows[0]
    (fold0, *_) = walk_forward.folds(len(bars), request.validation)
    # the out-of-sample metrics are exactly a single run of the winner on those bars
    single = run_backtest(request.backtest_request(first.best_params), bars=bars.slice(*fold0.out_of_sample))
    assert single.performance_metrics == first.out_of_sample_metrics
    stitched = result.stitched_out_of_sample_metrics
    assert stitched is not None
    chained = np.prod([1 + w.out_of_sample_metrics["total_return_percent"] / 100 for w in result.windows])
    assert stitched["total_return_percent"] == pytest.approx((chained - 1) * 100, rel=1e-9)
    assert stitched["total_trades"] == sum(w.out_of_sample_metrics["total_trades"] for w in result.windows)


# ---- the batch evaluator -----------------------------------------------------------------------------


def test_every_combination_matches_a_single_run_of_the_same_parameters():
    # Given the SMA crossover in both styles and a few parameter sets
    bars = load_bars("AAPL", "1h", date(2024, 1, 1), date(2024, 6, 30))
    sets = [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 30}, {"fast": 20, "slow": 60}, {"fast": 3, "slow": 7}]
    for code in (SMA, SMA_EVENT):
        request = opt(strategy_code=code).backtest_request()
        # When they are evaluated in one batch
        items = list(evaluate(request, sets, bars=bars))
        # Then every metric of every combination equals run_backtest's
        assert [i.index for i in items] == [0, 1, 2, 3]
        for item in items:
            single = run_backtest(request.model_copy(update={"parameters": item.params}), bars=bars)
            assert item.metrics == single.performance_metrics
            assert list(item.metrics) == list(METRIC_KEYS)


FAILS_SOMETIMES = """
def generate_signals(data, params):
    if params["mode"] == "raise":
        raise ValueError("bad mode")
    if params["mode"] == "range":
        return np.full(len(data), 5.0)
    if params["mode"] == "spin":
        while True:
            pass
    if params["mode"] == "peek":
        return (data.close.shift(-1) > data.close).astype(float).fillna(0).values
    if params["mode"] == "leak":
        STATE.append(1)
    return np.where(data.close > data.close.rolling(10).mean(), 1.0, 0.0) * min(1.0, len(STATE))

STATE = [1]
"""


def test_a_failing_combination_is_recorded_and_the_others_go_on():
    # Given combinations that raise, send invalid signals, spin past the limits, peek ahead
    bars = load_bars("AAPL", "1h", date(2024, 1, 1), date(2024, 3, 31))
    request = opt(strategy_code=FAILS_SOMETIMES, parameters={}).backtest_request()
    modes = ["ok", "raise", "range", "spin", "ok", "peek", "leak", "ok"]
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=5)
    # When they run in one batch
    items = list(evaluate(request, [{"mode": m} for m in modes], bars=bars, limits=limits))
    # Then each fails with its own typed error, in place, and the good ones succeed
    errors = {modes[i.index]: (i.error or {}).get("type") for i in items}
    assert [i.index for i in items] == list(range(len(modes)))
    assert errors["raise"] == "StrategyError"
    assert errors["range"] == "InvalidSignals"
    assert errors["spin"] == "StrategyTimeout"  # a new child ran the rest
    assert errors["peek"] == "LookAheadError"
    ok = [i for i in items if modes[i.index] in ("ok", "leak")]
    assert all(i.succeeded for i in ok)
    # module state does not leak between combinations: each one starts from a fresh namespace
    assert ok[0].metrics == ok[1].metrics == ok[2].metrics == ok[3].metrics


def test_should_stop_ends_the_batch_early():
    bars = load_bars("AAPL", "1h", date(2024, 1, 1), date(2024, 3, 31))
    request = opt().backtest_request()
    seen: list[int] = []

    def stop() -> bool:
        return len(seen) >= 2

    for item in evaluate(request, [{"fast": f, "slow": 30} for f in range(2, 12)], bars=bars, should_stop=stop):
        seen.append(item.index)
    assert seen == [0, 1]


def test_search_ranks_the_whole_table():
    result = run_optimization(opt(constraints=[{"metric": "total_trades", "op": ">=", "value": 3}], top_k=3))
    assert result.total == 8 and result.succeeded == 8 and len(result.combinations) == 8
    assert result.best is not None and result.top[0] == result.best and len(result.top) <= 3
    values = [o.metrics["sharpe_ratio"] for o in result.top]
    assert values == sorted(values, reverse=True)
