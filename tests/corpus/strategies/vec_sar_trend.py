# corpus: data=btc1h
"""Parabolic SAR stop-and-reverse: long when the SAR is below the close, short when above."""


def generate_signals(data, params):
    acceleration = float(params.get("acceleration", 0.02))
    maximum = float(params.get("maximum", 0.2))
    sar = talib.SAR(data.high.values, data.low.values, acceleration=acceleration, maximum=maximum)
    pos = np.where(sar < data.close.values, 1.0, -1.0)
    pos[np.isnan(sar)] = 0.0
    return pos
