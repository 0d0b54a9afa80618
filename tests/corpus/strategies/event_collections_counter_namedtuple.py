# corpus: data=btc15m
"""collections.namedtuple for trade records and collections.Counter of exit reasons, logged every
few hundred bars; the strategy itself is a simple EMA pullback."""

from collections import Counter, namedtuple

Trade = namedtuple("Trade", ["entry_bar", "entry_price", "reason"])


def initialize(ctx):
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 40)
    ctx.reasons = Counter()
    ctx.open_trade = None


def on_bar(ctx, bar):
    if ctx.i < 41:
        return
    if ctx.open_trade is None and bar.low < ctx.ema[-1] < bar.close:
        ctx.buy()
        ctx.open_trade = Trade(bar.index, bar.close, "pullback")
    elif ctx.open_trade is not None:
        held = bar.index - ctx.open_trade.entry_bar
        if bar.close < ctx.ema[-1] * 0.995:
            ctx.close()
            ctx.reasons["trend_break"] += 1
            ctx.open_trade = None
        elif held >= 24:
            ctx.close()
            ctx.reasons["time"] += 1
            ctx.open_trade = None
    if bar.index % 400 == 0:
        ctx.log(f"exits so far: {dict(sorted(ctx.reasons.items()))}, most common {ctx.reasons.most_common(1)}")
