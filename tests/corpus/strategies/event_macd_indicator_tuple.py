# corpus: data=btc1h
"""MACD via ctx.indicator (a tuple of three series): long on the signal-line cross above zero,
short on the cross below zero."""


def initialize(ctx):
    ctx.macd, ctx.signal, ctx.hist = ctx.indicator(
        talib.MACD, ctx.data.close, fastperiod=12, slowperiod=26, signalperiod=9
    )


def on_bar(ctx, bar):
    if ctx.i < 35:
        return
    crossed_up = ctx.hist[-2] <= 0 < ctx.hist[-1]
    crossed_down = ctx.hist[-2] >= 0 > ctx.hist[-1]
    if crossed_up and ctx.macd[-1] < 0:
        ctx.buy()
    elif crossed_down and ctx.macd[-1] > 0:
        ctx.sell()
    elif ctx.position > 0 and crossed_down or ctx.position < 0 and crossed_up:
        ctx.close()
