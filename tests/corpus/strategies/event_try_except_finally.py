# corpus: data=aapl1h
"""Defensive event code: try/except around a computation that can fail early in the history,
type(e).__name__ logged once per error type, a finally that counts processed bars."""


def initialize(ctx):
    ctx.state["errors"] = set()
    ctx.state["bars"] = 0


def on_bar(ctx, bar):
    try:
        closes = ctx.data.close[-30:]
        if len(closes) < 30:
            raise ValueError("not enough history")
        ratio = closes[-1] / (closes[:-1].mean() - closes[0] + closes[0])
        if ratio > 1.01:
            ctx.buy()
        elif ratio < 0.995:
            ctx.close()
    except (ValueError, ZeroDivisionError) as e:
        name = type(e).__name__
        if name not in ctx.state["errors"]:
            ctx.state["errors"].add(name)
            ctx.log(f"skipped bar {bar.index}: {name}: {e}")
    finally:
        ctx.state["bars"] += 1
