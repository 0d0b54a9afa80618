# corpus: data=aapl15m
"""Intraday momentum, flat overnight: long after three rising closes, and every position is closed on
the bar that starts at 15:30 New York time so the exit fills before the close."""


def generate_signals(data, params):
    close = data["close"]
    up3 = (close.diff() > 0).rolling(3).sum() == 3
    down2 = (close.diff() < 0).rolling(2).sum() == 2
    ny = data.index.tz_convert("America/New_York")
    last_half_hour = (ny.hour == 15) & (ny.minute >= 30)
    sig = pd.Series(np.nan, index=data.index)
    sig[up3] = 1.0
    sig[down2] = 0.0
    sig[last_half_hour] = 0.0
    sig.iloc[:3] = 0.0
    return sig
