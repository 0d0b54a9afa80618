# corpus: data=btc1d
"""Volatility targeting: hold target_vol / realized_vol of equity (capped at 1) while the trend is up.
Exposure changes only when it moves by more than a rebalancing band."""


def generate_signals(data, params):
    target_vol = params.get("target_vol", 0.40)
    returns = data.close.pct_change()
    realized = returns.rolling(20).std() * np.sqrt(365)
    raw = np.clip(target_vol / realized.to_numpy(), 0.0, 1.0)
    raw = np.nan_to_num(raw, nan=0.0)
    trend = (data.close > data.close.rolling(50).mean()).to_numpy()
    raw = np.where(trend, raw, 0.0)
    out = np.full(len(raw), np.nan)
    held = 0.0
    for i, x in enumerate(raw):
        x = round(float(x), 2)
        if abs(x - held) > 0.1 or (x == 0.0 and held != 0.0):
            held = x
            out[i] = x
    out[0] = 0.0
    return out
