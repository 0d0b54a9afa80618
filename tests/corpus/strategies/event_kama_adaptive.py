# corpus: data=btc1d
"""KAMA adaptive trend with an efficiency-ratio filter computed from the history seen so far."""


def initialize(ctx):
    ctx.kama = ctx.indicator(talib.KAMA, ctx.data.close, timeperiod=10)


def efficiency_ratio(closes):
    change = abs(closes[-1] - closes[0])
    path = np.abs(np.diff(closes)).sum()
    return change / path if path > 0 else 0.0


def on_bar(ctx, bar):
    if ctx.i < 30:
        return
    er = efficiency_ratio(np.asarray(ctx.data.close[-20:]))
    if bar.close > ctx.kama[-1] and ctx.kama[-1] > ctx.kama[-2] and er > 0.2:
        ctx.buy()
    elif bar.close < ctx.kama[-1]:
        ctx.close()
