# corpus: data=btc15m
"""A rolling median filter with collections.deque(maxlen=...), as people port from pure-Python bots."""

from collections import deque
import statistics


def generate_signals(data, params):
    window = deque(maxlen=int(params.get("window", 32)))
    close = data.close.tolist()
    out = []
    position = 0.0
    for price in close:
        window.append(price)
        if len(window) == window.maxlen:
            med = statistics.median(window)
            if price < med * 0.992:
                position = 1.0
            elif price > med:
                position = 0.0
        out.append(position)
    return np.asarray(out)
