# corpus: data=tsla1h
"""Breakeven stop: enter with a 2-ATR stop and a 4-ATR target; once the price is 1 ATR in profit,
move the stop to the entry price with ctx.set_stops (keeping the target)."""


def initialize(ctx):
    ctx.atr = ctx.indicator(talib.ATR, ctx.data.high, ctx.data.low, ctx.data.close, 14)
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 50)
    ctx.state.update(entry=None, atr=None, tp=None, moved=False)


def on_bar(ctx, bar):
    s = ctx.state
    if ctx.position == 0:
        s.update(entry=None, moved=False)
        if ctx.i > 50 and bar.close > ctx.ema[-1] and ctx.data.close[-2] <= ctx.ema[-2]:
            a = ctx.atr[-1]
            s.update(entry=bar.close, atr=a, tp=bar.close + 4 * a)
            ctx.buy(sl=bar.close - 2 * a, tp=s["tp"])
    elif not s["moved"] and s["entry"] is not None and bar.close > s["entry"] + s["atr"]:
        ctx.set_stops(sl=s["entry"], tp=s["tp"])
        s["moved"] = True
