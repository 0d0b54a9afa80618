# corpus: data=aapl1h
"""Partial profit taking in shares: buy 40 shares on a pullback in an uptrend, sell 20 at +1.5%,
close the rest on the trend break or at +3%."""


def initialize(ctx):
    ctx.ema20 = ctx.indicator(talib.EMA, ctx.data.close, 20)
    ctx.ema50 = ctx.indicator(talib.EMA, ctx.data.close, 50)
    ctx.state.update(entry=None, partial=False)


def on_bar(ctx, bar):
    s = ctx.state
    if ctx.i < 51:
        return
    if ctx.position == 0:
        s.update(entry=None, partial=False)
        if ctx.ema20[-1] > ctx.ema50[-1] and bar.low < ctx.ema20[-1] < bar.close:
            ctx.buy(size=40)
            s["entry"] = bar.close
        return
    gain = bar.close / s["entry"] - 1
    if not s["partial"] and gain > 0.015:
        ctx.sell(size=20)
        s["partial"] = True
    elif gain > 0.03 or bar.close < ctx.ema50[-1]:
        ctx.close()
