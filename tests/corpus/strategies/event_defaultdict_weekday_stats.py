# corpus: data=btc1h
"""Online weekday/hour statistics with collections.defaultdict: trade only in (weekday, hour) slots
whose past returns were positive on average."""

from collections import defaultdict


def initialize(ctx):
    ctx.stats = defaultdict(lambda: [0.0, 0])
    ctx.state["prev"] = None


def on_bar(ctx, bar):
    key = (bar.time.dayofweek, bar.time.hour)
    prev = ctx.state["prev"]
    if prev is not None:
        s = ctx.stats[prev[0]]
        s[0] += bar.close / prev[1] - 1
        s[1] += 1
    nxt = bar.time + pd.Timedelta(hours=1)
    slot = ctx.stats[(nxt.dayofweek, nxt.hour)]
    if slot[1] >= 3 and slot[0] / slot[1] > 0:
        ctx.buy()
    else:
        ctx.close()
    ctx.state["prev"] = (key, bar.close)
