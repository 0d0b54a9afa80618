# corpus: data=msft1d
"""Daily gap fade: when today's open gaps more than 1% from yesterday's close, trade toward the
gap fill; exit after two days or when the gap has filled."""


def initialize(ctx):
    ctx.state.update(direction=0, days=0, target=None)


def on_bar(ctx, bar):
    if ctx.i < 2:
        return
    s = ctx.state
    prev_close = ctx.data.close[-2]
    gap = bar.open / prev_close - 1
    if ctx.position != 0:
        s["days"] += 1
        filled = (s["direction"] > 0 and bar.close >= s["target"]) or (s["direction"] < 0 and bar.close <= s["target"])
        if filled or s["days"] >= 2:
            ctx.close()
            s["direction"] = 0
        return
    if gap < -0.01:
        ctx.buy()
        s.update(direction=1, days=0, target=prev_close)
    elif gap > 0.01:
        ctx.sell()
        s.update(direction=-1, days=0, target=prev_close)
