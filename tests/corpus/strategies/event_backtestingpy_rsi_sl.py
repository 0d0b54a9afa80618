# corpus: data=btc15m
"""backtesting.py port: an RSI strategy whose next() uses self.data.Close[-1], buys with sl= and
tp= prices and closes on RSI > 70; the adapter maps backtesting.py's names onto ctx."""


class DataAdapter:
    def __init__(self, data):
        self._data = data

    @property
    def Close(self):
        return self._data.close

    @property
    def High(self):
        return self._data.high

    @property
    def Low(self):
        return self._data.low


class RsiOscillator:
    upper_bound = 70
    lower_bound = 30
    rsi_window = 14

    def __init__(self, ctx):
        self.ctx = ctx
        self.data = DataAdapter(ctx.data)

    def init(self):
        self.rsi = self.ctx.indicator(talib.RSI, self.ctx.data.close, self.rsi_window)

    def next(self):
        price = self.data.Close[-1]
        if self.ctx.position == 0 and self.rsi[-1] < self.lower_bound:
            self.ctx.buy(sl=price * 0.985, tp=price * 1.02)
        elif self.ctx.position > 0 and self.rsi[-1] > self.upper_bound:
            self.ctx.close()


def initialize(ctx):
    ctx.bt = RsiOscillator(ctx)
    ctx.bt.init()


def on_bar(ctx, bar):
    ctx.bt.next()
