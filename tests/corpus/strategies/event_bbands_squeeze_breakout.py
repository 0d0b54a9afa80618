# corpus: data=eth1h
"""Bollinger squeeze: when the band width is in the lowest 20% of the last 100 bars, trade the
break of the upper or lower band; exit at the middle band."""


def initialize(ctx):
    ctx.upper, ctx.middle, ctx.lower = ctx.indicator(talib.BBANDS, ctx.data.close, 20, 2.0, 2.0)


def on_bar(ctx, bar):
    if ctx.i < 120:
        return
    up, mid, lo = ctx.upper[-100:], ctx.middle[-100:], ctx.lower[-100:]
    width = (up - lo) / mid
    squeezed = width[:-1].min() <= np.percentile(width, 20)
    if ctx.position == 0 and squeezed:
        if bar.close > ctx.upper[-1]:
            ctx.buy()
        elif bar.close < ctx.lower[-1]:
            ctx.sell()
    elif (ctx.position > 0 and bar.close < ctx.middle[-1]) or (ctx.position < 0 and bar.close > ctx.middle[-1]):
        ctx.close()
