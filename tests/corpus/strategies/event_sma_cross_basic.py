"""SMA crossover, event-driven: buy on the cross up, close on the cross down."""


def initialize(ctx):
    ctx.fast = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=int(ctx.params.get("fast", 10)))
    ctx.slow = ctx.indicator(talib.SMA, ctx.data.close, timeperiod=int(ctx.params.get("slow", 30)))


def on_bar(ctx, bar):
    if ctx.i < 1:
        return
    if ctx.fast[-2] <= ctx.slow[-2] and ctx.fast[-1] > ctx.slow[-1]:
        ctx.buy()
    elif ctx.fast[-2] >= ctx.slow[-2] and ctx.fast[-1] < ctx.slow[-1]:
        ctx.close()
