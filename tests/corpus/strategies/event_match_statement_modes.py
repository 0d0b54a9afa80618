# corpus: data=btc15m
"""Structural pattern matching (match/case) on a mode parameter and on (position, signal) tuples,
as recent LLM output often does."""


def initialize(ctx):
    ctx.mode = str(ctx.params.get("mode", "reversion"))
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, 14)
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 50)


def signal_for(ctx, bar):
    match ctx.mode:
        case "trend":
            return "buy" if bar.close > ctx.ema[-1] else "sell"
        case "reversion":
            if ctx.rsi[-1] < 30:
                return "buy"
            if ctx.rsi[-1] > 60:
                return "sell"
            return None
        case _:
            raise ValueError(f"unknown mode {ctx.mode!r}")


def on_bar(ctx, bar):
    if ctx.i < 50:
        return
    side = 1 if ctx.position > 0 else 0
    match (side, signal_for(ctx, bar)):
        case (0, "buy"):
            ctx.buy()
        case (1, "sell"):
            ctx.close()
        case _:
            pass
