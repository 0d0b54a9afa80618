# corpus: data=btc15m
"""Rules as lambdas in a dict, dispatched by name from a parameter string; sorted(key=lambda)."""

RULES = {
    "rsi_dip": lambda c: c.rsi[-1] < 35,
    "near_ema": lambda c: c.data.close[-1] > c.ema[-1] * 0.99,
    "rsi_high": lambda c: c.rsi[-1] > 65,
    "ema_down": lambda c: c.ema[-1] < c.ema[-2],
}


def initialize(ctx):
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, 14)
    ctx.ema = ctx.indicator(talib.EMA, ctx.data.close, 100)
    ctx.entry_rules = [RULES[n] for n in str(ctx.params.get("entry", "rsi_dip,near_ema")).split(",")]
    ctx.exit_rules = [RULES[n] for n in sorted(["rsi_high", "ema_down"], key=lambda n: len(n))]


def on_bar(ctx, bar):
    if ctx.i < 101:
        return
    if ctx.position == 0 and all(rule(ctx) for rule in ctx.entry_rules):
        ctx.buy()
    elif ctx.position > 0 and any(rule(ctx) for rule in ctx.exit_rules):
        ctx.close()
