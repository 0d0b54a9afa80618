"""SMA crossover, event-driven: the same logic as sma_crossover_vectorized.py, bar by bar.

`ctx.buy()` goes all-in long (target exposure 1) and does nothing while that target is held;
`ctx.close()` goes flat. Orders fill at the next bar's open.
"""


def initialize(ctx):
    ctx.fast = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=int(ctx.params.get("fast", 10)))
    ctx.slow = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=int(ctx.params.get("slow", 30)))


def on_bar(ctx, bar):
    if ctx.fast[-1] > ctx.slow[-1]:
        ctx.buy()
    else:
        ctx.close()
