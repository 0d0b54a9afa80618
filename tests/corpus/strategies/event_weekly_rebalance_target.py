# corpus: data=msft1d
"""Weekly rebalance to a momentum-scaled exposure: every Friday ctx.target(x) with x from the
12-week return (quantized to 0.25 steps), long-only."""


def on_bar(ctx, bar):
    if ctx.i < 60 or bar.time.dayofweek != 4:
        return
    ret = bar.close / ctx.data.close[-60] - 1
    x = min(1.0, max(0.0, ret * 5))
    ctx.target(math.floor(x * 4) / 4)
