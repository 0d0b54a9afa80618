"""`make bench`: our engine against backtesting.py and vectorbt, and what a run costs; writes bench/RESULTS.md.

Runs in .venv-bench (the peers pinned in bench/requirements.txt, the repo installed editable). Sections:

1. Throughput: the same SMA(10)/SMA(30) crossover on the same 10k / 100k / 1M one-minute bars (see
   `peers`), each contender in its own worker process (`worker.py`), their runs interleaved round by
   round; medians of 5 runs per size after one warm-up run each. Our two styles go through
   `run_backtest` whole: compile, the sandbox child (the strategy), the fills on the trusted side, metrics, result.
2. Agreement: the trades (count, entry and exit bars, units) and the final equity of every contender.
3. Cold process: `backtest run` from process start to the JSON result, against vectorbt's first call in
   a fresh process (import, data, from_signals, stats), with numba's on-disk cache empty and warm.
4. Memory: peak RSS of 8 years of BTCUSD 1-minute bars through `backtest run --json`, and of 5M bars
   through `run_backtest` + `result.json_bytes`.
5. Import time of each Lambda handler in a fresh interpreter, with the environment the functions get.
6. The data loader (`bench_loader.py`): `read_csv_bars` against bare `pyarrow.csv.read_csv` and
   `pandas.read_csv` on one 1M-row file, Parquet, the validated .npz copy, and `backtest run --data`.

Usage: ``python bench/run.py [--quick] [--out PATH]`` (--quick: 10k/100k bars only, fewer runs; for a try).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from local.cold_start import lambda_like_env, probe_command

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PY = sys.executable
BIN = Path(PY).parent

SIZES_FULL = ((10_000, 5), (100_000, 5), (1_000_000, 5))
SIZES_QUICK = ((10_000, 3), (100_000, 3))
CONTENDERS = ("ours_vectorized", "ours_event", "vectorbt", "backtesting")
LABELS = {
    "ours_vectorized": "ours, vectorized",
    "ours_event": "ours, event (on_bar, sandboxed)",
    "vectorbt": "vectorbt",
    "backtesting": "backtesting.py",
}
EQUITY_RTOL = 1e-9
COLD_RUNS = 3
CLI_DAYS_1M = ("2018-01-01", "2019-11-26")  # 695 days of BTCUSD minutes: 1,000,800 bars


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- workers ---------------------------------------------------------------------------------------


class Worker:
    """One contender's process (worker.py), spoken to in JSON lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [PY, str(BENCH / "worker.py"), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died (exit code {self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"worker {self.name}: {answer['error']}")
        return answer

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, BrokenPipeError, ValueError):
            self.ask(op="quit")
        self.proc.wait(timeout=60)


@dataclass
class SizeResult:
    bars: int
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def seconds(self, name: str) -> list[float]:
        return [r["seconds"] for r in self.runs[name]]

    def median(self, name: str) -> float:
        return statistics.median(self.seconds(name))


def throughput(sizes: tuple[tuple[int, int], ...]) -> list[SizeResult]:
    workers = {name: Worker(name) for name in CONTENDERS}
    results: list[SizeResult] = []
    try:
        for n, repeats in sizes:
            res = SizeResult(n, {name: [] for name in CONTENDERS})
            loaded = {name: w.ask(op="load", bars=n) for name, w in workers.items()}
            prints = {name: answer["fingerprint"] for name, answer in loaded.items()}
            if len(set(prints.values())) != 1:
                raise RuntimeError(f"the contenders got different data: {prints}")
            res.data = loaded["ours_vectorized"]
            log(f"{n:,} bars: warm-up (data {prints['ours_vectorized']})")
            for name, w in workers.items():  # warm-up run, not counted; its trades are checked
                w.ask(op="run")
                res.checks[name] = w.ask(op="check")
            for k in range(repeats):
                order = CONTENDERS[k % len(CONTENDERS) :] + CONTENDERS[: k % len(CONTENDERS)]
                for name in order:
                    res.runs[name].append(workers[name].ask(op="run"))
                log(
                    f"{n:,} bars: round {k + 1}/{repeats}: "
                    + ", ".join(f"{name} {res.runs[name][-1]['seconds']:.3f}s" for name in CONTENDERS)
                )
            results.append(res)
    finally:
        for w in workers.values():
            w.close()
    return results


# ---- agreement -------------------------------------------------------------------------------------


def agreement(res: SizeResult) -> dict[str, Any]:
    base = res.checks["ours_vectorized"]
    base_trades = [tuple(t) for t in base["trades"]]
    rows = {}
    for name in CONTENDERS:
        other = res.checks[name]
        trades = [tuple(t) for t in other["trades"]]
        diff = None
        if trades != base_trades:
            k = next(
                (i for i, (a, b) in enumerate(zip(base_trades, trades, strict=False)) if a != b),
                min(len(trades), len(base_trades)),
            )
            theirs = trades[k] if k < len(trades) else None
            mine = base_trades[k] if k < len(base_trades) else None
            diff = f"#{k}: {theirs} vs ours {mine}"
        rel = abs(other["final_equity"] - base["final_equity"]) / abs(base["final_equity"])
        rows[name] = {
            "trades": len(trades),
            "open_at_end": sum(1 for t in trades if t[1] is None),
            "same_trades": trades == base_trades,
            "first_difference": diff,
            "final_equity": other["final_equity"],
            "relative_difference": rel,
        }
    return rows


# ---- cold process ------------------------------------------------------------------------------------


def cold_env(pycache: Path, numba_cache: Path | None = None) -> dict[str, str]:
    """Byte-code cached in `pycache` (as a Lambda layer ships it compiled), numba's cache in `numba_cache`."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["TQDM_DISABLE"] = "1"
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    return env


def timed_process(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return elapsed


def cold(work: Path) -> dict[str, Any]:
    pycache = work / "pycache"
    cli = [
        str(BIN / "backtest"), "run", str(REPO / "examples" / "sma_crossover_vectorized.py"),
        "--symbol", "BTCUSD", "--timeframe", "1m", "--start", CLI_DAYS_1M[0], "--end", CLI_DAYS_1M[1],
        "--slippage", "0", "--no-progress", "--json",
    ]  # fmt: skip
    vbt = [PY, str(BENCH / "probes.py"), "vectorbt-cold", "1000000"]
    numba_warm = work / "numba-warm"
    log("cold: priming byte-code caches (not timed)")
    timed_process(cli, cold_env(pycache))
    timed_process(vbt, cold_env(pycache, numba_warm))  # also fills numba's cache for the 'warm' runs
    ours, warm, empty = [], [], []
    for k in range(COLD_RUNS):
        ours.append(timed_process(cli, cold_env(pycache)))
        warm.append(timed_process(vbt, cold_env(pycache, numba_warm)))
        log(
            f"cold round {k + 1}/{COLD_RUNS}: backtest run {ours[-1]:.2f}s, vectorbt (numba cache warm) {warm[-1]:.2f}s"
        )
    for k in range(2):
        empty_dir = work / f"numba-empty-{k}"
        empty.append(timed_process(vbt, cold_env(pycache, empty_dir)))
        log(f"cold: vectorbt with an empty numba cache {empty[-1]:.2f}s")
    return {"ours": ours, "vectorbt_numba_cache_warm": warm, "vectorbt_numba_cache_empty": empty}


# ---- memory ---------------------------------------------------------------------------------------------


def memory(work: Path) -> dict[str, Any]:
    env = cold_env(work / "pycache")
    log("memory: 8 years of BTCUSD 1m through backtest run --json")
    args = [
        "run", str(REPO / "examples" / "sma_crossover_vectorized.py"), "--symbol", "BTCUSD", "--timeframe", "1m",
        "--start", "2018-01-01", "--end", "2025-12-31", "--no-progress", "--json",
    ]  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run([PY, str(BENCH / "probes.py"), "cli-memory", *args], env=env, cwd=REPO,
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"cli-memory failed: {out.stderr[-2000:]}")
    eight = json.loads(out.stderr.strip().splitlines()[-1])
    eight["seconds"] = time.perf_counter() - start
    log("memory: 5M bars through run_backtest + its JSON")
    out = subprocess.run([PY, str(BENCH / "probes.py"), "memory-5m"], env=env, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory-5m failed: {out.stderr[-2000:]}")
    five = json.loads(out.stderr.strip().splitlines()[-1])
    log("memory: the runner on the flip strategy at the bar cap (2M trades)")
    start = time.perf_counter()
    out = subprocess.run([PY, str(BENCH / "probes.py"), "runner-flip"], env=env, cwd=REPO, capture_output=True,
                         text=True)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"runner-flip failed: {out.stderr[-2000:]}")
    flip = json.loads(out.stderr.strip().splitlines()[-1])
    flip["seconds"] = time.perf_counter() - start
    return {"eight_years": eight, "five_million": five, "runner_flip": flip}


# ---- handler imports ------------------------------------------------------------------------------------

HANDLERS = ("submit", "status", "results", "symbols", "run_backtest")
HANDLER_RUNS = 5


def import_profile(cmd: list[str], env: dict[str, str], top: int = 6) -> list[tuple[str, float]]:
    """`python -X importtime`: the milliseconds spent importing each top-level package (self times summed),
    the largest first: what a handler's cold start is made of."""
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=REPO, capture_output=True, text=True)
    by_package: dict[str, float] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(self_us) / 1000
    return sorted(by_package.items(), key=lambda kv: -kv[1])[:top]


def sandbox_overhead() -> dict[str, Any]:
    """`bench/overhead.py` in a fresh process: the zygote's start, a job's fixed cost, fork to first bar."""
    out = subprocess.run([PY, str(BENCH / "overhead.py")], cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench/overhead.py failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"sandbox: job {result['job_s'] * 1000:.1f} ms, fork to first bar {result['ready_s'] * 1000:.1f} ms")
    return result


def handler_imports(work: Path) -> dict[str, Any]:
    """As tests/integration/test_handler_cold_start.py probes them: the functions' variables, fake
    credentials, no POWERTOOLS_* (so POWERTOOLS_TRACE_DISABLED is unset and the tracer is real)."""
    env = lambda_like_env(cold_env(work / "pycache"))
    results: dict[str, Any] = {}
    for name in HANDLERS:
        cmd = probe_command(name, PY)
        runs = []
        for k in range(HANDLER_RUNS + 1):  # the first run primes the byte-code cache
            out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"importing functions/{name}/handler.py failed: {out.stderr[-2000:]}")
            if k:
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        results[name] = {
            "ms": [r["ms"] for r in runs],
            "numpy": runs[-1]["numpy"],
            "pandas": runs[-1]["pandas"],
            "by_package": import_profile(cmd, env),
        }
        log(f"import functions/{name}/handler.py: median {statistics.median(results[name]['ms']):.0f} ms")
    return results


# ---- the report -------------------------------------------------------------------------------------------


def loader(quick: bool) -> dict[str, Any]:
    """`bench/bench_loader.py` in a fresh process (1M rows; --quick: 100k rows, no exact reader)."""
    cmd = [PY, str(BENCH / "bench_loader.py")]
    if quick:
        cmd += ["--rows", "100000", "--runs", "3", "--cli-runs", "1", "--no-exact"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench/bench_loader.py failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    med = statistics.median
    log(f"loader: {med(result['loader']):.3f} s vs pyarrow {med(result['pyarrow']):.3f} s ({result['rows']:,} rows)")
    return result


def loader_section(res: dict[str, Any]) -> list[str]:
    med = statistics.median
    base = med(res["pyarrow"])
    rows = [
        ("`pyarrow.csv.read_csv(path)` (types inferred, nothing checked)", "pyarrow"),
        ("`pandas.read_csv(path)` (C engine, types inferred: times stay text, nothing checked)", "pandas"),
        ("`read_csv_bars(path)`: parse, times to UTC ns, every check, calendar and timeframe, `Bars`", "loader"),
        ("`read_parquet_bars(path)` of the same bars as Parquet, every check", "loader_parquet"),
        ("`bars_from_npz` of the validated copy the runner reads (bytes in memory)", "npz"),
        ("the exact cell-by-cell reader (the loader before; an invalid file's errors), 1 run", "exact"),
    ]
    L = [
        "## Data loader",
        "",
        f"One file of {res['rows']:,} one-minute BTCUSD bars written by pandas' `to_csv` ({res['csv_mb']:.1f} MB of"
        f" CSV; {res['parquet_mb']:.1f} MB as Parquet, {res['npz_mb']:.1f} MB as the validated .npz), read in one"
        f" process (`bench/bench_loader.py`), medians after a warm-up; pyarrow {res['pyarrow_version']},"
        f" pandas {res['pandas_version']}.",
        "",
        "| reader | median s | × pyarrow.csv.read_csv |",
        "|---|---:|---:|",
    ]
    for label, key in rows:
        if key in res:
            L.append(f"| {label} | {med(res[key]):.3f} | {med(res[key]) / base:.2f}× |")
    L += [
        "",
        "Whole process, `backtest run examples/<strategy> --data FILE --json > /dev/null` (import, load, run, JSON):",
        "",
    ]
    L += ["| strategy | median s | runs (s) |", "|---|---:|---|"]
    for style, runs in res["cli"].items():
        L.append(f"| sma_crossover_{style}.py | {med(runs):.2f} | {', '.join(f'{r:.2f}' for r in runs)} |")
    return [*L, ""]


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kib / 2**20:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    versions = {}
    for dist in ("numpy", "pandas", "vectorbt", "backtesting", "numba", "TA-Lib", "pydantic", "RestrictedPython"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "-"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load": f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        **{f"v_{k}": v for k, v in versions.items()},
    }


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fmt_rate(bars: int, seconds: float) -> str:
    r = bars / seconds
    return f"{r / 1e6:.2f}M" if r >= 1e6 else f"{r / 1e3:.0f}k"


def report(
    info: dict[str, str],
    command: str,
    started: str,
    sizes: list[SizeResult],
    cold_res: dict[str, Any] | None,
    mem: dict[str, Any] | None,
    handlers: dict[str, Any] | None,
    overhead: dict[str, Any] | None,
    wall: float,
    loaded: dict[str, Any] | None = None,
) -> str:
    med = statistics.median
    largest = max(sizes, key=lambda r: r.bars)
    price_range = f"${largest.data['low']:,.2f} to ${largest.data['high']:,.2f} over the {largest.bars:,} bars"
    L: list[str] = []
    L += [
        "# Benchmarks: our engine against backtesting.py and vectorbt",
        "",
        f"Written by `{command}` on {started} (took {wall / 60:.1f} min). Do not edit by hand: run `make bench`.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; RAM {info['ram']}; {info['os']}",
        f"- Python {info['python']}; numpy {info['v_numpy']}, pandas {info['v_pandas']}, vectorbt {info['v_vectorbt']}"
        f" (numba {info['v_numba']}), backtesting {info['v_backtesting']}, TA-Lib {info['v_TA-Lib']},"
        f" pydantic {info['v_pydantic']}, RestrictedPython {info['v_RestrictedPython']}",
        f"- Load average when the run started (1/5/15 min): {info['load']}. The machine is shared and noisy: every"
        " figure is a median, and the contenders' runs are interleaved so the noise falls on all of them.",
        "",
        "## What is measured",
        "",
        "- Data: the first N one-minute bars of the synthetic BTCUSD history from 2018-01-01"
        " (`backtest_engine.market_data.load_bars`), prices ÷ 100 so that whole units (lot 1) make sense"
        f" ({price_range}); every contender builds the same bars (their fingerprints are compared) and gets them"
        " as numpy arrays (ours, `run_backtest(bars=...)`) or as the same OHLCV DataFrame (peers).",
        "- Strategy: SMA(10) and SMA(30) of the close (TA-Lib in all three), long while the fast one is above the"
        " slow one, flat otherwise, ordering only where that changes (buy all-in at the cross above, close at the"
        " cross below). All-in in whole units, 0.1% commission per fill, 10,000 cash, no slippage, a decision on"
        " bar t's close fills at bar t+1's open.",
        "- Ours: `run_backtest` end to end, for `examples/sma_crossover_vectorized.py` (generate_signals) and"
        " `examples/sma_crossover_event.py` (initialize/on_bar): compile under RestrictedPython, the sandbox child"
        " (forked from the warm zygote, confined, the bars over a pipe, the strategy and its look-ahead check, its"
        " decisions back), the fills simulated on the trusted side,"
        " the data fingerprint, all 58 metrics and the `BacktestResult`. Its JSON (`result.json_bytes`, what the"
        " service stores) is timed separately and shown apart.",
        "- vectorbt: TA-Lib SMAs → entries/exits at the crosses, moved one bar later, `Portfolio.from_signals(close,"
        " entries, exits, price=open, size=inf, size_granularity=1, fees=0.001, init_cash=10000, freq='1min')`"
        " and `portfolio.stats()`.",
        "- backtesting.py: `Backtest(df, SmaCross, cash=10000, commission=.001, trade_on_close=False,"
        " exclusive_orders=True)` and `run()` (which computes its stats); `self.buy()` all-in, `position.close()`;"
        " its progress bar off (`TQDM_DISABLE=1`), its warnings ignored.",
        "- Each contender runs in its own worker process (`bench/worker.py`); one warm-up run each (not counted),"
        " then rounds in rotating order. Wall time measured in the worker around the call.",
        "",
        "## Throughput",
        "",
        "| bars | contender | median s | best s | bars/s | runs |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for res in sizes:
        for name in CONTENDERS:
            secs = res.seconds(name)
            L.append(
                f"| {res.bars:,} | {LABELS[name]} | {fmt_s(med(secs))} | {fmt_s(min(secs))} |"
                f" {fmt_rate(res.bars, med(secs))} | {len(secs)} |"
            )
    L += [
        "",
        "Speed-up of ours (ratio of median times; > 1: ours is faster):",
        "",
        "| bars | vectorized vs vectorbt | vectorized vs backtesting.py | event vs vectorbt |"
        " event vs backtesting.py |",
        "|---:|---:|---:|---:|---:|",
    ]
    for res in sizes:
        v, e = res.median("ours_vectorized"), res.median("ours_event")
        vb, bt = res.median("vectorbt"), res.median("backtesting")
        L.append(f"| {res.bars:,} | {vb / v:.2f}× | {bt / v:.2f}× | {vb / e:.2f}× | {bt / e:.2f}× |")
    L += [
        "",
        "Our stages (medians, seconds; `result` = building the `BacktestResult`; JSON = `result.json_bytes` after it):",
        "",
    ]
    L += ["| bars | style | compile | strategy (child) | metrics | result | total | metrics share | + JSON | JSON MB |",
          "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for res in sizes:
        for name in ("ours_vectorized", "ours_event"):
            runs = res.runs[name]

            def m(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return med(r["timings"][key] for r in runs)

            share = med(r["timings"]["metrics"] / r["timings"]["total"] for r in runs)
            L.append(
                f"| {res.bars:,} | {name.removeprefix('ours_')} | {m('compile'):.4f} | {m('strategy'):.4f} |"
                f" {m('metrics'):.4f} | {m('result'):.4f} | {m('total'):.4f} | {share * 100:.1f}% |"
                f" {med(r['json_seconds'] for r in runs):.3f} | {runs[-1]['json_bytes'] / 1e6:.1f} |"
            )
    L += [
        "",
        "## Agreement",
        "",
        f"The warm-up run of each contender, compared with ours (vectorized). Trades: entry bar, exit bar (or open at"
        f" the end) and units, all equal. Final equity: marked at the last close with the open position still held"
        f" (the peers do not close it; ours does, at the last close, and its closing commission is added back);"
        f" tolerance {EQUITY_RTOL:g} relative.",
        "",
        "| bars | contender | trades | open at end | same trades | final equity | relative difference |",
        "|---:|---|---:|---:|---|---:|---:|",
    ]
    all_agree = True
    for res in sizes:
        rows = agreement(res)
        for name, row in rows.items():
            ok = row["same_trades"] and row["relative_difference"] <= EQUITY_RTOL
            all_agree &= ok
            same = "yes" if row["same_trades"] else f"**no** ({row['first_difference']})"
            L.append(
                f"| {res.bars:,} | {LABELS[name]} | {row['trades']:,} | {row['open_at_end']} | {same} |"
                f" {row['final_equity']:.6f} | {row['relative_difference']:.1e} |"
            )
    L += [
        "",
        "All contenders agree." if all_agree else "**The contenders disagree: see the table.**",
        "",
        "The account shrinks: 0.1% per fill on one-minute crosses costs more than the crosses earn. Once it holds"
        " less cash than one unit's price, a cross above cannot buy, so the trade count grows slower than the bar"
        f" count ({largest.bars:,} bars: {agreement(largest)['ours_vectorized']['trades']:,} trades, final equity"
        f" ${agreement(largest)['ours_vectorized']['final_equity']:,.2f}). Every contender still reads every bar"
        " and evaluates every signal, so the throughput comparison holds; the agreement check covers the whole"
        " run, the broke stretch included.",
        "",
        "How the configurations were aligned, and the differences that remain (each well inside the tolerance):",
        "",
        "- Orders only at the crosses. Our engine orders where the target exposure changes; the peers' usual"
        " `fast > slow → buy if flat` form would retry a cancelled all-in buy on every later bar. Once the account"
        " is worth less than one unit (it is: 0.1% per fill on a one-minute crossover loses most of the money"
        " within ~3,000 trades), such retries buy later, when the price has dropped, and the runs diverge. With"
        " orders at the crosses (backtesting.py's own `crossover` idiom) all three do the same.",
        "- backtesting.py skips the bars where an indicator is NaN; its SMAs get −inf / +inf instead of TA-Lib's"
        " warm-up NaNs, which compare the same way, so its first decision is on the same bar as ours.",
        "- Sizing: ours `floor(equity / (open × 1.001) + 1e-9)`, vectorbt `(cash / 1.001) / open // 1`,"
        " backtesting.py `int(cash × (1 − 2⁻⁵²) // (open + open × 0.001))`: the same number of units unless the"
        " quotient lies within ~1e-9 of an integer (it never does here).",
        "- Cash: ours adds each fill's cash flow (units × price ± commission); backtesting.py books entry"
        " commission, then `size × (exit − entry)` minus exit commission; vectorbt adds with its own rounding guard."
        " The sums differ in the last bits: relative differences of 1e-16 to 1e-13.",
        "- Ours reports final_capital rounded to 12 significant digits (all metrics are): up to 5e-13 relative.",
        "",
    ]
    if cold_res is not None:
        ours, warm, empty = (cold_res[k] for k in ("ours", "vectorbt_numba_cache_warm", "vectorbt_numba_cache_empty"))
        L += [
            "## Cold process",
            "",
            f"From process start to exit, medians of {COLD_RUNS} (empty numba cache: {len(empty)} runs). Byte-code"
            " cached (as a deployed layer ships it), after one priming run that is not counted.",
            "",
            f"- Ours: `backtest run examples/sma_crossover_vectorized.py --symbol BTCUSD --timeframe 1m --start"
            f" {CLI_DAYS_1M[0]} --end {CLI_DAYS_1M[1]} --slippage 0 --json > /dev/null` (1,000,800 bars of the"
            f" catalog's BTCUSD, its own prices and lot size: data generated, sandboxed run, metrics, the whole"
            f" result as JSON).",
            "- vectorbt: a fresh interpreter that imports it, builds the 1,000,000 benchmark bars, and runs"
            " `from_signals` + `stats()` (`bench/probes.py vectorbt-cold`). vectorbt compiles its numba kernels on"
            " first use and caches them on disk: measured with that cache warm (the second process onwards) and"
            " empty (the very first process, and every Lambda container, whose disk starts empty).",
            "",
            "| process | median s | runs (s) | ours is faster by |",
            "|---|---:|---|---:|",
            f"| ours, `backtest run` | {med(ours):.2f} | {', '.join(f'{x:.2f}' for x in ours)} | |",
            f"| vectorbt, numba cache warm | {med(warm):.2f} | {', '.join(f'{x:.2f}' for x in warm)} |"
            f" {med(warm) / med(ours):.1f}× |",
            f"| vectorbt, numba cache empty | {med(empty):.2f} | {', '.join(f'{x:.2f}' for x in empty)} |"
            f" {med(empty) / med(ours):.1f}× |",
            "",
        ]  # fmt: skip
    if mem is not None:
        e, f, r = mem["eight_years"], mem["five_million"], mem["runner_flip"]
        L += [
            "## Peak memory",
            "",
            "Peak resident set size (ru_maxrss) of the process that runs the backtest (parent) and of the largest"
            " child (the sandbox, forked from the zygote, not from the parent: measured when the zygote has ended).",
            "",
            "| run | bars | parent MiB | sandbox child MiB | seconds |",
            "|---|---:|---:|---:|---:|",
            f"| `backtest run` BTCUSD 1m 2018-01-01..2025-12-31 (the whole 8-year history) `--json > /dev/null` |"
            f" 4,207,680 | {e['parent_mib']:.0f} | {e['child_mib']:.0f} | {e['seconds']:.1f} |",
            f"| `run_backtest` + `result.json_bytes` (JSON {f['json_mib']:.0f} MiB) | {f['bars']:,} |"
            f" {f['parent_mib']:.0f} | {f['child_mib']:.0f} | {f['run_seconds'] + f['json_seconds']:.1f} |",
            f"| the runner: the flip strategy (long/short every bar, no costs: {r['trades']:,} trades) at the bar cap,"
            f" engine then every stored object | {r['bars']:,} | {r['runner_peak_mib']:.0f} |"
            f" {r['child_peak_mib']:.0f} | {r['seconds']:.1f} |",
            "",
            f"The flip's objects: result JSON (gzip) {r['object_mib'].get('flip.json', 0):.0f} MiB, trade records"
            f" {r['object_mib'].get('flip.trades.npy', 0):.0f} MiB, curve records"
            f" {r['object_mib'].get('flip.equity.npy', 0):.0f} MiB, all written as they are made (multipart above"
            " 16 MiB), so storing adds nothing to the runner's peak (`bench/probes.py runner-flip`; the runner"
            " Lambda has 3008 MB).",
            "",
            'The history spans 8 years (2018-2025), so "10 years of 1-minute bars" is measured as the whole 8-year'
            " BTCUSD history (4.2M bars, more minutes than 10 years of a 390-minute equity session: 1.0M) and as 5M"
            " bars: BTCUSD's 4,207,680 followed by 792,320 ETHUSD minutes of 2018 scaled to continue from BTCUSD's"
            " last close and moved 8 years later (`bench/probes.py memory-5m`); both with the vectorized SMA"
            " crossover.",
            "",
        ]
    if handlers is not None:
        L += [
            "## Lambda handler import",
            "",
            "Each `functions/*/handler.py` imported in a fresh interpreter with the variables the functions get"
            " (`local.cold_start.lambda_like_env`: every resource variable of `topology`, fake credentials,"
            f" tracing on as deployed), byte-code cached; median of {HANDLER_RUNS}. The libraries alone"
            " (powertools' validating REST resolver, pydantic and boto3, no line of ours) take about 290 ms here.",
            "",
            "| handler | median ms | runs (ms) | imports numpy | imports pandas | target |",
            "|---|---:|---|---|---|---|",
        ]
        for name, h in handlers.items():
            target = 800 if name == "run_backtest" else 300
            ok = "met" if med(h["ms"]) < target else "**missed**"
            L.append(
                f"| {name} | {med(h['ms']):.0f} | {', '.join(f'{x:.0f}' for x in h['ms'])} | {h['numpy']} |"
                f" {h['pandas']} | < {target} ms: {ok} |"
            )
        L += [
            "",
            "Where the time goes (`python -X importtime`, one run, milliseconds of import per top-level package):",
            "",
        ]
        for name, h in handlers.items():
            L.append(f"- {name}: " + ", ".join(f"{pkg} {ms:.0f}" for pkg, ms in h["by_package"]))
        L.append("")
    if overhead is not None:
        o = overhead
        L += [
            "## Sandbox overhead per job",
            "",
            "Each job runs in a fresh child forked from the warm zygote (`bench/overhead.py`, medians of"
            f" {o['runs']}): the fixed cost is what a 10-bar strategy that returns zeros costs end to end.",
            "",
            "| what | median ms | best ms |",
            "|---|---:|---:|",
            f"| zygote start (a fresh supervisor until its warm zygote answers; once per container) |"
            f" {o['zygote_start_s'] * 1000:.0f} | |",
            f"| a whole 10-bar job (`run_backtest`) | {o['job_s'] * 1000:.1f} | {o['job_best_s'] * 1000:.1f} |",
            f"| fork to first bar (spawn, job and bars, confinement incl. seccomp) | {o['ready_s'] * 1000:.1f} |"
            f" {o['ready_best_s'] * 1000:.1f} |",
            "",
        ]
    if loaded is not None:
        L += loader_section(loaded)
    L += targets(sizes, cold_res, mem, handlers, loaded)
    L.append("")
    return "\n".join(L)


def targets(
    sizes: list[SizeResult],
    cold_res: dict[str, Any] | None,
    mem: dict[str, Any] | None,
    handlers: dict[str, Any] | None,
    loaded: dict[str, Any] | None = None,
) -> list[str]:
    """The issue's targets, each with what this run measured."""
    med = statistics.median
    rows: list[tuple[str, str, bool]] = []
    by_n = {r.bars: r for r in sizes}
    for n in (100_000, 1_000_000):
        if n in by_n:
            ratio = by_n[n].median("vectorbt") / by_n[n].median("ours_vectorized")
            rows.append(
                (
                    f"vectorized ≥ 2× vectorbt's warm throughput at {n:,} bars, metrics included",
                    f"{ratio:.2f}×",
                    ratio >= 2,
                )
            )
    if cold_res is not None:
        ours = med(cold_res["ours"])
        warm, empty = med(cold_res["vectorbt_numba_cache_warm"]), med(cold_res["vectorbt_numba_cache_empty"])
        rows.append(
            (
                "vectorized ≥ 5× vectorbt's cold first call",
                f"{warm / ours:.1f}× (numba cache warm), {empty / ours:.1f}× (empty)",
                warm / ours >= 5,
            )
        )
    for n in (100_000, 1_000_000):
        if n in by_n:
            ratio = by_n[n].median("backtesting") / by_n[n].median("ours_event")
            rows.append((f"event style ≥ 5× backtesting.py's throughput at {n:,} bars", f"{ratio:.2f}×", ratio >= 5))
    if 1_000_000 in by_n:
        for style in ("vectorized", "event"):
            runs = by_n[1_000_000].runs[f"ours_{style}"]
            share = med(x["timings"]["metrics"] / x["timings"]["total"] for x in runs)
            rows.append((f"metrics < 10% of a 1M-bar run ({style})", f"{share * 100:.1f}%", share < 0.10))
    if mem is not None:
        f = mem["five_million"]
        peak = max(f["parent_mib"], f["child_mib"])
        rows.append(("5M bars within 1 GiB peak memory", f"{peak:.0f} MiB (largest process)", peak < 1024))
        runner = mem["runner_flip"]["runner_peak_mib"]
        rows.append(("the runner within about 1 GiB on the flip at the bar cap", f"{runner:.0f} MiB", runner < 1024))
    if handlers is not None:
        for name, h in handlers.items():
            limit = 800 if name == "run_backtest" else 300
            rows.append((f"import of functions/{name} < {limit} ms", f"{med(h['ms']):.0f} ms", med(h["ms"]) < limit))
    if loaded is not None:
        ratio = med(loaded["loader"]) / med(loaded["pyarrow"])
        rows.append(
            (
                f"CSV load + validation ≤ 1.5× bare pyarrow.csv.read_csv ({loaded['rows']:,} rows)",
                f"{ratio:.2f}×",
                ratio <= 1.5,
            )
        )
        faster = med(loaded["loader_parquet"]) < med(loaded["loader"])
        rows.append(
            (
                "Parquet load + validation faster than CSV",
                f"{med(loaded['loader_parquet']):.3f} s vs {med(loaded['loader']):.3f} s",
                faster,
            )
        )
    lines = ["## Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {target} | {measured} | {'met' if ok else '**missed**'} |" for target, measured, ok in rows]
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k/100k bars, fewer runs, no cold/memory/import")
    parser.add_argument("--out", type=Path, help="where to write the report (default bench/RESULTS.md; --quick: none)")
    args = parser.parse_args()
    command = "make bench" if not args.quick else "python bench/run.py --quick"
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    info = machine()
    sizes = throughput(SIZES_QUICK if args.quick else SIZES_FULL)
    cold_res = mem = handlers = None
    overhead = sandbox_overhead()
    loaded = loader(args.quick)
    if not args.quick:
        work = Path(tempfile.mkdtemp(prefix="bench-"))
        try:
            cold_res = cold(work)
            mem = memory(work)
            handlers = handler_imports(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    text = report(info, command, started, sizes, cold_res, mem, handlers, overhead, time.perf_counter() - t0, loaded)
    out = args.out or (None if args.quick else BENCH / "RESULTS.md")
    if out is not None:
        out.write_text(text, encoding="utf-8")
        log(f"wrote {out}")
    print(text)


if __name__ == "__main__":
    main()
