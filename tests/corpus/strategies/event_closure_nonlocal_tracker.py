# corpus: data=btc15m
"""Closures with nonlocal: a drawdown tracker and a streak counter built by factory functions and
called each bar; exits after three losing closes in a row or a 2% drawdown from the peak."""


def make_peak_tracker():
    peak = None

    def update(price):
        nonlocal peak
        peak = price if peak is None else max(peak, price)
        return price / peak - 1

    def reset():
        nonlocal peak
        peak = None

    return update, reset


def make_streak():
    streak = 0
    last = None

    def step(price):
        nonlocal streak, last
        if last is not None:
            streak = streak + 1 if price < last else 0
        last = price
        return streak

    return step


def initialize(ctx):
    ctx.dd, ctx.reset_dd = make_peak_tracker()
    ctx.streak = make_streak()
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 50)


def on_bar(ctx, bar):
    down = ctx.streak(bar.close)
    if ctx.position > 0:
        if ctx.dd(bar.close) < -0.02 or down >= 3:
            ctx.close()
            ctx.reset_dd()
    elif ctx.i > 50 and bar.close > ctx.ema[-1] and down == 0:
        ctx.buy()
        ctx.dd(bar.close)
