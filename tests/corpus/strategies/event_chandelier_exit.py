# corpus: data=btc1d
"""Chandelier exit: long on a 55-day high; the stop trails at the highest high since entry minus
3 ATR, updated with ctx.set_stops every bar."""


def initialize(ctx):
    ctx.atr = ctx.indicator(talib.ATR, ctx.data.high, ctx.data.low, ctx.data.close, 22)
    ctx.hh55 = ctx.indicator(talib.MAX, ctx.data.high, 55)
    ctx.state["highest"] = None


def on_bar(ctx, bar):
    if ctx.i < 56:
        return
    if ctx.position == 0:
        ctx.state["highest"] = None
        if bar.close >= ctx.hh55[-2]:
            ctx.buy(sl=bar.close - 3 * ctx.atr[-1])
            ctx.state["highest"] = bar.high
        return
    ctx.state["highest"] = max(ctx.state["highest"] or bar.high, bar.high)
    ctx.set_stops(sl=ctx.state["highest"] - 3 * ctx.atr[-1])
