# corpus: data=btc1h
"""A vectorbt port that kept vbt's shape: an `MA.run(close, window)` factory returning an object with
ma_crossed_above / ma_crossed_below, and Portfolio.from_signals replaced by entries/exits -> target."""


class MA:
    def __init__(self, close, window):
        self.close = close
        self.window = window
        self.ma = close.rolling(window).mean()

    @classmethod
    def run(cls, close, window):
        return cls(close, window)

    def ma_crossed_above(self, other):
        a, b = self.ma, other.ma
        return (a > b) & (a.shift(1) <= b.shift(1))

    def ma_crossed_below(self, other):
        a, b = self.ma, other.ma
        return (a < b) & (a.shift(1) >= b.shift(1))


def generate_signals(data, params):
    close = data["close"]
    fast_ma = MA.run(close, 10)
    slow_ma = MA.run(close, 50)
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    print(f"{entries.sum()} entries, {exits.sum()} exits")
    return np.where(entries, 1, np.where(exits, 0, np.nan))
