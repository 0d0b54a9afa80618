"""A backtesting.py strategy ported with its class kept: SmaCross(Strategy) with init()/next(),
self.I(...) for indicators, crossover(), self.position and self.buy()/self.position.close(),
driven by a thin adapter from on_bar."""


def crossover(series1, series2):
    return series1[-2] < series2[-2] and series1[-1] > series2[-1]


class _Position:
    def __init__(self, ctx):
        self._ctx = ctx

    def __bool__(self):
        return self._ctx.position != 0

    @property
    def is_long(self):
        return self._ctx.position > 0

    def close(self):
        self._ctx.close()


class Strategy:
    def __init__(self, ctx):
        self._ctx = ctx
        self.data = ctx.data
        self.position = _Position(ctx)

    def I(self, func, *args, **kwargs):  # noqa: E743
        return self._ctx.indicator(func, *args, **kwargs)

    def buy(self, size=None, sl=None, tp=None):
        self._ctx.buy(size=size, sl=sl, tp=tp)

    def sell(self, size=None, sl=None, tp=None):
        self._ctx.sell(size=size, sl=sl, tp=tp)


class SmaCross(Strategy):
    n1 = 10
    n2 = 20

    def init(self):
        self.sma1 = self.I(talib.SMA, self.data.close, self.n1)
        self.sma2 = self.I(talib.SMA, self.data.close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()


def initialize(ctx):
    ctx.strategy = SmaCross(ctx)
    ctx.strategy.init()


def on_bar(ctx, bar):
    if ctx.i >= 1:
        ctx.strategy.next()
