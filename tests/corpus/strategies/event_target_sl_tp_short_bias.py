# corpus: data=tsla1h
"""Short-biased mean reversion with ctx.target(-0.5, sl=, tp=): fade spikes above the upper Keltner
channel with a stop and target attached to the target order."""


def initialize(ctx):
    d = ctx.data
    ctx.ema = ctx.indicator(talib.EMA, d.close, 20)
    ctx.atr = ctx.indicator(talib.ATR, d.high, d.low, d.close, 20)


def on_bar(ctx, bar):
    if ctx.i < 21 or ctx.position != 0:
        return
    upper = ctx.ema[-1] + 2 * ctx.atr[-1]
    lower = ctx.ema[-1] - 2.5 * ctx.atr[-1]
    if bar.close > upper:
        ctx.target(-0.5, sl=bar.close + 1.5 * ctx.atr[-1], tp=ctx.ema[-1])
    elif bar.close < lower:
        ctx.target(0.5, sl=bar.close - 1.5 * ctx.atr[-1], tp=ctx.ema[-1])
