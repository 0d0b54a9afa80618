"""numpy idioms: boolean masks, fancy indexing with index arrays from np.flatnonzero, a holding
period written by slice augmented assignment (arr[i:j] += 1), and .any()/.all() checks."""


def generate_signals(data, params):
    close = data.close.to_numpy()
    n = close.size
    ret = np.zeros(n)
    ret[1:] = close[1:] / close[:-1] - 1.0
    sigma = talib.STDDEV(ret, timeperiod=50)
    shock = ret < -1.5 * sigma  # a large down bar
    idx = np.flatnonzero(shock)
    hold = int(params.get("hold", 5))
    holding = np.zeros(n)
    for i in idx:
        holding[i : i + hold] += 1  # the bars from the shock on are held
    holding[holding > 1] = 1
    sig = holding.astype(float)
    if not shock.any():
        sig[:] = 0.0
    assert np.isfinite(sig).all()
    weights = np.ones(4)
    weights[1:3] += 1
    sig[idx[idx < n]] *= weights.mean() / weights.max()  # the shock bar itself at reduced size
    sig[:50] = 0
    return sig
