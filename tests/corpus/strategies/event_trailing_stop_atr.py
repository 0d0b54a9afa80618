# corpus: data=btc1h
"""Trend entry with an ATR trailing stop: enter on a 50-bar high, start with a 3-ATR stop and move it
up with ctx.set_stops as the price rises (never down)."""


def initialize(ctx):
    ctx.atr = ctx.indicator(talib.ATR, ctx.data.high, ctx.data.low, ctx.data.close, timeperiod=14)
    ctx.hh = ctx.indicator(talib.MAX, ctx.data.high, timeperiod=50)
    ctx.state["stop"] = None


def on_bar(ctx, bar):
    if ctx.i < 51 or np.isnan(ctx.atr[-1]):
        return
    mult = ctx.params.get("atr_mult", 3.0)
    if ctx.position == 0:
        ctx.state["stop"] = None
        if bar.close >= ctx.hh[-2]:
            stop = bar.close - mult * ctx.atr[-1]
            ctx.buy(sl=stop)
            ctx.state["stop"] = stop
    else:
        candidate = bar.close - mult * ctx.atr[-1]
        if ctx.state["stop"] is None or candidate > ctx.state["stop"]:
            ctx.state["stop"] = candidate
            ctx.set_stops(sl=candidate)
