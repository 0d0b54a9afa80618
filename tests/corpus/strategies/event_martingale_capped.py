# corpus: data=btc15m
"""A capped martingale: after each losing trade the next stake doubles (as a fraction of equity),
reset after a win, never above 80%; entries on RSI dips with fixed sl/tp."""


def initialize(ctx):
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, 14)
    ctx.state.update(stake=0.1, equity_at_entry=None)


def on_bar(ctx, bar):
    s = ctx.state
    if ctx.position == 0 and s["equity_at_entry"] is not None:
        won = ctx.equity > s["equity_at_entry"]
        s["stake"] = 0.1 if won else min(0.8, s["stake"] * 2)
        s["equity_at_entry"] = None
    if ctx.position == 0 and s["equity_at_entry"] is None and ctx.rsi[-1] < 30:
        ctx.buy(size=s["stake"], sl=bar.close * 0.99, tp=bar.close * 1.01)
        s["equity_at_entry"] = ctx.equity
