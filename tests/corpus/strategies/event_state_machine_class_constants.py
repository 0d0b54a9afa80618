# corpus: data=btc1h
"""An explicit state machine (FLAT -> ARMED -> LONG -> COOLDOWN) with class-level constants
standing in for an enum."""


class State:
    FLAT = "flat"
    ARMED = "armed"
    LONG = "long"
    COOLDOWN = "cooldown"


def initialize(ctx):
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, 14)
    ctx.state.update(mode=State.FLAT, armed_at=0, cooldown_until=0)


def on_bar(ctx, bar):
    s = ctx.state
    r = ctx.rsi[-1]
    if np.isnan(r):
        return
    mode = s["mode"]
    if mode == State.FLAT and r < 30:
        s.update(mode=State.ARMED, armed_at=ctx.i)
    elif mode == State.ARMED:
        if r > 35:
            ctx.buy()
            s["mode"] = State.LONG
        elif ctx.i - s["armed_at"] > 10:
            s["mode"] = State.FLAT
    elif mode == State.LONG and (r > 65 or r < 20):
        ctx.close()
        s.update(mode=State.COOLDOWN, cooldown_until=ctx.i + 6)
    elif mode == State.COOLDOWN and ctx.i >= s["cooldown_until"]:
        s["mode"] = State.FLAT
