# corpus: data=eth1h
"""Z-score mean reversion on one series with ctx.state: entries beyond +-2, exit at 0, and a count of
trades and the best z-score seen kept between bars."""


def initialize(ctx):
    ctx.state["trades"] = 0
    ctx.state["extremes"] = {"max": 0.0, "min": 0.0}


def on_bar(ctx, bar):
    window = int(ctx.params.get("window", 50))
    if len(ctx.data.close) < window:
        return
    closes = np.asarray(ctx.data.close[-window:])
    z = (closes[-1] - closes.mean()) / closes.std()
    ext = ctx.state["extremes"]
    ext["max"] = max(ext["max"], z)
    ext["min"] = min(ext["min"], z)
    if ctx.position == 0:
        if z < -2:
            ctx.buy()
            ctx.state["trades"] += 1
        elif z > 2:
            ctx.sell()
            ctx.state["trades"] += 1
    elif (ctx.position > 0 and z >= 0) or (ctx.position < 0 and z <= 0):
        ctx.close()
    if bar.index % 250 == 0:
        ctx.log(f"trades={ctx.state['trades']} z-range=({ext['min']:.2f}, {ext['max']:.2f})")
