# corpus: data=aapl1h
"""Pyramiding in units: buy 10 shares on each new 10-bar high while in an uptrend, up to 4 adds;
close everything when the close falls below the 20 EMA."""


def initialize(ctx):
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 20)
    ctx.hi = ctx.indicator(talib.MAX, ctx.data.close, 10)
    ctx.state["adds"] = 0


def on_bar(ctx, bar):
    if ctx.i < 21:
        return
    units = int(ctx.params.get("units", 10))
    max_adds = int(ctx.params.get("max_adds", 4))
    if bar.close < ctx.ema[-1]:
        if ctx.position > 0:
            ctx.close()
        ctx.state["adds"] = 0
    elif bar.close >= ctx.hi[-1] and ctx.state["adds"] < max_adds:
        ctx.buy(size=units)
        ctx.state["adds"] += 1
