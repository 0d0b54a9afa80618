# corpus: data=btc15m
"""Stochastic RSI: fastk crossing up through fastd below 20 buys, fastk above 80 exits."""


def initialize(ctx):
    ctx.k, ctx.d = ctx.indicator(talib.STOCHRSI, ctx.data.close, timeperiod=14, fastk_period=5, fastd_period=3)


def on_bar(ctx, bar):
    k, d = ctx.k, ctx.d
    if ctx.i < 25 or np.isnan(d[-2]):
        return
    if ctx.position == 0 and k[-2] < d[-2] and k[-1] > d[-1] and k[-1] < 20:
        ctx.buy()
    elif ctx.position > 0 and k[-1] > 80:
        ctx.close()
