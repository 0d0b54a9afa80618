# corpus: data=tsla1h
"""Locals and helpers whose names start with an underscore, as many code generators emit them."""


def _atr_stop(_price, _atr, _mult=2.5):
    return _price - _mult * _atr


def initialize(ctx):
    ctx.atr = ctx.indicator(talib.ATR, ctx.data.high, ctx.data.low, ctx.data.close, 14)
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 34)


def on_bar(ctx, bar):
    _price = bar.close
    _atr = ctx.atr[-1]
    if np.isnan(_atr) or ctx.i < 35:
        return
    _trend_up = _price > ctx.ema[-1] and ctx.ema[-1] > ctx.ema[-3]
    if ctx.position == 0 and _trend_up:
        _sl = _atr_stop(_price, _atr)
        ctx.buy(sl=_sl)
    elif ctx.position > 0 and not _trend_up:
        ctx.close()
