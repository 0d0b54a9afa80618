"""Expanding a search space into the combinations to evaluate, reproducibly.

- grid: every point of the product of the parameters' values (first parameter slowest, the request's
  order), without those that break a condition;
- random: `samples` distinct points drawn uniformly from that same grid with `random.Random(seed)`
  (the same request and seed always give the same combinations in the same order).

Both refuse, with a message saying what to shrink, more than `MAX_COMBINATIONS` combinations; the full
grid may hold at most `MAX_GRID` points when it has to be enumerated (a grid search, or a random search
with conditions), and any size otherwise (a random draw indexes into it without enumerating).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator

from backtest_engine.errors import UserInputError
from backtest_engine.models import ParamValue
from backtest_engine.optimization.models import (
    MAX_COMBINATIONS,
    MAX_EVALUATIONS,
    MAX_GRID,
    OptimizationRequest,
)

Params = dict[str, ParamValue]


class TooManyCombinations(UserInputError):
    code = "TooManyCombinations"


def grid_size(request: OptimizationRequest) -> int:
    """Points of the full grid (before conditions)."""
    return math.prod(len(v) for v in request.spaces.values())


def _point(spaces: dict[str, list[ParamValue]], index: int) -> Params:
    """The grid point at `index` (mixed radix, the last parameter fastest)."""
    out: Params = {}
    for name, values in reversed(spaces.items()):
        index, k = divmod(index, len(values))
        out[name] = values[k]
    return dict(reversed(out.items()))


def _allowed(request: OptimizationRequest, params: Params) -> bool:
    if not request.conditions:
        return True
    full = {**request.fixed, **params}
    return all(c.holds(full) for c in request.conditions)


def _grid(request: OptimizationRequest) -> Iterator[Params]:
    spaces = request.spaces
    names = list(spaces)
    for values in itertools.product(*spaces.values()):
        params = dict(zip(names, values, strict=True))
        if _allowed(request, params):
            yield params


def combinations(request: OptimizationRequest) -> list[Params]:
    """The combinations `request` evaluates, in order (each holds the searched parameters only)."""
    total = grid_size(request)
    sweeps = request.validation.folds + 1 if request.validation else 1  # the whole range, then each fold
    if request.method == "grid":
        if total > MAX_GRID:
            raise TooManyCombinations(
                f"the grid has {total:,} points; at most {MAX_GRID:,}: use larger steps or method random"
            )
        out = list(_grid(request))
    else:
        assert request.samples is not None
        out = _random(request, total, request.samples)
    if len(out) > MAX_COMBINATIONS:
        raise TooManyCombinations(
            f"{len(out):,} combinations; at most {MAX_COMBINATIONS:,} per optimization: use larger steps, "
            "fewer values, conditions, or method random with samples"
        )
    if len(out) * sweeps > MAX_EVALUATIONS:
        raise TooManyCombinations(
            f"{len(out):,} combinations × {sweeps} sweeps (the whole range and each validation window) = "
            f"{len(out) * sweeps:,} backtests; at most "
            f"{MAX_EVALUATIONS:,}: fewer combinations or windows"
        )
    if not out:
        raise UserInputError("no combination satisfies the conditions: check them against the parameters' values")
    return out


def _random(request: OptimizationRequest, total: int, samples: int) -> list[Params]:
    rng = random.Random(request.seed)
    spaces = request.spaces
    if not request.conditions:
        return [_point(spaces, i) for i in rng.sample(range(total), min(samples, total))]
    if total > MAX_GRID:
        raise TooManyCombinations(
            f"the grid has {total:,} points; with conditions a random search draws from at most {MAX_GRID:,}: "
            "use larger steps"
        )
    allowed = list(_grid(request))
    return rng.sample(allowed, min(samples, len(allowed)))
