# corpus: data=aapl15m
"""Time-of-day filter in New York time: bar.time.tz_convert("America/New_York"); trades only
10:00-14:30, flat from 15:00, with a minimum-volume filter."""


def initialize(ctx):
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, 9)
    ctx.vol_avg = ctx.indicator(talib.SMA, ctx.data.volume, 26)


def on_bar(ctx, bar):
    ny = bar.time.tz_convert("America/New_York")
    hhmm = ny.hour * 100 + ny.minute
    if hhmm >= 1500:
        ctx.close()
        return
    if not 1000 <= hhmm <= 1430 or np.isnan(ctx.vol_avg[-1]):
        return
    if ctx.position == 0 and ctx.rsi[-1] < 30 and bar.volume > 0.5 * ctx.vol_avg[-1]:
        ctx.buy()
    elif ctx.position > 0 and ctx.rsi[-1] > 60:
        ctx.close()
