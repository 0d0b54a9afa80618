"""MACD histogram momentum with named DataFrame columns (macd, signal, hist, ma, style):
long when the histogram turns positive above the 100-bar trend MA, flat when it turns negative."""


def generate_signals(data, params):
    macd, signal, hist = talib.MACD(data.close.values, fastperiod=12, slowperiod=26, signalperiod=9)
    df = data.assign(macd=macd, signal=signal, hist=hist, ma=talib.SMA(data.close.values, 100))
    df["style"] = np.where(df["close"] > df["ma"], "trend", "range")
    df["position"] = np.nan
    df.loc[(df["hist"] > 0) & (df["style"] == "trend"), "position"] = 1.0
    df.loc[df["hist"] < 0, "position"] = 0.0
    return df["position"]
