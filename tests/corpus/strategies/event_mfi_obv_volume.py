# corpus: data=aapl1h trades=any
"""Volume confirmation: MFI oversold with OBV above its 30-bar average buys; MFI overbought sells."""


def initialize(ctx):
    d = ctx.data
    ctx.mfi = ctx.indicator(talib.MFI, d.high, d.low, d.close, d.volume, timeperiod=14)
    ctx.obv = ctx.indicator(talib.OBV, d.close, d.volume)


def on_bar(ctx, bar):
    if ctx.i < 31:
        return
    obv_avg = np.mean(ctx.obv[-30:])
    if ctx.position == 0 and ctx.mfi[-1] < 35 and ctx.obv[-1] > obv_avg:
        ctx.buy()
    elif ctx.position > 0 and ctx.mfi[-1] > 65:
        ctx.close()
