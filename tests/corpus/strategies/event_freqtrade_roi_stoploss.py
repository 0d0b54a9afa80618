# corpus: data=btc15m
"""A freqtrade strategy's risk settings ported to event style: minimal_roi as a time-decaying
take-profit table (minutes -> return), a fixed stoploss, a trailing stop once in profit."""

minimal_roi = {"0": 0.02, "60": 0.01, "180": 0.005, "360": 0}
stoploss = -0.03
trailing_stop = True
trailing_stop_positive = 0.005
trailing_stop_positive_offset = 0.01


def initialize(ctx):
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, 14)
    ctx.bb_upper, ctx.bb_mid, ctx.bb_lower = ctx.indicator(talib.BBANDS, ctx.data.close, 20, 2, 2)
    ctx.state.update(entry_price=None, entry_time=None, peak=None)
    ctx.roi = sorted((int(k), v) for k, v in minimal_roi.items())


def roi_for(ctx, minutes):
    target = None
    for start, ret in ctx.roi:
        if minutes >= start:
            target = ret
    return target


def on_bar(ctx, bar):
    s = ctx.state
    if ctx.position > 0 and s["entry_price"] is not None:
        minutes = (bar.time - s["entry_time"]).total_seconds() / 60
        profit = bar.close / s["entry_price"] - 1
        s["peak"] = max(s["peak"], bar.close)
        roi = roi_for(ctx, minutes)
        if roi is not None and profit >= roi:
            ctx.close()
        elif trailing_stop and s["peak"] / s["entry_price"] - 1 > trailing_stop_positive_offset:
            ctx.set_stops(sl=s["peak"] * (1 - trailing_stop_positive))
        return
    if ctx.position == 0 and ctx.rsi[-1] < 30 and bar.close < ctx.bb_lower[-1]:
        ctx.buy(sl=bar.close * (1 + stoploss))
        s.update(entry_price=bar.close, entry_time=bar.time, peak=bar.close)
