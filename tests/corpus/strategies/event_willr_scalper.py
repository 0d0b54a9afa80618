# corpus: data=btc15m
"""Williams %R scalper with a take-profit and stop in percent, and a 12-bar time stop."""


def initialize(ctx):
    ctx.wr = ctx.indicator(talib.WILLR, ctx.data.high, ctx.data.low, ctx.data.close, timeperiod=14)
    ctx.state["since"] = 0


def on_bar(ctx, bar):
    if ctx.position != 0:
        ctx.state["since"] += 1
        if ctx.state["since"] >= 12:
            ctx.close()
        return
    ctx.state["since"] = 0
    if ctx.i > 15 and ctx.wr[-1] < -90:
        ctx.buy(sl=bar.close * 0.99, tp=bar.close * 1.006)
