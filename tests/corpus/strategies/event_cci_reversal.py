# corpus: data=tsla1h
"""CCI reversal: long when CCI crosses back above -100, short when it crosses back below +100;
flat at the zero line."""


def initialize(ctx):
    ctx.cci = ctx.indicator(talib.CCI, ctx.data.high, ctx.data.low, ctx.data.close, timeperiod=20)


def on_bar(ctx, bar):
    c = ctx.cci
    if ctx.i < 21:
        return
    if c[-2] < -100 <= c[-1]:
        ctx.buy()
    elif c[-2] > 100 >= c[-1]:
        ctx.sell()
    elif (ctx.position > 0 and c[-1] > 0 and c[-2] <= 0) or (ctx.position < 0 and c[-1] < 0 and c[-2] >= 0):
        ctx.close()
