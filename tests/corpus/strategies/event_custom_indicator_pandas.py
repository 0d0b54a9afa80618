# corpus: data=eth1h
"""ctx.indicator with user functions over pandas: a Hull moving average and an EWM volatility
band, both causal; long above the band, flat below the HMA."""


def hull_ma(close, period=21):
    s = pd.Series(close)
    half = s.rolling(period // 2).apply(lambda w: np.average(w, weights=np.arange(1, len(w) + 1)), raw=True)
    full = s.rolling(period).apply(lambda w: np.average(w, weights=np.arange(1, len(w) + 1)), raw=True)
    raw = 2 * half - full
    n = int(math.sqrt(period))
    return raw.rolling(n).apply(lambda w: np.average(w, weights=np.arange(1, len(w) + 1)), raw=True)


def ewm_band(close, span=30, k=1.5):
    s = pd.Series(close)
    mean = s.ewm(span=span, adjust=False).mean()
    vol = s.diff().ewm(span=span, adjust=False).std()
    return mean + k * vol


def initialize(ctx):
    ctx.hma = ctx.indicator(hull_ma, ctx.data.close, 21)
    ctx.band = ctx.indicator(ewm_band, ctx.data.close)


def on_bar(ctx, bar):
    if np.isnan(ctx.hma[-1]) or np.isnan(ctx.band[-1]):
        return
    if bar.close > ctx.band[-1] and ctx.hma[-1] > ctx.hma[-2]:
        ctx.buy()
    elif bar.close < ctx.hma[-1]:
        ctx.close()
