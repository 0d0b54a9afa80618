# corpus: data=btc1h
"""A small indicator pipeline as classes: private attributes, __repr__, __call__, @property,
@staticmethod and @classmethod."""


class Indicator:
    def __init__(self, name, period):
        self._name = name
        self._period = int(period)

    @property
    def period(self):
        return self._period

    def __repr__(self):
        return f"Indicator({self._name!r}, period={self._period})"

    def __call__(self, close):
        return getattr(talib, self._name)(close, timeperiod=self._period)

    @staticmethod
    def cross_up(a, b):
        prev_a, prev_b = np.roll(a, 1), np.roll(b, 1)
        out = (a > b) & (prev_a <= prev_b)
        out[0] = False
        return out

    @classmethod
    def ema(cls, period):
        return cls("EMA", period)


def generate_signals(data, params):
    fast = Indicator.ema(params.get("fast", 21))
    slow = Indicator("SMA", params.get("slow", 55))
    close = data.close.values
    f, s = fast(close), slow(close)
    print(repr(fast), slow, "warm-up", max(fast.period, slow.period))
    sig = np.full(close.shape, np.nan)
    sig[Indicator.cross_up(f, s)] = 1.0
    sig[Indicator.cross_up(s, f)] = 0.0
    sig[0] = 0.0
    return sig
