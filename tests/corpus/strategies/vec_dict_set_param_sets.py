# corpus: data=btc1h
"""Parameters as dicts and sets: a preset table, a set of allowed UTC hours, dict.get with defaults,
sorted() over the presets, and set operations on the active bar indices."""

PRESETS = {
    "fast": {"ema": 8, "rsi": 7, "hours": {8, 9, 10, 13, 14, 15, 16}},
    "slow": {"ema": 34, "rsi": 14, "hours": set(range(0, 24))},
}


def generate_signals(data, params):
    preset = PRESETS.get(params.get("preset", "fast"), PRESETS["slow"])
    names = sorted(PRESETS)
    assert names == ["fast", "slow"]
    close = data.close.values
    ema = talib.EMA(close, preset["ema"])
    rsi = talib.RSI(close, preset["rsi"])
    hours = data.index.hour
    trend_bars = set(np.flatnonzero(close > ema).tolist())
    hour_bars = {i for i, h in enumerate(hours) if h in preset["hours"]}
    weak_bars = set(np.flatnonzero(rsi > 75).tolist())
    active = (trend_bars & hour_bars) - weak_bars
    sig = np.zeros(len(close))
    sig[sorted(active)] = 1.0
    return sig
