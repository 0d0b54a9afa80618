"""Parameter optimization: search spaces (`space`), the batch evaluator (`evaluate`: many combinations in
one sandbox child), ranking under constraints (`ranking`), walk-forward validation (`walk_forward`) and the
in-process search (`search.run_optimization`). Models in `models` (no numpy)."""
