"""Breakout with a stop-loss and a take-profit (event-driven).

Enter long when the close makes a new 20-bar high; the stop sits `stop` below the entry signal's close
and the target `target` above it. Stops trigger on the bar's low/high; a gap fills at the open.
"""


def initialize(ctx):
    ctx.high20 = ctx.indicator(talib.MAX, ctx.data.high, timeperiod=int(ctx.params.get("lookback", 20)))


def on_bar(ctx, bar):
    if ctx.i < 1 or ctx.position != 0:
        return
    if bar.close > ctx.high20[-2]:
        stop = ctx.params.get("stop", 0.02)
        target = ctx.params.get("target", 0.04)
        ctx.buy(sl=bar.close * (1 - stop), tp=bar.close * (1 + target))
