# corpus: data=btc1h
"""Donchian channel breakout (turtle system 1): long above the prior 20-bar high,
short below the prior 20-bar low, exit on the opposite 10-bar channel."""


def generate_signals(data, params):
    entry_n = int(params.get("entry", 20))
    exit_n = int(params.get("exit", 10))
    upper = data.high.rolling(entry_n).max().shift(1)
    lower = data.low.rolling(entry_n).min().shift(1)
    exit_upper = data.high.rolling(exit_n).max().shift(1)
    exit_lower = data.low.rolling(exit_n).min().shift(1)
    close = data.close
    pos = pd.Series(np.nan, index=data.index)
    pos[(close < exit_lower) | (close > exit_upper)] = 0.0
    pos[close > upper] = 1.0
    pos[close < lower] = -1.0
    return pos.ffill().fillna(0.0).values
