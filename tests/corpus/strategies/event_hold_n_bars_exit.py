# corpus: data=tsla1h
"""Time-based exit: buy an oversold RSI(2) and hold exactly N bars, whatever happens."""


def initialize(ctx):
    ctx.rsi2 = ctx.indicator(talib.RSI, ctx.data.close, 2)
    ctx.trend = ctx.indicator(talib.SMA, ctx.data.close, 100)
    ctx.state["entry_bar"] = None


def on_bar(ctx, bar):
    hold = int(ctx.params.get("hold_bars", 5))
    entry = ctx.state["entry_bar"]
    if entry is not None:
        if bar.index - entry >= hold:
            ctx.close()
            ctx.state["entry_bar"] = None
        return
    if ctx.i > 100 and ctx.rsi2[-1] < 10 and bar.close > ctx.trend[-1] * 0.97:
        ctx.buy()
        ctx.state["entry_bar"] = bar.index
