# corpus: data=btc1h
"""Parabolic SAR as a trailing stop: enter on an EMA trend, then ctx.set_stops(sl=SAR) each bar
while the SAR is on the right side of the price."""


def initialize(ctx):
    ctx.sar = ctx.indicator(talib.SAR, ctx.data.high, ctx.data.low, acceleration=0.02, maximum=0.2)
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 30)


def on_bar(ctx, bar):
    if ctx.i < 31:
        return
    sar = ctx.sar[-1]
    if ctx.position == 0:
        if bar.close > ctx.ema[-1] and sar < bar.low:
            ctx.buy(sl=sar)
    elif ctx.position > 0 and sar < bar.low:
        ctx.set_stops(sl=sar)
