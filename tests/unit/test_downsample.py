"""`downsample.extremes`: at most N points, the envelope and the maximum drawdown kept exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest_engine.downsample import extremes
from backtest_engine.metrics import drawdown_percent


def walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))


@pytest.mark.parametrize("n", [1_000_000, 10_001, 999])
def test_a_long_curve_keeps_its_extremes_and_max_drawdown_in_n_points(n):
    equity = walk(n, 7)
    drawdown = drawdown_percent(equity, 10_000.0)
    kept = extremes(equity, 1000, drawdown)
    assert len(kept) <= 1000 and kept[0] == 0 and kept[-1] == n - 1
    assert np.all(np.diff(kept) > 0)
    assert equity[kept].max() == equity.max() and equity[kept].min() == equity.min()
    assert drawdown[kept].min() == drawdown.min()  # the worst drawdown point survives
    # measured on the kept equity alone, the maximum drawdown is the true one
    assert drawdown_percent(equity[kept], 10_000.0).min() == pytest.approx(drawdown.min(), rel=1e-12)


def test_a_short_curve_is_kept_whole():
    assert extremes(np.arange(5.0), 1000).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        extremes(np.arange(5.0), 1)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 5000), points=st.integers(2, 300), seed=st.integers(0, 10**6))
def test_any_curve_any_budget(n, points, seed):
    values = walk(n, seed)
    kept = extremes(values, points)
    assert len(kept) <= points
    if points >= 4 or n <= points:
        assert values[kept].max() == values.max() and values[kept].min() == values.min()
    assert kept[0] == 0 and kept[-1] == n - 1
