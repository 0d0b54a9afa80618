"""`make bench` (second part): the reference parameter sweep, combinations per second, side by side.

The sweep: 100,000 one-minute bars (`peers.benchmark_bars`), SMA crossover (TA-Lib), fast 5..50 step 5 ×
slow 20..200 step 20 with fast < slow = 90 combinations, 0.1% commission, 10,000 cash, no slippage.

- ours: `backtest_engine.optimization.evaluate` over the 90 parameter sets of
  `examples/sma_crossover_vectorized.py`: one warm sandbox child runs the strategy (and its look-ahead
  check) for every combination; the trusted side simulates the fills and computes all 58 metrics of each,
  identical to a single `run_backtest` (a sample is checked here, every one in tests/unit).
- vectorbt: the 90 combinations as 90 columns of one `Portfolio.from_signals` call, then `stats()` per
  column (`agg_func=None`).
- backtesting.py: `Backtest.optimize(fast=..., slow=..., constraint=fast < slow, maximize="Sharpe Ratio")`
  with its process pool (2 processes: this machine's cores), `return_heatmap=True`.

Each contender runs in its own fresh process (`--contender NAME`), once warm (a first sweep not counted)
and then `--rounds` timed sweeps, interleaved; the median is reported. Writes bench/OPTIMIZATION.md.
Usage: ``python bench/optimize.py [--rounds 3] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BARS = 100_000
FASTS = list(range(5, 51, 5))
SLOWS = list(range(20, 201, 20))
COMBOS = [(f, s) for f in FASTS for s in SLOWS if f < s]
CONTENDERS = ("ours", "vectorbt", "backtesting")
LABELS = {
    "ours": "ours (batch in one sandbox child)",
    "vectorbt": "vectorbt (90 columns, one call)",
    "backtesting": "backtesting.py optimize (2 processes)",
}


# ---- contenders (each in its own process) -------------------------------------------------------------


def _ours(bars: Any) -> Any:
    import peers

    from backtest_engine.optimization.evaluate import evaluate

    request = peers.request("vectorized", bars)
    sets = [{"fast": f, "slow": s} for f, s in COMBOS]

    def sweep() -> list[Any]:
        items = list(evaluate(request, sets, bars=peers.fresh(bars)))
        assert all(i.succeeded for i in items), [i.error for i in items if not i.succeeded][:1]
        return items

    return sweep


def _check_ours(bars: Any, items: list[Any]) -> dict[str, Any]:
    import peers

    from backtest_engine.engine import run_backtest

    request = peers.request("vectorized", bars)
    sample = items[:: len(items) // 6]
    same = all(
        run_backtest(request.model_copy(update={"parameters": i.params}), bars=peers.fresh(bars)).performance_metrics
        == i.metrics
        for i in sample
    )
    best = max((i for i in items if i.metrics["sharpe_ratio"] is not None), key=lambda i: i.metrics["sharpe_ratio"])
    return {"identical_to_single_runs": same, "checked": len(sample), "best": best.params}


def _vectorbt(bars: Any) -> Any:
    import numpy as np
    import pandas as pd
    import peers
    import talib
    import vectorbt as vbt

    frame = peers.peer_frame(bars)
    close = frame["Close"]
    values = close.to_numpy()

    def sweep() -> Any:
        smas = {p: talib.SMA(values, timeperiod=p) for p in sorted({*FASTS, *SLOWS})}
        above = np.column_stack([smas[f] > smas[s] for f, s in COMBOS])
        before = np.vstack([np.zeros((1, above.shape[1]), dtype=bool), above[:-1]])
        entries = np.zeros_like(above)
        exits = np.zeros_like(above)
        entries[1:] = (above & ~before)[:-1]
        exits[1:] = (~above & before)[:-1]
        columns = pd.MultiIndex.from_tuples(COMBOS, names=["fast", "slow"])
        portfolio = vbt.Portfolio.from_signals(
            close=close,
            entries=pd.DataFrame(entries, index=close.index, columns=columns),
            exits=pd.DataFrame(exits, index=close.index, columns=columns),
            price=frame["Open"],
            size=np.inf,
            size_granularity=1,
            fees=peers.COMMISSION,
            init_cash=peers.CASH,
            freq="1min",
        )
        return portfolio.stats(agg_func=None)

    return sweep


def _backtesting(bars: Any) -> Any:
    import warnings

    import numpy as np
    import peers
    from backtesting import Backtest, Strategy

    frame = peers.peer_frame(bars)

    class Cross(Strategy):
        """peers' SmaCross with fast and slow as optimizable class parameters."""

        fast = 10
        slow = 30

        def init(self) -> None:
            self.fast_sma = self.I(peers._sma_or, self.data.Close, self.fast, -np.inf)
            self.slow_sma = self.I(peers._sma_or, self.data.Close, self.slow, np.inf)

        def next(self) -> None:
            above = self.fast_sma[-1] > self.slow_sma[-1]
            if above != (self.fast_sma[-2] > self.slow_sma[-2]):
                if above:
                    self.buy()
                elif self.position:
                    self.position.close()

    # Its process pool pickles the Backtest, strategy class included: make the class findable by name.
    Cross.__qualname__ = Cross.__name__ = "Cross"
    globals()["Cross"] = Cross

    def sweep() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = Backtest(
                frame,
                Cross,
                cash=peers.CASH,
                commission=peers.COMMISSION,
                trade_on_close=False,
                exclusive_orders=True,
                finalize_trades=False,
            )
            return bt.optimize(
                fast=FASTS,
                slow=SLOWS,
                constraint=lambda p: p.fast < p.slow,
                maximize="Sharpe Ratio",
                return_heatmap=True,
            )

    return sweep


def contender_main(name: str, rounds: int) -> None:
    sys.path.insert(0, str(BENCH))
    os.environ.setdefault("TQDM_DISABLE", "1")
    import peers

    bars = peers.benchmark_bars(BARS)
    sweep = {"ours": _ours, "vectorbt": _vectorbt, "backtesting": _backtesting}[name](bars)
    answer: dict[str, Any] = {"fingerprint": bars.fingerprint()}
    start = time.perf_counter()
    first = sweep()  # warm-up: zygote start, numba compilation, pool start
    answer["warm_up_seconds"] = time.perf_counter() - start
    for line in sys.stdin:  # one timed sweep per line run.py sends, so the contenders interleave
        if line.strip() != "run":
            break
        start = time.perf_counter()
        sweep()
        sys.stdout.write(json.dumps({"seconds": time.perf_counter() - start}) + "\n")
        sys.stdout.flush()
    if name == "ours":
        answer.update(_check_ours(bars, first))
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


# ---- the driver ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contender", choices=CONTENDERS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "OPTIMIZATION.md")
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, default=list(CONTENDERS))
    args = parser.parse_args()
    if args.contender:
        contender_main(args.contender, args.rounds)
        return
    load = os.getloadavg()
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--contender", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for name in args.only
    }
    times: dict[str, list[float]] = {name: [] for name in procs}
    for k in range(args.rounds):
        order = list(procs)[k % len(procs) :] + list(procs)[: k % len(procs)]
        for name in order:
            p = procs[name]
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write("run\n")
            p.stdin.flush()
            line = p.stdout.readline()
            if not line:
                raise SystemExit(f"{name} ended without answering")
            times[name].append(json.loads(line)["seconds"])
            print(f"[optimize bench] round {k + 1} {name}: {times[name][-1]:.3f} s", file=sys.stderr, flush=True)
    finals: dict[str, dict[str, Any]] = {}
    for name, p in procs.items():
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write("stop\n")
        p.stdin.flush()
        finals[name] = json.loads(p.stdout.readline())
        p.wait()
    fingerprints = {f["fingerprint"] for f in finals.values()}
    rows = []
    for name in procs:
        median = statistics.median(times[name])
        rows.append(
            f"| {LABELS[name]} | {median:.3f} | {min(times[name]):.3f} | {len(COMBOS) / median:.1f} | "
            f"{finals[name]['warm_up_seconds']:.2f} | {len(times[name])} |"
        )
    ours = finals.get("ours", {})
    lines = [
        "# Parameter optimization: the reference sweep",
        "",
        f"Written by `make bench` (`bench/optimize.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "Do not edit by hand.",
        "",
        f"{BARS:,} one-minute bars (`peers.benchmark_bars`), SMA crossover, fast 5..50 step 5 × slow 20..200 "
        f"step 20 with fast < slow = {len(COMBOS)} combinations, 0.1% commission. Machine: {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start (shared and noisy). "
        f"Same bars in every contender: {'yes' if len(fingerprints) == 1 else 'NO'}. Each contender in its own "
        "process, one warm-up sweep not counted, then interleaved timed sweeps; see the module docstring for "
        "what each one computes.",
        "",
        "| contender | median s | best s | combinations/s (median) | warm-up s | sweeps |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    if ours:
        lines += [
            f"Ours: {ours['checked']} combinations spread over the sweep rerun with `run_backtest`: metrics "
            f"identical: {'yes' if ours['identical_to_single_runs'] else 'NO'}. Best Sharpe: {ours['best']}.",
            "",
        ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
