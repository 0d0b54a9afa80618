"""Pydantic models of a parameter optimization: the search space, the target, the constraints, the
validation scheme, and what a search produced. Imports no numpy (the API functions use it).

A request is a backtest request whose ``parameters`` map each name to a space or a fixed value:

    {"strategy_code": "...", "symbol": "BTCUSD", "timeframe": "1m", ...,
     "parameters": {"fast": {"min": 5, "max": 50, "step": 5}, "slow": {"values": [20, 60, 100]}, "mode": "long"},
     "conditions": [{"left": "fast", "op": "<", "right": "slow"}],
     "method": "grid",                      # or "random" with "samples": 200, "seed": 7
     "target": "sharpe_ratio", "direction": "max",
     "constraints": [{"metric": "max_drawdown_percent", "op": ">", "value": -25},
                     {"metric": "total_trades", "op": ">=", "value": 10}],
     "top_k": 10,
     "validation": {"kind": "walk_forward", "windows": 4, "out_of_sample_fraction": 0.25}}

Caps (`MAX_COMBINATIONS`, `MAX_GRID`, `MAX_EVALUATIONS`) are checked when the space is expanded
(`space.combinations`): beyond them the request is refused with a message saying what to shrink.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

from backtest_engine.base_model import Model
from backtest_engine.metric_definitions import METRIC_DEFINITIONS, METRIC_KEYS
from backtest_engine.models import _PARAM_NAME, MAX_PARAMETERS, BacktestRequest, MetricValue, ParamValue

# Combinations one optimization may evaluate (grid after its conditions, or random samples).
MAX_COMBINATIONS = 10_000
# Points of the full grid (before conditions) that may be enumerated.
MAX_GRID = 1_000_000
# Backtests one optimization may run in all: combinations × walk-forward windows (+ one out-of-sample run
# per window).
MAX_EVALUATIONS = 40_000
# Values one {min, max, step} range may hold.
MAX_RANGE_VALUES = 10_000

Op = Literal["<", "<=", ">", ">=", "==", "!="]
Method = Literal["grid", "random"]
Direction = Literal["max", "min"]

_HIGHER_IS_BETTER = {d.key: d.higher_is_better for d in METRIC_DEFINITIONS}


def compare(left: Any, op: Op, right: Any) -> bool:
    """`left op right` (False when either side is None)."""
    if left is None or right is None:
        return False
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "==":
        return bool(left == right)
    return bool(left != right)


def _finite(v: float, what: str) -> float:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number")
    return v


class ParameterRange(Model):
    """`min`, `min + step`, ... up to `max` inclusive. All integers give integers; any float gives floats
    (rounded to 12 significant digits, so 0.1 steps do not drift)."""

    model_config = ConfigDict(extra="forbid")

    min: Annotated[StrictInt | StrictFloat, Field(description="First value.")]
    max: Annotated[StrictInt | StrictFloat, Field(description="Last value (included when reached by whole steps).")]
    step: Annotated[StrictInt | StrictFloat, Field(gt=0, description="Distance between two values.")] = 1

    @model_validator(mode="after")
    def _ordered(self) -> ParameterRange:
        for name in ("min", "max", "step"):
            _finite(getattr(self, name), name)
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        count = math.floor((self.max - self.min) / self.step + 1e-9) + 1
        if count > MAX_RANGE_VALUES:
            raise ValueError(f"the range holds {count:,} values; at most {MAX_RANGE_VALUES:,}: use a larger step")
        return self

    def expand(self) -> list[ParamValue]:
        count = math.floor((self.max - self.min) / self.step + 1e-9) + 1
        if all(isinstance(v, int) for v in (self.min, self.max, self.step)):
            return [int(self.min + k * self.step) for k in range(count)]
        return [float(f"{self.min + k * self.step:.12g}") for k in range(count)]


class ParameterValues(Model):
    """An explicit list of values (numbers, strings or booleans), tried in this order."""

    model_config = ConfigDict(extra="forbid")

    values: Annotated[list[ParamValue], Field(min_length=1, max_length=MAX_RANGE_VALUES)]

    @field_validator("values")
    @classmethod
    def _clean(cls, v: list[ParamValue]) -> list[ParamValue]:
        for x in v:
            if isinstance(x, float):
                _finite(x, "every value")
            if isinstance(x, str) and len(x) > 1000:
                raise ValueError("a value is longer than 1000 characters")
        return v

    def expand(self) -> list[ParamValue]:
        return list(self.values)


ParameterSpace = ParameterRange | ParameterValues


class Condition(Model):
    """A rule between parameters (or a parameter and a number) that a combination must satisfy to be
    tried at all, e.g. ``fast < slow``."""

    model_config = ConfigDict(extra="forbid")

    left: Annotated[str, Field(description="A parameter name.")]
    op: Op
    right: Annotated[str | int | float, Field(description="A parameter name or a number.")]

    def holds(self, params: dict[str, ParamValue]) -> bool:
        right = params.get(self.right) if isinstance(self.right, str) else self.right
        try:
            return compare(params.get(self.left), self.op, right)
        except TypeError:
            return False

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


class Constraint(Model):
    """A rule on a combination's metrics it must meet to be ranked, e.g. ``total_trades >= 10``. A metric
    that is null (undefined for that run) fails every constraint on it."""

    model_config = ConfigDict(extra="forbid")

    metric: Annotated[str, Field(description="A metric key (see /performance-metrics/definitions).")]
    op: Op
    value: float

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in METRIC_KEYS:
            raise ValueError(f"unknown metric {v!r}; see /performance-metrics/definitions")
        return v

    def holds(self, metrics: dict[str, MetricValue]) -> bool:
        return compare(metrics.get(self.metric), self.op, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class Validation(Model):
    """Out-of-sample validation.

    - ``walk_forward``: the bars are cut into `windows` folds that step forward by their out-of-sample
      part; each fold optimizes on its in-sample part and runs the winner on the out-of-sample part that
      follows it. The out-of-sample parts tile the end of the history without gaps or overlap, and are
      also reported stitched together. ``anchored``: every in-sample part starts at the first bar.
    - ``holdout``: one fold: optimize on the first 1 − `out_of_sample_fraction` of the bars, run the winner
      on the rest.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["walk_forward", "holdout"] = "walk_forward"
    windows: Annotated[int, Field(strict=True, ge=1, le=20, description="Folds (walk_forward).")] = 4
    out_of_sample_fraction: Annotated[
        float, Field(strict=True, gt=0, lt=1, description="Of each fold (walk_forward), or of all bars (holdout).")
    ] = 0.25
    anchored: Annotated[
        bool, Field(strict=True, description="walk_forward: in-sample parts all start at the first bar.")
    ] = False

    @property
    def folds(self) -> int:
        return 1 if self.kind == "holdout" else self.windows


class OptimizationRequest(BacktestRequest):
    """A parameter search over one strategy: the backtest fields, the space, what to rank by."""

    model_config = ConfigDict(extra="forbid", title="OptimizationRequest")

    parameters: Annotated[
        dict[str, ParameterRange | ParameterValues | ParamValue],
        Field(description="Each name → {min, max, step}, {values: [...]}, or a fixed value."),
    ] = Field(default_factory=dict)  # type: ignore[assignment]
    conditions: Annotated[
        list[Condition], Field(max_length=20, description="Rules between parameters, e.g. fast < slow.")
    ] = Field(default_factory=list)
    method: Annotated[Method, Field(description="grid: every combination; random: `samples` of them.")] = "grid"
    samples: Annotated[int | None, Field(strict=True, ge=1, le=MAX_COMBINATIONS, description="random: how many.")] = (
        None
    )
    seed: Annotated[
        int, Field(strict=True, ge=0, le=2**63 - 1, description="random: the same seed draws the same set.")
    ] = 0
    target: Annotated[str, Field(description="The metric key to optimize.")] = "sharpe_ratio"
    direction: Annotated[Direction | None, Field(description="max or min; default: the metric's better direction.")] = (
        None
    )
    constraints: Annotated[list[Constraint], Field(max_length=20)] = Field(default_factory=list)
    top_k: Annotated[int, Field(strict=True, ge=1, le=100, description="How many ranked combinations to report.")] = 10
    validation: Validation | None = None

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(v) > MAX_PARAMETERS:
            raise ValueError(f"at most {MAX_PARAMETERS} parameters; got {len(v)}")
        for key, value in v.items():
            if not _PARAM_NAME.match(key):
                raise ValueError(f"parameter name {key!r} must be an identifier of at most 64 characters")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"parameter {key!r} must be a finite number")
            if isinstance(value, str) and len(value) > 1000:
                raise ValueError(f"parameter {key!r} is longer than 1000 characters")
        return v

    @field_validator("target")
    @classmethod
    def _target_known(cls, v: str) -> str:
        if v not in METRIC_KEYS:
            raise ValueError(f"unknown metric {v!r}; see /performance-metrics/definitions")
        return v

    @model_validator(mode="after")
    def _search(self) -> OptimizationRequest:
        if self.direction is None:
            better = _HIGHER_IS_BETTER.get(self.target)
            if better is None:
                raise ValueError(f"{self.target} has no better direction: give direction max or min")
            self.direction = "max" if better else "min"
        if self.method == "random" and self.samples is None:
            raise ValueError("method random needs samples (how many combinations to draw)")
        names = set(self.parameters)
        for c in self.conditions:
            missing = [p for p in (c.left, c.right) if isinstance(p, str) and p not in names]
            if missing:
                raise ValueError(f"condition {c} names unknown parameter(s) {', '.join(missing)}")
        return self

    @property
    def spaces(self) -> dict[str, list[ParamValue]]:
        """Each searched parameter's values, in the request's order (fixed values are not searched)."""
        return {
            name: space.expand()
            for name, space in self.parameters.items()
            if isinstance(space, (ParameterRange, ParameterValues))
        }

    @property
    def fixed(self) -> dict[str, ParamValue]:
        return {
            name: value
            for name, value in self.parameters.items()
            if not isinstance(value, (ParameterRange, ParameterValues))
        }

    def backtest_request(self, params: dict[str, ParamValue] | None = None) -> BacktestRequest:
        """The single backtest of one combination (the fixed parameters and `params`)."""
        data = self.model_dump(
            mode="json",
            include=set(BacktestRequest.model_fields) - {"parameters"},
        )
        return BacktestRequest.model_validate(
            {**data, "parameters": {**self.fixed, **(params or {})}}, context={"max_bars": None}
        )


class CombinationOutcome(Model):
    """One combination: its parameters and complete metrics, or why it failed."""

    index: Annotated[int, Field(description="Position in the search (grid order, or the random draw's order).")]
    params: dict[str, ParamValue]
    status: Literal["succeeded", "failed"]
    metrics: dict[str, MetricValue] | None = None
    error: dict[str, Any] | None = Field(default=None, description="{type, message, line?} when failed.")
    feasible: Annotated[bool, Field(description="Succeeded, target defined and every constraint met.")] = False


class WindowReport(Model):
    """One walk-forward fold: where its parts lie, its winner, the winner's in- and out-of-sample metrics."""

    window: int
    in_sample: dict[str, Any] = Field(description="{start, end, bars}: ISO times of the first and last bar.")
    out_of_sample: dict[str, Any]
    best_params: dict[str, ParamValue] | None = None
    in_sample_metrics: dict[str, MetricValue] | None = None
    out_of_sample_metrics: dict[str, MetricValue] | None = None
    combinations: int = 0
    feasible: int = 0
    error: dict[str, Any] | None = None


class OptimizationSummary(Model):
    """What a search produced (the full table of every combination is `OptimizationResult.combinations`)."""

    target: str
    direction: Direction
    method: Method
    total: int
    succeeded: int
    failed: int
    feasible: int
    best: CombinationOutcome | None = None
    top: list[CombinationOutcome] = Field(default_factory=list)
    windows: list[WindowReport] | None = None
    stitched_out_of_sample_metrics: dict[str, MetricValue] | None = None


class OptimizationResult(OptimizationSummary):
    combinations: list[CombinationOutcome] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
