# corpus: data=aapl15m
"""Calendar rules: no new trades on Mondays or in the first half hour, and every position is closed
before the end of the day (decided on the 15:30 New York bar, filled at the 15:45 bar's open)."""


def initialize(ctx):
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 13)
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, 14)


def on_bar(ctx, bar):
    local = bar.time.tz_convert("America/New_York")
    if local.hour == 15 and local.minute >= 30:
        ctx.close()
        return
    if local.dayofweek == 0 or local.hour < 10:
        return
    if ctx.position == 0 and bar.close > ctx.ema[-1] and ctx.rsi[-1] > 55:
        ctx.buy()
    elif ctx.position > 0 and bar.close < ctx.ema[-1]:
        ctx.close()
