# corpus: data=eth1h
"""Module-level globals updated with `global`, the walrus operator, f"{x=}" debug strings and
print(..., sep=..., end=...), as quick scripts are written."""

TRADES = 0
LAST_SIGNAL = None


def initialize(ctx):
    ctx.mom = ctx.indicator(talib.ROC, ctx.data.close, 24)


def on_bar(ctx, bar):
    global TRADES, LAST_SIGNAL
    if (m := ctx.mom[-1]) != m:  # NaN during the warm-up
        return
    signal = "long" if m > 1.0 else ("flat" if m < 0 else LAST_SIGNAL)
    if signal != LAST_SIGNAL:
        if signal == "long":
            ctx.buy()
            TRADES += 1
        elif signal == "flat":
            ctx.close()
        LAST_SIGNAL = signal
        if TRADES % 5 == 1 and signal == "long":
            print(f"{TRADES=}", f"{m=:.2f}", bar.time.date(), sep=" | ", end="\n")
