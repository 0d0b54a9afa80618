# corpus: data=btc1h
"""pd.Timestamp arithmetic: hold each trade for at most 36 hours (bar.time - entry_time against a
pd.Timedelta), and no re-entry within 12 hours of an exit."""


def initialize(ctx):
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 24)
    ctx.state.update(entry_time=None, exit_time=pd.Timestamp("2000-01-01", tz="UTC"))


def on_bar(ctx, bar):
    now = bar.time
    max_hold = pd.Timedelta(hours=ctx.params.get("max_hold_hours", 36))
    cooldown = pd.Timedelta(hours=12)
    s = ctx.state
    if ctx.position > 0:
        if now - s["entry_time"] >= max_hold or bar.close < ctx.ema[-1] * 0.99:
            ctx.close()
            s["exit_time"] = now
            s["entry_time"] = None
    elif ctx.i > 24 and now >= s["exit_time"] + cooldown and bar.close > ctx.ema[-1] * 1.005:
        ctx.buy()
        s["entry_time"] = now
    if now.floor("D") == now and now.day == 1:
        ctx.log(f"month start {now:%Y-%m} equity={ctx.equity:.0f}")
