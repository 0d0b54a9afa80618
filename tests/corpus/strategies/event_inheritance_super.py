# corpus: data=btc1h
"""Strategy classes with inheritance: a BaseStrategy with __init__, a subclass calling
super().__init__(), @classmethod from_params, @staticmethod helpers and a method override."""


class BaseStrategy:
    name = "base"

    def __init__(self, ctx, lookback):
        self.ctx = ctx
        self.lookback = lookback
        self.signals = 0

    @classmethod
    def from_params(cls, ctx):
        return cls(ctx, int(ctx.params.get("lookback", 30)))

    @staticmethod
    def pct(a, b):
        return a / b - 1.0

    def should_enter(self, bar):
        return False

    def should_exit(self, bar):
        return False

    def step(self, bar):
        if ctx_position(self.ctx) == 0 and self.should_enter(bar):
            self.ctx.buy()
            self.signals += 1
        elif ctx_position(self.ctx) > 0 and self.should_exit(bar):
            self.ctx.close()


def ctx_position(ctx):
    return ctx.position


class MomentumStrategy(BaseStrategy):
    name = "momentum"

    def __init__(self, ctx, lookback, threshold=0.02):
        super().__init__(ctx, lookback)
        self.threshold = threshold
        self.sma = ctx.indicator(talib.SMA, ctx.data.close, lookback)

    def should_enter(self, bar):
        past = self.ctx.data.close[-self.lookback]
        return self.pct(bar.close, past) > self.threshold and bar.close > self.sma[-1]

    def should_exit(self, bar):
        return bar.close < self.sma[-1]


def initialize(ctx):
    ctx.strategy = MomentumStrategy.from_params(ctx)


def on_bar(ctx, bar):
    if ctx.i > ctx.strategy.lookback:
        ctx.strategy.step(bar)
