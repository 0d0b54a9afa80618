# corpus: data=tsla1h
"""A user-defined exception raised and caught, a __slots__ value class with __eq__/__lt__ so
candidate levels can be sorted, and raise ... from ... in a helper."""


class NoLevelError(Exception):
    """Raised when no support level is close enough to trade."""


class Level:
    __slots__ = ("price", "touches")

    def __init__(self, price, touches):
        self.price = price
        self.touches = touches

    def __eq__(self, other):
        return isinstance(other, Level) and self.price == other.price

    def __lt__(self, other):
        return (self.touches, -self.price) < (other.touches, -other.price)

    def __repr__(self):
        return f"Level({self.price:.2f}, touches={self.touches})"


def support_levels(lows, tolerance=0.004):
    levels = []
    for low in lows:
        for lv in levels:
            if abs(low / lv.price - 1) < tolerance:
                lv.touches += 1
                break
        else:
            levels.append(Level(low, 1))
    return sorted(levels, reverse=True)


def nearest_support(price, lows):
    try:
        best = [lv for lv in support_levels(lows) if lv.touches >= 3 and lv.price < price][0]
    except IndexError as exc:
        raise NoLevelError(f"no support under {price:.2f}") from exc
    return best


def on_bar(ctx, bar):
    if ctx.i < 100:
        return
    if ctx.position > 0:
        if bar.close > ctx.data.close[-2] * 1.01 or bar.index % 12 == 0:
            ctx.close()
        return
    try:
        level = nearest_support(bar.close, list(ctx.data.low[-100:-1]))
    except NoLevelError:
        return
    if bar.close < level.price * 1.005:
        ctx.buy(sl=level.price * 0.99)
