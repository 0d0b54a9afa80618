# corpus: data=btc1h
"""Long/short EMA trend: ctx.buy() above, ctx.sell() below (the all-in target flips the position)."""


def initialize(ctx):
    ctx.fast = ctx.indicator(talib.EMA, ctx.data.close, 20)
    ctx.slow = ctx.indicator(talib.EMA, ctx.data.close, 60)


def on_bar(ctx, bar):
    if np.isnan(ctx.slow[-1]):
        return
    if ctx.fast[-1] > ctx.slow[-1]:
        ctx.buy()
    elif ctx.fast[-1] < ctx.slow[-1]:
        ctx.sell()
