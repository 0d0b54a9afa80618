# corpus: data=eth1h
"""Grid trading around a 100-bar SMA: buy a fixed number of units at each grid level below the
mean (size in units when >= 1, else a fraction), sell a level back on each level above."""


def initialize(ctx):
    ctx.sma = ctx.indicator(talib.SMA, ctx.data.close, 100)
    ctx.state["level"] = 0  # grid levels currently bought


def on_bar(ctx, bar):
    if np.isnan(ctx.sma[-1]):
        return
    step = ctx.params.get("step", 0.01)
    levels = int(ctx.params.get("levels", 4))
    deviation = bar.close / ctx.sma[-1] - 1
    wanted = min(levels, max(0, int(-deviation / step)))
    held = ctx.state["level"]
    per_level = 1.0 / levels * 0.95
    if wanted > held:
        ctx.buy(size=per_level * (wanted - held))
        ctx.state["level"] = wanted
    elif wanted < held:
        if wanted == 0:
            ctx.close()
        else:
            ctx.sell(size=per_level * (held - wanted))
        ctx.state["level"] = wanted
