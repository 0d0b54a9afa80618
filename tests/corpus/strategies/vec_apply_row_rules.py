# corpus: data=tsla1h
"""Row-wise rules with DataFrame.apply(axis=1), Series.apply and Series.map, columns read as
attributes (frame.ma, frame.signal)."""


def classify(row):
    if np.isnan(row["ma"]) or np.isnan(row["rsi"]):
        return "none"
    if row["close"] > row["ma"] and row["rsi"] < 45:
        return "buy"
    if row["rsi"] > 70 or row["close"] < row["ma"] * 0.97:
        return "sell"
    return "hold"


def generate_signals(data, params):
    frame = data.assign(ma=data.close.rolling(100).mean(), rsi=talib.RSI(data.close.values, 14))
    frame["signal"] = frame.apply(classify, axis=1)
    mapping = {"buy": 1.0, "sell": 0.0, "none": 0.0, "hold": np.nan}
    target = frame.signal.map(mapping)
    above = (frame.close - frame.ma).apply(lambda x: x > 0 if x == x else False)
    target[(target == 1.0) & ~above] = np.nan
    return target
