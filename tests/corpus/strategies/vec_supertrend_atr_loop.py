# corpus: data=eth1h
"""Supertrend (ATR 10, multiplier 3) computed with a numpy loop, long/short on its direction."""


def supertrend(high, low, close, period=10, mult=3.0):
    atr = talib.ATR(high, low, close, timeperiod=period)
    hl2 = (high + low) / 2.0
    upper = hl2 + mult * atr
    lower = hl2 - mult * atr
    final_upper = upper.copy()
    final_lower = lower.copy()
    direction = np.zeros(len(close))
    for i in range(1, len(close)):
        if np.isnan(atr[i - 1]):
            continue
        final_upper[i] = (
            upper[i] if upper[i] < final_upper[i - 1] or close[i - 1] > final_upper[i - 1] else final_upper[i - 1]
        )
        final_lower[i] = (
            lower[i] if lower[i] > final_lower[i - 1] or close[i - 1] < final_lower[i - 1] else final_lower[i - 1]
        )
        if close[i] > final_upper[i - 1]:
            direction[i] = 1
        elif close[i] < final_lower[i - 1]:
            direction[i] = -1
        else:
            direction[i] = direction[i - 1]
    return direction


def generate_signals(data, params):
    d = supertrend(data.high.values, data.low.values, data.close.values, 10, float(params.get("mult", 3.0)))
    return d.astype(float)
