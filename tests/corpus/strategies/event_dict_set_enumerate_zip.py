# corpus: data=btc1h
"""Built-ins over containers: a dict of indicator readings, a set of agreeing rules, enumerate/zip/
sorted over the rules, any()/all(), and a tally of which rules fired kept in ctx.state."""


def initialize(ctx):
    d = ctx.data
    ctx.ind = {
        "ema_fast": ctx.indicator(talib.EMA, d.close, 10),
        "ema_slow": ctx.indicator(talib.EMA, d.close, 40),
        "rsi": ctx.indicator(talib.RSI, d.close, 14),
        "mom": ctx.indicator(talib.MOM, d.close, 10),
    }
    ctx.state["fired"] = {}


def on_bar(ctx, bar):
    v = {name: series[-1] for name, series in ctx.ind.items()}
    if any(np.isnan(x) for x in v.values()):
        return
    rules = [
        ("trend", v["ema_fast"] > v["ema_slow"]),
        ("momentum", v["mom"] > 0),
        ("not_overbought", v["rsi"] < 70),
    ]
    agreeing = {name for name, ok in rules if ok}
    fired = ctx.state["fired"]
    for name, ok in rules:
        if ok:
            fired[name] = fired.get(name, 0) + 1
    names, flags = zip(*rules)
    if all(flags):
        ctx.buy()
    elif "trend" not in agreeing or not any(flags[1:]):
        ctx.close()
    if bar.index == 1000:
        ranked = sorted(fired.items(), key=lambda kv: (-kv[1], kv[0]))
        for rank, (name, count) in enumerate(ranked, start=1):
            ctx.log(f"{rank}. {name}: {count} of {len(names)} rules")
