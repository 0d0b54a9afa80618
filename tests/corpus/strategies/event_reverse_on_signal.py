# corpus: data=eth1h
"""Stop-and-reverse with fractional targets: ctx.target(0.8) on a bullish Donchian break,
ctx.target(-0.8) on a bearish one, never flat once started."""


def initialize(ctx):
    ctx.hi = ctx.indicator(talib.MAX, ctx.data.high, 30)
    ctx.lo = ctx.indicator(talib.MIN, ctx.data.low, 30)


def on_bar(ctx, bar):
    if ctx.i < 31:
        return
    if bar.close > ctx.hi[-2]:
        ctx.target(0.8)
    elif bar.close < ctx.lo[-2]:
        ctx.target(-0.8)
