"""Where the walk-forward (or holdout) folds of n bars lie: pure arithmetic, no numpy, so the API functions
can check a validation scheme and plan an optimization without loading the engine's data stack.
`walk_forward` (the stitching, the spans) re-exports these; its docstring states the layout."""

from __future__ import annotations

import math
from dataclasses import dataclass

from backtest_engine.errors import UserInputError
from backtest_engine.optimization.models import Validation

MIN_PART_BARS = 20  # bars an in-sample or out-of-sample part must hold at least


@dataclass(frozen=True)
class Fold:
    window: int
    in_sample: tuple[int, int]  # [start, stop) bar indices
    out_of_sample: tuple[int, int]


def folds(n: int, validation: Validation) -> list[Fold]:
    w = validation.folds
    r = validation.out_of_sample_fraction
    oos = math.floor(n * r / ((1.0 - r) + w * r))
    is_len = n - w * oos
    if oos < MIN_PART_BARS or is_len < MIN_PART_BARS:
        raise UserInputError(
            f"{n:,} bars cut into {w} fold(s) leave {oos:,} out-of-sample and {is_len:,} in-sample bars per fold; "
            f"each part needs at least {MIN_PART_BARS}: use fewer windows or a longer range"
        )
    out = []
    for i in range(w):
        start = 0 if validation.anchored else i * oos
        cut = i * oos + is_len
        out.append(Fold(i, (start, cut), (cut, cut + oos)))
    return out
