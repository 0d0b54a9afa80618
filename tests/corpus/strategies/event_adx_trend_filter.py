# corpus: data=msft1d
"""ADX trend filter: take DI crossovers only when ADX is above 20 and rising."""


def initialize(ctx):
    d = ctx.data
    ctx.adx = ctx.indicator(talib.ADX, d.high, d.low, d.close, timeperiod=14)
    ctx.pdi = ctx.indicator(talib.PLUS_DI, d.high, d.low, d.close, timeperiod=14)
    ctx.mdi = ctx.indicator(talib.MINUS_DI, d.high, d.low, d.close, timeperiod=14)


def on_bar(ctx, bar):
    if ctx.i < 30:
        return
    trending = ctx.adx[-1] > 20 and ctx.adx[-1] > ctx.adx[-5]
    if ctx.pdi[-1] > ctx.mdi[-1] and trending:
        ctx.buy()
    elif ctx.mdi[-1] > ctx.pdi[-1] and trending:
        ctx.sell()
    elif not trending and ctx.adx[-1] < 15:
        ctx.close()
