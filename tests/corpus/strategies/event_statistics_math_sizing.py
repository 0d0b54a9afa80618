# corpus: data=msft1d
"""statistics and math for sizing: statistics.pstdev of daily returns, statistics.median for the
trend, math.floor for the share count (units), math.isclose and math.log."""

import statistics


def on_bar(ctx, bar):
    if ctx.i < 61:
        return
    closes = list(ctx.data.close[-61:])
    rets = [math.log(b / a) for a, b in zip(closes[:-1], closes[1:])]
    vol = statistics.pstdev(rets) * math.sqrt(252)
    median_price = statistics.median(closes[-20:])
    mean_ret = statistics.fmean(rets[-20:])
    if ctx.position == 0 and bar.close > median_price and mean_ret > 0:
        budget = ctx.equity * min(1.0, 0.2 / vol) if vol > 0 else 0.0
        shares = math.floor(budget / bar.close)
        if shares >= 1:
            ctx.buy(size=shares)
    elif ctx.position > 0 and (bar.close < median_price * 0.98 or math.isclose(mean_ret, 0.0, abs_tol=1e-5)):
        ctx.close()
