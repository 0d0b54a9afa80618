# corpus: data=btc1h
"""MACD from pandas ewm (no TA-Lib), long and short on the histogram sign, with a DataFrame of
macd / signal / hist columns."""


def generate_signals(data, params):
    fast, slow, sig = params.get("fast", 12), params.get("slow", 26), params.get("signal", 9)
    ema_fast = data.close.ewm(span=fast, adjust=False).mean()
    ema_slow = data.close.ewm(span=slow, adjust=False).mean()
    frame = pd.DataFrame({"macd": ema_fast - ema_slow})
    frame["signal"] = frame["macd"].ewm(span=sig, adjust=False).mean()
    frame["hist"] = frame["macd"] - frame["signal"]
    frame["pos"] = np.sign(frame["hist"]).replace(0.0, np.nan)
    frame.iloc[: slow + sig, frame.columns.get_loc("pos")] = 0.0
    return frame["pos"]
