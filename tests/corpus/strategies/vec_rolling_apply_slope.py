# corpus: data=msft1d
"""Linear-regression slope of the log price over 30 bars via rolling().apply(raw=True); long while the
annualized slope is above 10% and the fit is decent (R^2 > 0.3)."""


def slope(window):
    x = np.arange(len(window))
    b, a = np.polyfit(x, window, 1)
    return b


def r_squared(window):
    x = np.arange(len(window))
    return np.corrcoef(x, window)[0, 1] ** 2


def generate_signals(data, params):
    logp = np.log(data.close)
    s = logp.rolling(30).apply(slope, raw=True) * 252
    r2 = logp.rolling(30).apply(r_squared, raw=True)
    return np.where((s > 0.10) & (r2 > 0.3), 1.0, 0.0)
