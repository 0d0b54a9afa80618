# corpus: data=btc1h
"""A position manager class with private attributes (self._n, self._window), __repr__, __len__ and
a @property, kept on ctx between bars."""


class PositionManager:
    def __init__(self, window, max_trades):
        self._window = window
        self._n = 0
        self._max = max_trades
        self._history = []

    def __repr__(self):
        return f"PositionManager(window={self._window}, trades={self._n})"

    def __len__(self):
        return len(self._history)

    @property
    def can_trade(self):
        return self._n < self._max

    def record(self, price):
        self._history.append(price)
        self._history = self._history[-self._window :]

    def mean(self):
        return sum(self._history) / len(self._history)

    def opened(self):
        self._n += 1


def initialize(ctx):
    ctx.pm = PositionManager(window=48, max_trades=int(ctx.params.get("max_trades", 40)))


def on_bar(ctx, bar):
    pm = ctx.pm
    pm.record(bar.close)
    if len(pm) < 48:
        return
    mean = pm.mean()
    if ctx.position == 0 and pm.can_trade and bar.close < mean * 0.985:
        ctx.buy()
        pm.opened()
    elif ctx.position > 0 and bar.close > mean:
        ctx.close()
    if ctx.i % 500 == 0:
        ctx.log(repr(pm))
