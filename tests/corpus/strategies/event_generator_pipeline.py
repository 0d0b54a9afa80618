# corpus: data=tsla1h
"""Generators: a rolling-window generator and a signal generator chained lazily over the history
seen so far (only the last values are consumed each bar)."""


def rolling(values, n):
    for i in range(n, len(values) + 1):
        yield values[i - n : i]


def momentum(windows):
    for w in windows:
        yield w[-1] / w[0] - 1


def initialize(ctx):
    ctx.state["last"] = 0.0


def on_bar(ctx, bar):
    if ctx.i < 40:
        return
    closes = ctx.data.close[-40:]
    moms = list(momentum(rolling(closes, 20)))
    accel = moms[-1] - moms[-10]
    score = sum(1 for m in moms[-5:] if m > 0)
    if score == 5 and accel > 0:
        ctx.buy()
    elif score <= 1:
        ctx.close()
    ctx.state["last"] = moms[-1]
