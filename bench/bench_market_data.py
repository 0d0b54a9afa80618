"""Speed and memory of the synthetic market data: bars per second and peak memory.

Run: `.venv/bin/python bench/bench_market_data.py`. Prints, for each scenario, the best of a few runs
(the daily path of each symbol is cached after its first use; the cold time includes it), the bars per
second, the peak memory the call allocated (tracemalloc, numpy included) and, at the end, the peak RSS of
the whole process. The catalog's history spans 8 years (2018-2025), so "10 years of 1-minute equities"
is measured as 10 symbol-years: AAPL 2018-2025 plus MSFT 2024-2025.
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date

from backtest_engine.market_data import load_bars


def one_year_crypto() -> int:
    return len(load_bars("BTCUSD", "1m", date(2023, 1, 1), date(2023, 12, 31)))


def ten_years_equity() -> int:
    a = load_bars("AAPL", "1m", date(2018, 1, 1), date(2025, 12, 31))
    b = load_bars("MSFT", "1m", date(2024, 1, 1), date(2025, 12, 31))
    return len(a) + len(b)


def eight_years_crypto_daily() -> int:
    return len(load_bars("ETHUSD", "1d", date(2018, 1, 1), date(2025, 12, 31)))


def one_year_crypto_hourly() -> int:
    return len(load_bars("ETHUSD", "1h", date(2023, 1, 1), date(2023, 12, 31)))


SCENARIOS: list[tuple[str, Callable[[], int]]] = [
    ("1 year of 1m crypto (BTCUSD 2023)", one_year_crypto),
    ("10 symbol-years of 1m equities (AAPL 2018-2025 + MSFT 2024-2025)", ten_years_equity),
    ("8 years of 1d crypto from 4.2M minutes (ETHUSD)", eight_years_crypto_daily),
    ("1 year of 1h crypto from 525k minutes (ETHUSD 2023)", one_year_crypto_hourly),
]


def measure(run: Callable[[], int], repeats: int = 3) -> tuple[float, float, int]:
    start = time.perf_counter()
    bars = run()
    cold = time.perf_counter() - start
    best = cold
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return cold, best, bars


def peak_allocated(run: Callable[[], int]) -> float:
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    print(f"{'scenario':<70} {'bars':>10} {'cold s':>8} {'best s':>8} {'bars/s':>12} {'peak MB':>8}")
    for name, run in SCENARIOS:
        cold, best, bars = measure(run)
        peak = peak_allocated(run)
        print(f"{name:<70} {bars:>10,} {cold:>8.3f} {best:>8.3f} {bars / best:>12,.0f} {peak / 1e6:>8.1f}")
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux (bytes on macOS)
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024
    print(f"peak RSS of the process: {rss_kib * scale:.0f} MiB")


if __name__ == "__main__":
    main()
