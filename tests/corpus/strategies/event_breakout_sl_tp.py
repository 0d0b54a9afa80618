# corpus: data=eth1h
"""20-bar breakout with a fixed stop-loss and take-profit set at entry (sl=, tp= prices)."""


def initialize(ctx):
    ctx.high20 = ctx.indicator(talib.MAX, ctx.data.high, timeperiod=20)
    ctx.low20 = ctx.indicator(talib.MIN, ctx.data.low, timeperiod=20)


def on_bar(ctx, bar):
    if ctx.i < 21 or ctx.position != 0:
        return
    stop_pct = ctx.params.get("stop", 0.02)
    target_pct = ctx.params.get("target", 0.04)
    if bar.close > ctx.high20[-2]:
        ctx.buy(sl=bar.close * (1 - stop_pct), tp=bar.close * (1 + target_pct))
    elif bar.close < ctx.low20[-2]:
        ctx.sell(sl=bar.close * (1 + stop_pct), tp=bar.close * (1 - target_pct))
