"""Where our engine's time goes: pyinstrument profiles of one benchmark run (not part of `make bench`).

``python bench/profile.py [vectorized|event] [BARS]`` (in .venv-bench) prints two profiles of the
benchmark strategy on the benchmark bars: `run_backtest` as the caller sees it (the sandbox child is a
black box there: its time shows under `Supervisor.run`), then the child's work, `runtime.execute`, run in
this process.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers
from pyinstrument import Profiler

from backtest_engine.broker import Costs
from backtest_engine.runtime import execute
from backtest_engine.sandbox import StrategyLog, compile_strategy


def main() -> None:
    style = sys.argv[1] if len(sys.argv) > 1 else "vectorized"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    bars = peers.benchmark_bars(n)
    peers.run_ours(style, bars)  # warm-up
    profiler = Profiler(interval=0.0005)
    with profiler:
        peers.run_ours(style, bars)
    print(f"== run_backtest, {style}, {n:,} bars (the caller's process) ==")
    print(profiler.output_text(unicode=True, color=False, show_all=False))

    source = (peers.VECTORIZED_FILE if style == "vectorized" else peers.EVENT_FILE).read_text(encoding="utf-8")
    strategy = compile_strategy(source)
    costs = Costs(commission=peers.COMMISSION, slippage=0.0, lot_size=bars.lot_size)
    execute(strategy, bars, {}, peers.CASH, costs, StrategyLog(2000, 1 << 18))  # warm-up
    profiler = Profiler(interval=0.0005)
    with profiler:
        execute(strategy, bars, {}, peers.CASH, costs, StrategyLog(2000, 1 << 18))
    print(f"== runtime.execute, {style}, {n:,} bars (the sandbox child's work, run in this process) ==")
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
