"""SMA crossover, vectorized: long while the fast SMA is above the slow one, flat otherwise.

Same logic as sma_crossover_event.py: both give identical trades and equity.
Run: backtest run examples/sma_crossover_vectorized.py --symbol AAPL --timeframe 1h --param fast=10 --param slow=30
"""


def generate_signals(data, params):
    close = data.close.values
    fast = talib.SMA(close, timeperiod=int(params.get("fast", 10)))
    slow = talib.SMA(close, timeperiod=int(params.get("slow", 30)))
    return np.where(fast > slow, 1.0, 0.0)
