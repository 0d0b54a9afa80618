"""Human-readable rendering of a backtest result: the metrics table and the trade summary."""

from __future__ import annotations

from typing import Any

from backtest_engine.metric_definitions import HEADLINE_METRICS

# The headline metrics, in the order a person reads them; `render_metrics(full=True)` shows all.
HEADLINE = HEADLINE_METRICS


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.4g}" if abs(value) < 0.01 else f"{value:.2f}"
    return str(value)


def render_metrics(result: dict[str, Any], *, full: bool = False, names: dict[str, str] | None = None) -> str:
    metrics: dict[str, Any] = result["performance_metrics"]
    notes: dict[str, str] = result.get("metric_notes", {})
    keys = list(metrics) if full else [k for k in HEADLINE if k in metrics]
    names = names or {}
    width = max((len(names.get(k, k)) for k in keys), default=10)
    lines = []
    for key in keys:
        value = metrics[key]
        note = f"  ({notes[key]})" if value is None and key in notes else ""
        lines.append(f"  {names.get(key, key):<{width}}  {_fmt(value):>14}{note}")
    return "\n".join(lines)


def render_summary(result: dict[str, Any]) -> str:
    req = result["request"]
    stats = result["market_data_stats"]
    ts = result["trade_summary"]
    span = stats.get("date_range") or {}
    out = [
        f"{req.get('name') or 'backtest'}: {req['symbol']} {req['timeframe']} "
        f"{span.get('start', '?')} .. {span.get('end', '?')} ({stats['data_points']:,} bars, {result['style']} style)",
        "",
        "Performance",
        render_metrics(result),
        "",
        "Trades",
        f"  total {ts['total_trades']}, winning {ts['winning_trades']}, losing {ts['losing_trades']}, "
        f"long {ts['long_trades']}, short {ts['short_trades']}, "
        f"closed by end of data {ts['closed_by_end_of_data']}",
        f"  gross profit {_fmt(ts['gross_profit'])}, gross loss {_fmt(ts['gross_loss'])}, "
        f"commission {_fmt(ts['total_commission'])}",
    ]
    if result.get("logs"):
        out += ["", f"Strategy log ({len(result['logs'])} lines, last 5)"] + [
            f"  {line}" for line in result["logs"][-5:]
        ]
    timings = result.get("timings") or {}
    if timings:
        out += [
            "",
            "Timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()),
            f"Engine {result['engine_version']}, data {result['data_fingerprint']}",
        ]
    return "\n".join(out)
