# corpus: data=eth1h
"""Generators and comprehensions: swing points yielded by a generator, a dict comprehension of
lookbacks, sorted() and zip() to combine the votes of several breakout lengths."""


def swing_lows(low, k=3):
    for i in range(k, len(low)):
        window = low[i - k : i + 1]
        if low[i - 1] == window.min() and low[i] > low[i - 1]:
            yield i


def generate_signals(data, params):
    close, low = data.close.values, data.low.values
    lookbacks = sorted({int(x) for x in (20, 55, 10, 20)})
    highs = {n: data.high.rolling(n).max().shift(1).to_numpy() for n in lookbacks}
    votes = sum((close > highs[n]).astype(int) for n in lookbacks)
    lows = set(swing_lows(low))
    sig = np.full(len(close), np.nan)
    for i, (v, c) in enumerate(zip(votes, close)):
        if v >= 2:
            sig[i] = 1.0
        elif i in lows and c < np.nanmean(close[max(0, i - 20) : i + 1]):
            sig[i] = 0.0
    sig[: max(lookbacks)] = 0.0
    return sig
