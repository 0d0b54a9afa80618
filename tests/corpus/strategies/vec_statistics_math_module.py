# corpus: data=msft1d
"""statistics and math: a log-return t-statistic over 60 days with statistics.mean/stdev and
math.sqrt/math.log; long while the drift is significant, flat otherwise."""

import math
import statistics


def generate_signals(data, params):
    close = data.close.tolist()
    logret = [0.0] + [math.log(b / a) for a, b in zip(close[:-1], close[1:])]
    n = int(params.get("window", 60))
    out = [0.0] * len(close)
    for i in range(n, len(close)):
        sample = logret[i - n + 1 : i + 1]
        sd = statistics.stdev(sample)
        t = statistics.mean(sample) / (sd / math.sqrt(n)) if sd > 0 else 0.0
        out[i] = 1.0 if t > 1.0 else (0.0 if t < 0.0 else math.nan)
    med = statistics.median(logret)
    assert math.isfinite(med)
    return np.array(out)
