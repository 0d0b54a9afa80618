"""Ranking combinations: feasibility (succeeded, target defined, every constraint met), then the target in
its direction, ties broken by the combination's index (the earlier in the search wins), so a ranking never
depends on the order in which chunks finished."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from backtest_engine.optimization.models import CombinationOutcome, Constraint, Direction, OptimizationRequest


def feasible(metrics: Mapping[str, object] | None, target: str, constraints: Sequence[Constraint]) -> bool:
    if metrics is None or metrics.get(target) is None:
        return False
    return all(c.holds(metrics) for c in constraints)  # type: ignore[arg-type]


def rank_key(outcome: CombinationOutcome, target: str, direction: Direction) -> tuple[float, int]:
    assert outcome.metrics is not None
    value = float(outcome.metrics[target])  # type: ignore[arg-type]
    return (-value if direction == "max" else value, outcome.index)


def ranked(outcomes: Iterable[CombinationOutcome], request: OptimizationRequest) -> list[CombinationOutcome]:
    """The feasible outcomes, best first."""
    assert request.direction is not None
    good = [o for o in outcomes if o.feasible]
    return sorted(good, key=lambda o: rank_key(o, request.target, request.direction or "max"))


def outcome(
    index: int,
    params: Mapping[str, object],
    metrics: Mapping[str, object] | None,
    error: Mapping[str, object] | None,
    request: OptimizationRequest,
) -> CombinationOutcome:
    return CombinationOutcome.model_validate(
        {
            "index": index,
            "params": params,
            "status": "succeeded" if metrics is not None else "failed",
            "metrics": metrics,
            "error": error,
            "feasible": feasible(metrics, request.target, request.constraints),
        }
    )
