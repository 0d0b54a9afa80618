# corpus: data=btc1h
"""backtesting.py-style class ported with its idioms: class attributes as parameters, init()
computing indicators with self.I, next() with self.position checks and buy(size=...)."""


class BollingerReversion:
    n = 20
    k = 2.0
    size = 0.9

    def __init__(self, ctx):
        self._ctx = ctx

    def I(self, fn, *args, **kwargs):  # noqa: E743
        return self._ctx.indicator(fn, *args, **kwargs)

    @property
    def position(self):
        return self._ctx.position

    def init(self):
        close = self._ctx.data.close
        self.upper, self.mid, self.lower = self.I(talib.BBANDS, close, self.n, self.k, self.k)

    def next(self):
        price = self._ctx.data.close[-1]
        if not self.position and price < self.lower[-1]:
            self._ctx.buy(size=self.size)
        elif self.position and price > self.mid[-1]:
            self._ctx.close()


def initialize(ctx):
    ctx.s = BollingerReversion(ctx)
    ctx.s.init()


def on_bar(ctx, bar):
    ctx.s.next()
