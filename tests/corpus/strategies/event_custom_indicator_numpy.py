# corpus: data=tsla1h
"""ctx.indicator with a plain numpy function (a causal rolling z-score via cumulative sums)."""


def rolling_zscore(x, n=40):
    x = np.asarray(x, dtype=float)
    c1 = np.cumsum(np.insert(x, 0, 0.0))
    c2 = np.cumsum(np.insert(x * x, 0, 0.0))
    out = np.full(x.shape, np.nan)
    s1 = c1[n:] - c1[:-n]
    s2 = c2[n:] - c2[:-n]
    mean = s1 / n
    var = np.maximum(s2 / n - mean**2, 1e-12)
    out[n - 1 :] = (x[n - 1 :] - mean) / np.sqrt(var)
    return out


def initialize(ctx):
    ctx.z = ctx.indicator(rolling_zscore, ctx.data.close, n=40)


def on_bar(ctx, bar):
    z = ctx.z[-1]
    if np.isnan(z):
        return
    if ctx.position == 0 and z < -2.0:
        ctx.buy()
    elif ctx.position > 0 and z > 0.5:
        ctx.close()
