# corpus: data=eth1h
"""Attributes named like the data: ctx.ma, ctx.hist, ctx.signal and a regime label in ctx.style
("trend" or "range"), switching between breakout and reversion rules."""


def initialize(ctx):
    ctx.ma = ctx.indicator(talib.SMA, ctx.data.close, 50)
    macd, signal, hist = ctx.indicator(talib.MACD, ctx.data.close, 12, 26, 9)
    ctx.signal = signal
    ctx.hist = hist
    ctx.adx = ctx.indicator(talib.ADX, ctx.data.high, ctx.data.low, ctx.data.close, 14)
    ctx.style = "range"


def on_bar(ctx, bar):
    if ctx.i < 60:
        return
    ctx.style = "trend" if ctx.adx[-1] > 25 else "range"
    if ctx.style == "trend":
        if ctx.hist[-1] > 0 and bar.close > ctx.ma[-1]:
            ctx.buy()
        elif ctx.hist[-1] < 0:
            ctx.close()
    else:
        if bar.close < ctx.ma[-1] * 0.98:
            ctx.buy()
        elif bar.close > ctx.ma[-1]:
            ctx.close()
