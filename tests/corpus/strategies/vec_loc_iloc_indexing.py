"""pandas indexing: .loc with boolean masks and column labels, .iloc by position, .at-style scalar
reads, a 'signal' column filled with .loc and forward-filled."""


def generate_signals(data, params):
    df = data.copy()
    df["ma_fast"] = df["close"].rolling(12).mean()
    df["ma_slow"] = df["close"].rolling(36).mean()
    df["signal"] = np.nan
    df.loc[df["ma_fast"] > df["ma_slow"], "signal"] = 1.0
    df.loc[df["ma_fast"] < df["ma_slow"] * 0.998, "signal"] = 0.0
    df.iloc[:36, df.columns.get_loc("signal")] = 0.0
    first_long = df.index[df["signal"] == 1.0]
    if len(first_long):
        ts = first_long[0]
        assert df.loc[ts, "signal"] == 1.0
        assert df.iloc[df.index.get_loc(ts)]["signal"] == 1.0
    last = df.iloc[-1]
    _ = float(last["close"]) + float(df.loc[df.index[-1], "ma_fast"])
    df["signal"] = df["signal"].ffill()
    return df["signal"]
