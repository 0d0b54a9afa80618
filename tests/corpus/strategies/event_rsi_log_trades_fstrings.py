# corpus: data=btc15m
"""RSI reversal that logs every trade with f-strings, ts.strftime and f"{ts:%H:%M}" formatting."""


def initialize(ctx):
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, timeperiod=14)
    ctx.state["entry"] = None


def on_bar(ctx, bar):
    ts = bar.time
    if ctx.position == 0 and ctx.rsi[-1] < 28:
        ctx.buy()
        ctx.state["entry"] = (ts, bar.close)
        ctx.log(f"{ts.strftime('%Y-%m-%d')} {ts:%H:%M} BUY  @ {bar.close:,.2f} rsi={ctx.rsi[-1]:.1f}")
    elif ctx.position > 0 and ctx.rsi[-1] > 62:
        ctx.close()
        t0, p0 = ctx.state["entry"]
        held = ts - t0
        pnl = bar.close / p0 - 1
        ctx.log(f"{ts:%Y-%m-%d %H:%M} SELL @ {bar.close:,.2f} held {held} ({pnl:+.2%})")
