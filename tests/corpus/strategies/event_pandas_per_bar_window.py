# corpus: data=tsla1h
"""pandas on each bar: the last 60 closes as a Series with the bar times as index, rolling, ewm and
.agg(func=[...]) on it, .iloc[-1] reads, and an f-string of a Series in the log now and then."""


def on_bar(ctx, bar):
    if ctx.i < 60:
        return
    s = pd.Series(ctx.data.close[-60:], index=ctx.data.time[-60:])
    fast = s.ewm(span=10, adjust=False).mean()
    slow = s.rolling(40).mean()
    spread = (fast - slow).iloc[-1]
    stats = s.pct_change().tail(10).agg(func=["mean", "std"])
    change = stats["mean"] / stats["std"] if stats["std"] > 0 else 0.0
    if ctx.i % 300 == 0:
        ctx.log(f"tail:\n{s.tail(2).round(2)}")
    if spread > 0 and change > 0:
        ctx.buy()
    elif spread < 0:
        ctx.close()
