# corpus: data=aapl15m
"""Opening range breakout: the high/low of each day's first two 15-minute bars (groupby by date,
cumulative so nothing later in the day is used); long above the range high, flat at the last hour."""


def generate_signals(data, params):
    n_open = int(params.get("opening_bars", 2))
    et = data.index.tz_convert("America/New_York")
    day = pd.Series(et.date, index=data.index)
    bar_of_day = data.groupby(day).cumcount()
    in_range = bar_of_day < n_open
    range_high = data["high"].where(in_range).groupby(day).cummax()
    range_high = range_high.groupby(day).ffill()
    late = et.hour >= 15
    signal = pd.Series(np.nan, index=data.index)
    signal[(bar_of_day >= n_open) & (data["close"] > range_high)] = 1.0
    signal[late] = 0.0
    signal.iloc[0] = 0.0
    return signal
