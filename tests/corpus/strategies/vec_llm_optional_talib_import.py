# corpus: data=btc1h
"""
EMA Crossover with RSI Confirmation (portable version)

Works with or without TA-Lib: falls back to pandas implementations if TA-Lib is not installed.
Includes a small self-test under `if __name__ == "__main__":` for running the file directly.
"""

try:
    import talib

    HAS_TALIB = True
except ImportError:  # pragma: no cover - fallback for environments without TA-Lib
    HAS_TALIB = False


def ema(values, period):
    import pandas as pd

    if HAS_TALIB:
        return talib.EMA(values, timeperiod=period)
    return pd.Series(values).ewm(span=period, adjust=False).mean().to_numpy()


def rsi(values, period=14):
    import numpy as np
    import pandas as pd

    if HAS_TALIB:
        return talib.RSI(values, timeperiod=period)
    delta = pd.Series(values).diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / period, adjust=False).mean()
    return (100 - 100 / (1 + gain / loss)).fillna(50).to_numpy(dtype=np.float64)


def generate_signals(data, params):
    import numpy as np

    close = data["close"].to_numpy(dtype=np.float64)
    fast, slow = ema(close, params.get("fast", 12)), ema(close, params.get("slow", 26))
    r = rsi(close)
    return np.where((fast > slow) & (r > 50), 1.0, np.where(fast < slow, 0.0, np.nan))


if __name__ == "__main__":
    import numpy as np
    import pandas as pd

    idx = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    prices = 100 + np.cumsum(np.random.default_rng(0).normal(size=300))
    demo = pd.DataFrame({"open": prices, "high": prices, "low": prices, "close": prices, "volume": 1.0}, index=idx)
    print(generate_signals(demo, {})[-10:])
