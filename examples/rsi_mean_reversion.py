"""RSI mean reversion (event-driven, long only): buy when RSI is oversold, sell when it recovers."""


def initialize(ctx):
    ctx.rsi = ctx.indicator(talib.RSI, ctx.data.close, timeperiod=int(ctx.params.get("period", 14)))
    ctx.state["trades"] = 0


def on_bar(ctx, bar):
    rsi = ctx.rsi[-1]
    if ctx.position == 0 and rsi < ctx.params.get("oversold", 30):
        ctx.buy()
        ctx.state["trades"] = ctx.state["trades"] + 1
    elif ctx.position > 0 and rsi > ctx.params.get("exit", 55):
        ctx.close()
    if ctx.i == len(ctx.data) - 1 and ctx.i > 0 and bar.close > 0:
        ctx.log("entries:", ctx.state["trades"])
