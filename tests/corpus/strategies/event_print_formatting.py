# corpus: data=aapl1h
"""Printing the way people debug: print(arr), str(arr), f-strings of arrays, str.format with
positional and percent specs, %-formatting, and ctx.log with several arguments."""


def initialize(ctx):
    ctx.sma = ctx.indicator(talib.SMA, ctx.data.close, 20)
    print("initialized with params", ctx.params)


def on_bar(ctx, bar):
    if ctx.i < 20:
        return
    if ctx.i % 150 == 0:
        window = np.round(np.asarray(ctx.data.close[-5:]), 2)
        print(window)
        print("window: " + str(window))
        print(f"window mean={window.mean():.2f} values={window}")
        print("{} {}".format(bar.time.date(), bar.close))
        print("exposure {:.1%}".format(ctx.position * bar.close / ctx.equity))
        print("equity %.2f cash %.2f position %d" % (ctx.equity, ctx.cash, ctx.position))
        ctx.log("bar", ctx.i, "close", round(bar.close, 2))
    if bar.close > ctx.sma[-1] * 1.002:
        ctx.buy()
    elif bar.close < ctx.sma[-1] * 0.998:
        ctx.close()
