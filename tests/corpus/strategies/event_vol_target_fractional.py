# corpus: data=btc1d
"""Volatility targeting: each week hold ctx.target(x) with x = target vol / realized vol, capped to
[0, 1], in the direction of the 100-day trend (flat when down)."""


def initialize(ctx):
    ctx.trend = ctx.indicator(talib.SMA, ctx.data.close, 100)


def on_bar(ctx, bar):
    if ctx.i < 100 or bar.time.dayofweek != 0:
        return
    closes = np.asarray(ctx.data.close[-31:])
    rets = np.diff(np.log(closes))
    vol = rets.std(ddof=1) * math.sqrt(365)
    target_vol = ctx.params.get("target_vol", 0.5)
    x = min(1.0, target_vol / vol) if vol > 0 else 0.0
    if bar.close < ctx.trend[-1]:
        x = 0.0
    ctx.target(round(x, 2))
