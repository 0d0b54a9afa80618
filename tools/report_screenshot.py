"""`make report-screenshot`: a sample report (and a comparison) as PNG files, for reviewers.

Backtests two example strategies in-process on synthetic data, writes their reports to build/ and
screenshots them whole in headless Chromium (tools/headless.py):

    build/report-sample.html, build/report-screenshot.png
    build/comparison-sample.html, build/comparison-screenshot.png
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from backtest_engine.bars import Bars
from backtest_engine.engine import run_backtest
from backtest_engine.market_data import load_bars
from backtest_engine.models import BacktestRequest
from backtest_engine.report import build_comparison, build_report
from backtest_engine.result import BacktestResult
from tools.headless import CHROMIUM, LAUNCH_ARGS, PAGE_URL

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD = REPO_ROOT / "build"
# (strategy, name, timeframe, parameters): the first is the sample report, all are compared.
SAMPLES: tuple[tuple[str, str, str, dict[str, int]], ...] = (
    ("examples/sma_crossover_event.py", "SMA crossover (event)", "1h", {"fast": 10, "slow": 30}),
    ("examples/rsi_mean_reversion.py", "RSI mean reversion", "4h", {}),
    ("examples/long_short_trend.py", "Long/short trend", "1h", {}),
)


def sample(path: str, name: str, timeframe: str, params: dict[str, int]) -> tuple[BacktestResult, Bars]:
    req = BacktestRequest(
        strategy_code=(REPO_ROOT / path).read_text(encoding="utf-8"),
        symbol="AAPL",
        timeframe=timeframe,
        start_date=date(2023, 1, 1),
        end_date=date(2024, 12, 31),
        parameters=params,
        name=name,
    )
    bars = load_bars(req.symbol, req.timeframe, req.start_date, req.end_date)
    return run_backtest(req, bars=bars), bars


def screenshot(html_path: Path, png_path: Path, width: int) -> None:
    from playwright.sync_api import sync_playwright

    page_html = html_path.read_text(encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            # the page from memory; anything else it asked for would be refused (it asks for nothing)
            page.route(
                "**/*",
                lambda r: (
                    r.fulfill(body=page_html, content_type="text/html") if r.request.url == PAGE_URL else r.abort()
                ),
            )
            page.goto(PAGE_URL)
            page.wait_for_function("window.backtestReport !== undefined")
            page.screenshot(path=str(png_path), full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=BUILD, help="folder for the HTML and PNG files (default build/)")
    p.add_argument("--width", type=int, default=1280, help="viewport width in pixels (default 1280)")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [sample(*s) for s in SAMPLES]
    report, comparison = args.out / "report-sample.html", args.out / "comparison-sample.html"
    result, bars = runs[0]
    report.write_text(build_report(result, bars), encoding="utf-8")
    comparison.write_text(build_comparison([r for r, _ in runs]), encoding="utf-8")
    for html_path, name in ((report, "report-screenshot.png"), (comparison, "comparison-screenshot.png")):
        screenshot(html_path, args.out / name, args.width)
        print(f"{html_path} → {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
