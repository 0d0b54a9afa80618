"""Local tooling: the `backtest` CLI (run, local, demo, replay) and the embedded local stack."""
