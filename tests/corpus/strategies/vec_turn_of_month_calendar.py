# corpus: data=msft1d
"""Turn-of-the-month calendar effect: long from the 26th of each month to the 3rd of the next,
flat otherwise, skipping Mondays at entry (dayofweek) - a classic calendar anomaly test."""


def generate_signals(data, params):
    idx = data.index
    dom = idx.day
    window = (dom >= 26) | (dom <= 3)
    sig = np.where(window, 1.0, 0.0)
    entering = window & ~np.roll(window, 1)
    sig[entering & (idx.dayofweek == 0)] = np.nan
    sig[0] = 0.0
    return sig
