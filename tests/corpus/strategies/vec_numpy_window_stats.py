# corpus: data=eth1h
"""A loop over trailing windows with ndarray methods: .mean(), .std(), .var(), .min(), .max().
Long on a close in the bottom decile of the window's range with low variance of returns."""


def generate_signals(data, params):
    close = data.close.to_numpy()
    n = len(close)
    w = 60
    out = np.full(n, np.nan)
    out[:w] = 0.0
    for i in range(w, n):
        win = close[i - w + 1 : i + 1]
        lo, hi = win.min(), win.max()
        position_in_range = (win[-1] - lo) / (hi - lo) if hi > lo else 0.5
        r = np.diff(np.log(win))
        calm = r.var() < (r.std() ** 2) * 1.01 and r.std() < 0.02
        if position_in_range < 0.1 and calm:
            out[i] = 1.0
        elif win[-1] > win.mean() + win.std():
            out[i] = 0.0
    return out
