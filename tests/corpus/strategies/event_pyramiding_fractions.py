# corpus: data=btc1h
"""Scale in with fractions of equity: 25% on the first signal and 25% more on each higher close of
the trend (size=0.25), at most four tranches; scale out in halves below the slow EMA."""


def initialize(ctx):
    ctx.fast = ctx.indicator(talib.EMA, ctx.data.close, 12)
    ctx.slow = ctx.indicator(talib.EMA, ctx.data.close, 48)
    ctx.state.update(tranches=0, last_add=None)


def on_bar(ctx, bar):
    if ctx.i < 49:
        return
    s = ctx.state
    if ctx.fast[-1] > ctx.slow[-1]:
        if s["tranches"] < 4 and (s["last_add"] is None or bar.close > s["last_add"] * 1.01):
            ctx.buy(size=0.25)
            s["tranches"] += 1
            s["last_add"] = bar.close
    elif bar.close < ctx.slow[-1] and ctx.position > 0:
        half_value = ctx.position * bar.close / 2
        if half_value < 0.05 * ctx.equity:
            ctx.close()
        else:
            ctx.sell(size=half_value / ctx.equity)  # a fraction of equity: half of what is held
        s["tranches"] = 0
        s["last_add"] = None
