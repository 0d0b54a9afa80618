# corpus: data=eth1h
"""A rolling window of closes in collections.deque(maxlen=n): breakout above the window's max."""

from collections import deque


def initialize(ctx):
    ctx.window = deque(maxlen=int(ctx.params.get("n", 24)))
    ctx.lows = deque(maxlen=12)


def on_bar(ctx, bar):
    w = ctx.window
    if len(w) == w.maxlen:
        if ctx.position == 0 and bar.close > max(w):
            ctx.buy()
        elif ctx.position > 0 and bar.close < min(ctx.lows):
            ctx.close()
    w.append(bar.close)
    ctx.lows.append(bar.low)
