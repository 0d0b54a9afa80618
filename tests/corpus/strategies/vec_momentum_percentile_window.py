# corpus: data=eth1h
"""Momentum rank: long when the 24-bar return is above the 80th percentile of its last 200 values,
flat below the 50th. Percentiles over sliding windows (no look-ahead)."""

from numpy.lib.stride_tricks import sliding_window_view


def generate_signals(data, params):
    close = data.close.to_numpy()
    lookback, history = 24, 200
    roc = np.full(close.shape, np.nan)
    roc[lookback:] = close[lookback:] / close[:-lookback] - 1.0
    windows = sliding_window_view(roc, history)
    hi = np.full(close.shape, np.nan)
    mid = np.full(close.shape, np.nan)
    hi[history - 1 :] = np.percentile(windows, 80, axis=1)
    mid[history - 1 :] = np.percentile(windows, 50, axis=1)
    signal = np.full(close.shape, np.nan)
    signal[roc > hi] = 1.0
    signal[roc < mid] = 0.0
    signal[: lookback + history] = 0.0
    return signal
