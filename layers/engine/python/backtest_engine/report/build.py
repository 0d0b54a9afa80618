"""`build_report` (one backtest) and `build_comparison` (several side by side): the whole HTML page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backtest_engine.bars import Bars
from backtest_engine.metric_definitions import HEADLINE_METRICS, METRIC_DEFINITIONS, MetricDefinition
from backtest_engine.report import series
from backtest_engine.report.page import (
    UPLOT_VERSION,
    document,
    esc,
    fmt_metric,
    fmt_number,
    heat_color,
    iso,
    sign_class,
    table,
)
from backtest_engine.report.stored import RunCurve, run_curve
from backtest_engine.result import BacktestResult

MAX_TRADES = 500
MAX_LOG_LINES = 200
COMPARISON_POINTS = 2_000  # per run
_DEFINITIONS: dict[str, MetricDefinition] = {d.key: d for d in METRIC_DEFINITIONS}
_CATEGORY_TITLES = {
    "returns": "Returns",
    "risk": "Risk",
    "drawdown": "Drawdown",
    "risk_adjusted": "Risk-adjusted",
    "benchmark": "Benchmark",
    "trades": "Trades",
    "activity": "Activity",
}
_SIGNED_CATEGORIES = ("returns", "drawdown", "benchmark")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def build_report(
    result: BacktestResult, bars: Bars, *, max_trades: int = MAX_TRADES, max_log_lines: int = MAX_LOG_LINES
) -> str:
    """The report of one backtest as one self-contained HTML page (no network: scripts and data inline).

    `bars` are the bars the backtest ran on (buy-and-hold and the price chart read them); the trade list
    shows the first `max_trades` trades and the log its first `max_log_lines` lines, each with a note
    when cut."""
    req = result.request
    ec = result.equity_curve
    capital = float(req.get("initial_capital") or (ec.equity[0] if len(ec) else 1.0))
    close = bars.close if len(bars) == len(ec) else None
    panel = series.equity_panel(ec.time, ec.equity, ec.drawdown_pct, close, capital)
    worst = series.worst_drawdowns(ec.time, ec.drawdown_pct)
    price = series.price_panel(bars.times, bars.close, result.trades)
    monthly = series.monthly_returns(ec.time, ec.equity, capital)
    rolling = series.rolling_risk(ec.time, ec.equity, capital, result.periods_per_year)
    histogram = series.trade_histogram(result.trades.return_pct)
    pnl = series.trade_pnl(result.trades.exit_time, result.trades.pnl)
    symbol = str(req.get("symbol") or bars.symbol)
    data = {
        "kind": "report",
        "symbol": symbol,
        "equity": panel.to_json(),
        "worst_drawdowns": worst,
        "price": price,
        "rolling": rolling,
        "histogram": histogram,
        "trade_pnl": pnl,
        # the listed trades' entry and exit times: a click on a row zooms the time charts to that trade
        "trade_spans": {
            "entry": series.seconds(result.trades.entry_time[:max_trades]),
            "exit": series.seconds(result.trades.exit_time[:max_trades]),
        },
    }
    metrics = result.performance_metrics
    title = str(req.get("name") or "Backtest")
    stats = result.market_data_stats
    span = stats.date_range
    n_trades = len(result.trades)
    body = [
        "<header>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{esc(symbol)} · {esc(req.get('timeframe', bars.timeframe))} · "
        f"{esc(span.start[:10] if span else '?')} to {esc(span.end[:10] if span else '?')} · "
        f"{stats.data_points:,} bars · {esc(result.style)} strategy · {n_trades:,} trades</p>",
        _nav(
            [
                ("equity", "Equity"),
                ("drawdown", "Drawdown"),
                ("price", "Price & trades"),
                ("monthly", "Monthly returns"),
                ("trade-stats", "Trade returns"),
                ("rolling", "Rolling risk"),
                ("trades", "Trades"),
                ("metrics", "All metrics"),
                ("run", "Run"),
                ("log", "Log"),
            ]
        ),
        "</header>",
        _headline(metrics),
        _section(
            "equity",
            "Equity against buy-and-hold",
            '<div class="controls"><label><input type="checkbox" id="log-scale"> log scale</label> · '
            "drag to zoom (the time charts zoom together), double-click to reset</div>"
            + _chart("chart-equity", 320)
            + _note(
                f"Buy-and-hold: {esc(symbol)} bought at the first close with the same capital, no costs. "
                + _downsample_note(panel.bars, int(panel.index.shape[0]))
            ),
        ),
        _section(
            "drawdown",
            "Drawdown (underwater)",
            _chart("chart-drawdown", 200) + _worst_drawdowns_table(worst),
        ),
        _section(
            "price",
            "Price with entries and exits",
            _chart("chart-price", 320)
            + '<div class="legend-static"><span><span class="g-up">▲</span> long entry</span>'
            '<span><span class="g-down">▼</span> short entry</span><span><span class="g-win">●</span> exit, won</span>'
            '<span><span class="g-loss">●</span> exit, lost</span></div>'
            + _note(
                _downsample_note(price["bars"], len(price["time"]))
                + (
                    f" Markers: the first {price['marked']:,} of {n_trades:,} trades."
                    if price["marked"] < n_trades
                    else ""
                )
            ),
        ),
        _section("monthly", "Monthly returns", _monthly_table(monthly)),
        _section(
            "trade-stats",
            "Trade returns",
            '<div class="row2"><div><h3>Distribution of trade returns</h3>'
            + (_chart("chart-trade-returns", 240) if histogram["counts"] else _note("No trades."))
            + "</div><div><h3>P&amp;L per trade at its exit</h3>"
            + (_chart("chart-trade-pnl", 240) if n_trades else _note("No trades."))
            + (
                _note(f"{pnl['points']:,} of {n_trades:,} trades drawn (each bucket's first, lowest and highest).")
                if pnl["points"] < n_trades
                else ""
            )
            + "</div></div>",
        ),
        _section(
            "rolling",
            "Rolling Sharpe ratio and volatility",
            (
                _chart("chart-rolling", 240)
                + _note(
                    f"Over {rolling['window']} daily returns (annualized with {result.periods_per_year} periods a "
                    "year, risk-free rate 0), as the Sharpe ratio and volatility metrics compute them."
                )
            )
            if len(rolling["time"])
            else _note(f"{rolling['days']} daily return(s): too few for a rolling window."),
        ),
        _section("trades", "Trades", _trades_table(result, max_trades)),
        _section("metrics", "Every metric and its definition", _metrics_table(metrics, result.metric_notes)),
        _section("run", "The run", _run_details(result, bars)),
        _section("log", "Strategy log", _log(result.logs, max_log_lines)),
        _footer(result),
    ]
    return document(f"{title} · {symbol} backtest report", "".join(body), data)


def build_comparison(
    results: Sequence[Mapping[str, Any] | BacktestResult],
    *,
    labels: Sequence[str] | None = None,
    points: int = COMPARISON_POINTS,
) -> str:
    """Several backtests side by side: their equity (growth of 100) and drawdown curves on one time axis
    and their metrics in one table. Each result is a `BacktestResult` or its stored JSON (as `backtest run
    --json` writes it and the result store keeps it)."""
    if not results:
        raise ValueError("build_comparison needs at least one result")
    curves: list[RunCurve] = []
    for k, r in enumerate(results):
        label = labels[k] if labels is not None and k < len(labels) else None
        curves.append(run_curve(r, label=label or f"{k + 1}", points=points))
    data = {
        "kind": "comparison",
        "runs": [
            {"label": c.label, "time": c.time, "growth": c.growth, "drawdown_pct": c.drawdown_pct} for c in curves
        ],
    }
    head = [""] + [f"<span>{esc(c.label)}</span>" for c in curves]
    req_rows = [
        ["Symbol", *(esc(c.request.get("symbol", "?")) for c in curves)],
        ["Timeframe", *(esc(c.request.get("timeframe", "?")) for c in curves)],
        ["Period", *(esc(f"{c.request.get('start_date', '?')} to {c.request.get('end_date', '?')}") for c in curves)],
        ["Initial capital", *(fmt_number(c.request.get("initial_capital")) for c in curves)],
        ["Commission", *(esc(c.request.get("commission", "?")) for c in curves)],
        ["Slippage", *(esc(c.request.get("slippage", "?")) for c in curves)],
        ["Parameters", *(_params(c.request.get("parameters")) for c in curves)],
        ["Bars", *(f"{c.bars:,}" for c in curves)],
        ["Engine", *(esc(c.engine_version) for c in curves)],
        ["Data fingerprint", *(f"<code>{esc(c.data_fingerprint)}</code>" for c in curves)],
    ]
    rows = [_compare_row(key, [c.metrics for c in curves]) for key in HEADLINE_METRICS]
    rest = [
        _compare_row(d.key, [c.metrics for c in curves]) for d in METRIC_DEFINITIONS if d.key not in HEADLINE_METRICS
    ]
    body = (
        "<header><h1>Comparison of "
        + f"{len(curves)} backtest{'s' if len(curves) != 1 else ''}</h1>"
        + "<p>"
        + " · ".join(esc(c.label) for c in curves)
        + "</p></header>"
        + _section(
            "equity",
            "Growth of 100",
            '<div class="controls"><label><input type="checkbox" id="log-scale"> log scale</label> · '
            "drag to zoom, double-click to reset</div>"
            + _chart("chart-compare-equity", 340)
            + _note(
                "Each run's equity divided by its initial capital, times 100. Curves drawn from at most "
                f"{points:,} points per run (each bucket's first, lowest and highest kept)."
            ),
        )
        + _section("drawdown", "Drawdown", _chart("chart-compare-drawdown", 220))
        + _section(
            "metrics",
            "Headline metrics",
            table(head, rows, cls="compare metrics", text_columns=[0])
            + _note("Bold: the best of the row, where higher or lower is better.")
            + "<details><summary>Every other metric</summary>"
            + table(head, rest, cls="compare metrics", text_columns=[0])
            + "</details>",
        )
        + _section("runs", "The runs", table(head, req_rows, cls="compare", text_columns=list(range(len(head)))))
        + f"<footer>uPlot {UPLOT_VERSION} · built by backtest_engine.report</footer>"
    )
    return document("Backtest comparison", body, data)


# ---- parts ---------------------------------------------------------------------------------------------


def _nav(items: list[tuple[str, str]]) -> str:
    return "<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in items) + "</nav>"


def _section(anchor: str, title: str, inner: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{inner}</section>'


def _chart(element_id: str, height: int) -> str:
    return f'<div class="chart" id="{esc(element_id)}" data-chart data-height="{height}"></div>'


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>' if text else ""


def _downsample_note(bars: int, points: int) -> str:
    if points >= bars:
        return f"Every one of the {bars:,} bars drawn."
    return (
        f"{bars:,} bars drawn as {points:,} points: each bucket's first, lowest and highest value kept, so every "
        "peak and trough (and the maximum drawdown) is exact."
    )


def _headline(metrics: Mapping[str, Any]) -> str:
    cards = []
    for key in HEADLINE_METRICS:
        if key not in metrics or key not in _DEFINITIONS:
            continue
        d = _DEFINITIONS[key]
        value = metrics[key]
        # returns and drawdowns read by their sign (green gains, red losses); other numbers stay neutral
        cls = sign_class(value) if d.unit == "percent" and d.category in _SIGNED_CATEGORIES else ""
        cards.append(
            f'<div class="card" title="{esc(d.description)}"><div class="label"><a href="#metric-{esc(key)}">'
            f'{esc(d.name)}</a></div><div class="value {cls}">{esc(fmt_metric(value, d.unit))}</div></div>'
        )
    return '<div class="cards" id="headline">' + "".join(cards) + "</div>"


def _worst_drawdowns_table(worst: list[dict[str, Any]]) -> str:
    if not worst:
        return _note("Equity never fell below its running peak.")
    rows = [
        [
            str(k + 1),
            fmt_number(w["depth_pct"]) + "%",
            esc(iso(w["peak_time"])),
            esc(iso(w["trough_time"])),
            esc(iso(w["end_time"])) if w["recovered"] else "not recovered",
            fmt_number(w["days"], 1),
        ]
        for k, w in enumerate(worst)
    ]
    return "<h3>Worst drawdowns (shaded and numbered in the charts)</h3>" + table(
        ["#", "Depth", "Peak", "Trough", "Recovered", "Days"], rows, text_columns=[2, 3, 4]
    )


def _monthly_table(monthly: dict[str, Any]) -> str:
    if not monthly["years"]:
        return _note("No bars.")
    values = [v for row in monthly["months"] for v in row if v is not None]
    scale = float(np.percentile(np.abs(values), 95)) if values else 0.0
    year_values = [v for v in monthly["year_total"] if v is not None]
    year_scale = max((abs(v) for v in year_values), default=0.0)
    head = ["Year", *_MONTHS, "Year"]
    rows = []
    for year, row, total in zip(monthly["years"], monthly["months"], monthly["year_total"], strict=True):
        cells = [f"<th>{year}</th>"]
        for m, v in enumerate(row):
            title = f"{_MONTHS[m]} {year}: " + ("no bars" if v is None else f"{v:.2f}%")
            style = heat_color(v, scale)
            cells.append(
                f'<td title="{esc(title)}"'
                + (f' style="{style}" data-value="{v:.6g}"' if v is not None else "")
                + f">{'' if v is None else f'{v:.1f}'}</td>"
            )
        style = heat_color(total, year_scale)
        shown = "" if total is None else f"{total:.1f}"
        cells.append(f'<td class="total" style="{style}">{shown}</td>' if style else f'<td class="total">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    th = "".join(f"<th>{h}</th>" for h in head)
    return (
        f'<table class="heatmap" id="monthly-returns"><thead><tr>{th}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        + _note(
            "Percent. Each month's last equity against the previous month's (the first against the initial "
            "capital); the year column compounds its months. UTC calendar months."
        )
    )


def _trades_table(result: BacktestResult, max_trades: int) -> str:
    n = len(result.trades)
    if n == 0:
        return _note("No trades.")
    shown = result.trades.rows(0, max_trades)
    rows = []
    for k, t in enumerate(shown):
        rows.append(
            [
                str(k + 1),
                esc(t["side"]),
                esc(str(t["entry_time"]).replace("T", " ").rstrip("Z")),
                fmt_number(t["entry_price"], 4),
                esc(str(t["exit_time"]).replace("T", " ").rstrip("Z")),
                fmt_number(t["exit_price"], 4),
                fmt_number(t["size"], 4),
                f'<span class="{sign_class(t["pnl"])}">{fmt_number(t["pnl"])}</span>',
                f'<span class="{sign_class(t["return_pct"])}">{fmt_number(t["return_pct"])}%</span>',
                fmt_number(t["commission"]),
                fmt_number(t["bars_held"]),
                esc(str(t["exit_reason"]).replace("_", " ")),
            ]
        )
    cut = (
        _note(f"The first {len(shown):,} of {n:,} trades; the full list is in the result JSON.")
        if len(shown) < n
        else _note(f"All {n:,} trades.")
    ) + _note("Click a trade to zoom the charts to it (double-click a chart to zoom out).")
    head = ["#", "Side", "Entry (UTC)", "Entry price", "Exit (UTC)", "Exit price", "Size", "P&amp;L", "Return",
            "Commission", "Bars", "Exit reason"]  # fmt: skip
    return cut + '<div class="scroll">' + table(head, rows, cls="trades", text_columns=[1, 2, 4, 11]) + "</div>"


def _metrics_table(metrics: Mapping[str, Any], notes: Mapping[str, str]) -> str:
    rows = []
    category = None
    for d in METRIC_DEFINITIONS:
        if d.category != category:
            category = d.category
            rows.append(
                f'<tr class="category"><th colspan="5">{esc(_CATEGORY_TITLES.get(category, category))}</th></tr>'
            )
        value = metrics.get(d.key)
        shown = esc(fmt_metric(value, d.unit))
        if value is None and d.key in notes:
            shown += f'<div class="note">{esc(notes[d.key])}</div>'
        direction = {True: "higher is better", False: "lower is better", None: ""}[d.higher_is_better]
        rows.append(
            f'<tr id="metric-{esc(d.key)}"><td class="text"><b>{esc(d.name)}</b><div class="note"><code>'
            f"{esc(d.key)}</code> · {esc(d.unit)}{' · ' + direction if direction else ''}</div></td>"
            f'<td>{shown}</td><td class="desc">{esc(d.description)}</td>'
            f'<td class="formula">{esc(d.formula)}</td></tr>'
        )
    head = (
        '<thead><tr><th class="text">Metric</th><th>Value</th><th class="text">Definition</th>'
        '<th class="text">Formula</th></tr></thead>'
    )
    return f'<table class="metrics" id="metric-definitions">{head}<tbody>{"".join(rows)}</tbody></table>' + _note(
        "Daily returns r: the last equity of each UTC day against the day before (the first day against "
        "the initial capital); N: periods per year; risk-free rate 0. The same definitions as "
        "GET /api/backtest/performance-metrics/definitions."
    )


def _params(params: Any) -> str:
    if not params:
        return "none"
    return "<br>".join(f"<code>{esc(k)}</code> = <code>{esc(v)}</code>" for k, v in dict(params).items())


def _run_details(result: BacktestResult, bars: Bars) -> str:
    req = result.request
    stats = result.market_data_stats
    span = stats.date_range
    items = [
        ("Name", esc(req.get("name") or "–")),
        ("Symbol", esc(req.get("symbol", bars.symbol))),
        ("Timeframe", esc(req.get("timeframe", bars.timeframe))),
        ("Requested period", esc(f"{req.get('start_date', '?')} to {req.get('end_date', '?')}")),
        ("Bars", f"{stats.data_points:,}" + (esc(f" ({span.start} to {span.end})") if span else "")),
        ("Data source", esc(stats.source or bars.source)),
        ("Initial capital", fmt_number(req.get("initial_capital"))),
        ("Commission", esc(f"{req.get('commission')} of each fill's notional")),
        ("Slippage", esc(f"{req.get('slippage')} against the trader")),
        ("Parameters", _params(req.get("parameters"))),
        ("Strategy style", esc(result.style)),
        ("Periods per year", str(result.periods_per_year)),
        ("Engine version", esc(result.engine_version)),
        ("Data fingerprint", f"<code>{esc(result.data_fingerprint)}</code>"),
    ]
    if result.timings:
        items.append(("Timings", esc(", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items()))))
    dl = '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"
    code = req.get("strategy_code")
    if code:
        dl += f"<details><summary>Strategy code</summary><pre>{esc(code)}</pre></details>"
    return dl


def _log(lines: Sequence[str], max_lines: int) -> str:
    if not lines:
        return _note("The strategy logged nothing.")
    shown = lines[:max_lines]
    cut = (
        _note(f"The first {len(shown):,} of {len(lines):,} lines; the full log is in the result JSON.")
        if len(shown) < len(lines)
        else _note(f"All {len(lines):,} lines.")
    )
    return cut + '<pre id="strategy-log">' + "\n".join(esc(line) for line in shown) + "</pre>"


def _footer(result: BacktestResult) -> str:
    return (
        f"<footer>backtest engine {esc(result.engine_version)} · data {esc(result.data_fingerprint)} · charts: "
        f"uPlot {UPLOT_VERSION} (inlined; this file loads nothing from the network)</footer>"
    )


def _compare_row(key: str, metrics: list[Mapping[str, Any]]) -> list[str]:
    d = _DEFINITIONS[key]
    values = [m.get(key) for m in metrics]
    numeric = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    best = None
    if d.higher_is_better is not None and len(numeric) > 1 and len(set(numeric)) > 1:
        best = max(numeric) if d.higher_is_better else min(numeric)
    cells = [f'<a title="{esc(d.description)}">{esc(d.name)}</a>']
    for v in values:
        text = esc(fmt_metric(v, d.unit))
        cells.append(f'<span class="best">{text}</span>' if best is not None and v == best else text)
    return cells
