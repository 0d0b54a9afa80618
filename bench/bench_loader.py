"""The market-data loader against the bare readers, on the same 1,000,000-row OHLCV file (`bench/run.py`'s
"Data loader" section; run alone: `.venv/bin/python bench/bench_loader.py [--rows N] [--runs N]`).

The file: the first N one-minute bars of the synthetic BTCUSD history from 2018-01-01, written by pandas'
`to_csv` (``2018-01-01 00:00:00+00:00,4919.48,...``: ISO times with an offset, full-precision prices), and
the same bars as Parquet (pyarrow, default compression). Timed, in this process, medians of `--runs`
after one warm-up each:

- ``pyarrow``: `pyarrow.csv.read_csv(path)`, types inferred, nothing checked;
- ``pandas``: `pandas.read_csv(path)` (C engine, types inferred: the times stay text), nothing checked;
- ``loader``: `read_csv_bars(path)`: parse (pyarrow's reader), time to UTC nanoseconds, every check
  (missing values, finite, positive, OHLC, volume, sorted, duplicates), calendar and timeframe
  inference, the `Bars`;
- ``loader_parquet``: `read_parquet_bars` of the Parquet copy, the same checks;
- ``npz``: `bars_from_npz` of the validated copy the runner reads (from bytes in memory);
- ``exact``: the exact, cell-by-cell reader (`csv_data._read_exact`: the loader before this one, and
  what an invalid file's errors still come from), one run.

Then `backtest run --data FILE --json > /dev/null` as a whole process (import, load, sandboxed run,
metrics, the JSON result), for both SMA-crossover examples. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm-up: page cache, imports, thread pools
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def cli_run(strategy: str, data: Path, runs: int) -> list[float]:
    cmd = [str(BIN / "backtest"), "run", str(REPO / "examples" / strategy), "--data", str(data), "--json"]
    out = []
    for k in range(runs + 1):  # the first run primes the byte-code cache
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        took = time.perf_counter() - t
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
        if k:
            out.append(took)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-runs", type=int, default=2)
    parser.add_argument("--no-exact", action="store_true", help="skip the exact reader (10-25 s per 1M rows)")
    args = parser.parse_args()

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from backtest_engine import csv_data
    from backtest_engine.bar_files import bars_from_npz, bars_to_npz, read_parquet_bars
    from backtest_engine.csv_data import read_csv_bars
    from backtest_engine.market_data import load_bars

    work = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    try:
        bars = load_bars("BTCUSD", "1m", date(2018, 1, 1), date(2019, 12, 31)).slice(0, args.rows)
        csv_path, parquet_path = work / "bars.csv", work / "bars.parquet"
        frame = bars.to_frame()
        frame.to_csv(csv_path)
        pq.write_table(pa.Table.from_pandas(frame.reset_index(), preserve_index=False), parquet_path)
        npz = bars_to_npz(bars)
        print(f"[bench loader] {args.rows:,} rows: CSV {csv_path.stat().st_size / 1e6:.1f} MB", file=sys.stderr)

        loaded = read_csv_bars(csv_path)
        assert len(loaded) == len(bars) and (loaded.close == bars.close).all(), "the loader changed the bars"
        result: dict[str, Any] = {
            "rows": args.rows,
            "csv_mb": csv_path.stat().st_size / 1e6,
            "parquet_mb": parquet_path.stat().st_size / 1e6,
            "npz_mb": len(npz) / 1e6,
            "pyarrow": timed(lambda: pacsv.read_csv(csv_path), args.runs),
            "pandas": timed(lambda: pd.read_csv(csv_path), args.runs),
            "loader": timed(lambda: read_csv_bars(csv_path), args.runs),
            "loader_parquet": timed(lambda: read_parquet_bars(parquet_path), args.runs),
            "npz": timed(lambda: bars_from_npz(npz), args.runs),
            "pyarrow_version": pa.__version__,
            "pandas_version": pd.__version__,
        }
        for name in ("pyarrow", "pandas", "loader", "loader_parquet", "npz"):
            print(f"[bench loader] {name}: median {statistics.median(result[name]):.3f} s", file=sys.stderr)
        if not args.no_exact:
            t = time.perf_counter()
            csv_data._read_exact(csv_path, symbol="CUSTOM", lot_size=1.0, periods_per_year=None, timeframe=None)
            result["exact"] = [time.perf_counter() - t]
            print(f"[bench loader] exact: {result['exact'][0]:.1f} s", file=sys.stderr)
        result["cli"] = {
            style: cli_run(f"sma_crossover_{style}.py", csv_path, args.cli_runs) for style in ("vectorized", "event")
        }
        for style, runs in result["cli"].items():
            print(f"[bench loader] backtest run --data ({style}): {statistics.median(runs):.2f} s", file=sys.stderr)
    finally:
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
