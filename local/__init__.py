"""The local Lambda runtime the demo, `backtest local` and the tests run on (see docs/LOCAL.md), and the
`backtest` CLI: run, demo, local, and replay (which lives in ops/)."""
