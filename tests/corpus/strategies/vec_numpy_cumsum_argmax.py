# corpus: data=btc1h
"""Bars since the 48-bar high (argmax of each trailing window) and a cumulative-sum volume
balance: long when a fresh high was made within 3 bars and buying volume dominates."""

import numpy as np


def generate_signals(data, params):
    close = data.close.to_numpy()
    volume = data.volume.to_numpy()
    window = int(params.get("window", 48))
    windows = np.lib.stride_tricks.sliding_window_view(close, window)
    bars_since_high = np.full(close.shape, np.nan)
    bars_since_high[window - 1 :] = window - 1 - windows.argmax(axis=1)
    direction = np.sign(np.diff(close, prepend=close[0]))
    balance = np.cumsum(direction * volume)
    balance_change = np.full(close.shape, np.nan)
    balance_change[24:] = balance[24:] - balance[:-24]
    sig = np.where((bars_since_high <= 3) & (balance_change > 0), 1.0, np.nan)
    sig[bars_since_high > 20] = 0.0
    sig[:window] = 0.0
    return sig
