# corpus: data=tsla1h
"""Heikin-Ashi candles: long after two green HA candles with no lower wick, flat after a red one."""


def heikin_ashi(df):
    ha = pd.DataFrame(index=df.index)
    ha["close"] = (df["open"] + df["high"] + df["low"] + df["close"]) / 4
    ha_open = np.empty(len(df))
    ha_open[0] = (df["open"].iloc[0] + df["close"].iloc[0]) / 2
    ha_close = ha["close"].to_numpy()
    for i in range(1, len(df)):
        ha_open[i] = (ha_open[i - 1] + ha_close[i - 1]) / 2
    ha["open"] = ha_open
    ha["high"] = pd.concat([df["high"], ha["open"], ha["close"]], axis=1).max(axis=1)
    ha["low"] = pd.concat([df["low"], ha["open"], ha["close"]], axis=1).min(axis=1)
    return ha


def generate_signals(data, params):
    ha = heikin_ashi(data)
    green = ha["close"] > ha["open"]
    no_lower_wick = (ha[["open", "close"]].min(axis=1) - ha["low"]) < 1e-9
    strong = green & no_lower_wick
    entry = strong & strong.shift(1, fill_value=False)
    red = ~green
    return np.where(entry, 1.0, np.where(red, 0.0, np.nan))
