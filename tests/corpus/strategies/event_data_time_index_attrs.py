# corpus: data=aapl1h
"""ctx.data.time (a DatetimeIndex of the bars so far): .dayofweek, .hour and .date of the history
to find today's first bar and the prior session's close; gap-fill trade with an end-of-day exit."""


def on_bar(ctx, bar):
    times = ctx.data.time
    dates = times.date
    today = dates[-1]
    first_today = int(np.argmax(dates == today))
    if first_today == 0:
        return
    prev_close = ctx.data.close[first_today - 1]
    today_open = ctx.data.open[first_today]
    gap = today_open / prev_close - 1
    bars_today = len(dates) - first_today
    if times.dayofweek[-1] == 4 and times.hour[-1] >= 19:
        ctx.close()
        return
    if bars_today == 1 and gap < -0.005:
        ctx.buy()
    elif ctx.position > 0 and (bar.close >= prev_close or bars_today >= 6):
        ctx.close()
