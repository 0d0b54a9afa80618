# corpus: data=msft1d
"""Turtle system: 1%-risk units in shares sized by ATR (N), entries on a 20-day high, adds every N/2
up to 4 units, a 2N stop under the last add, exits on the 10-day low."""


def initialize(ctx):
    ctx.n = ctx.indicator(talib.ATR, ctx.data.high, ctx.data.low, ctx.data.close, 20)
    ctx.hi20 = ctx.indicator(talib.MAX, ctx.data.high, 20)
    ctx.lo10 = ctx.indicator(talib.MIN, ctx.data.low, 10)
    ctx.state["units"] = 0
    ctx.state["last_add"] = 0.0


def on_bar(ctx, bar):
    if ctx.i < 21:
        return
    n = ctx.n[-1]
    unit = math.floor(0.01 * ctx.equity / n)  # shares risking 1% of equity per N
    s = ctx.state
    if ctx.position > 0 and bar.close < ctx.lo10[-2]:
        ctx.close()
        s["units"] = 0
        return
    if unit < 1:
        return
    if s["units"] == 0 and ctx.position == 0 and bar.close > ctx.hi20[-2]:
        ctx.buy(size=unit, sl=bar.close - 2 * n)
        s.update(units=1, last_add=bar.close)
    elif 0 < s["units"] < 4 and ctx.position > 0 and bar.close > s["last_add"] + n / 2:
        ctx.buy(size=unit, sl=bar.close - 2 * n)
        s["units"] += 1
        s["last_add"] = bar.close
    elif ctx.position == 0:
        s["units"] = 0
