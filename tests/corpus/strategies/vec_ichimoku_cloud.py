# corpus: data=btc1d
"""Ichimoku: tenkan/kijun from rolling highs and lows, the cloud shifted forward 26 bars
(the past projected forward, no look-ahead); long above the cloud with tenkan > kijun."""


def generate_signals(data, params):
    high, low, close = data["high"], data["low"], data["close"]
    tenkan = (high.rolling(9).max() + low.rolling(9).min()) / 2
    kijun = (high.rolling(26).max() + low.rolling(26).min()) / 2
    span_a = ((tenkan + kijun) / 2).shift(26)
    span_b = ((high.rolling(52).max() + low.rolling(52).min()) / 2).shift(26)
    cloud_top = pd.concat([span_a, span_b], axis=1).max(axis=1)
    cloud_bottom = pd.concat([span_a, span_b], axis=1).min(axis=1)
    long_ = (close > cloud_top) & (tenkan > kijun)
    short = (close < cloud_bottom) & (tenkan < kijun)
    return np.select([long_.to_numpy(), short.to_numpy()], [1.0, -1.0], default=0.0)
