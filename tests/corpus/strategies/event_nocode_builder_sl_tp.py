# corpus: data=eth1h
# ---- StrategyBuilder export ----
# strategy_id: 9f2c1e  version: 7
# blocks: BBANDS(20,2) -> PRICE_BELOW_LOWER -> BUY(size=1.0, sl=3%, tp=5%)
#         RSI(14) -> RSI_ABOVE(70) -> CLOSE
BB_PERIOD = 20
BB_DEV = 2.0
RSI_PERIOD = 14
RSI_EXIT_LEVEL = 70
STOP_LOSS_PERCENT = 3.0
TAKE_PROFIT_PERCENT = 5.0
MAX_TRADES_PER_DAY = 2


def initialize(ctx):
    ctx.bb_upper, ctx.bb_middle, ctx.bb_lower = ctx.indicator(talib.BBANDS, ctx.data.close, BB_PERIOD, BB_DEV, BB_DEV)
    ctx.rsi_1 = ctx.indicator(talib.RSI, ctx.data.close, RSI_PERIOD)
    ctx.state["day"] = None
    ctx.state["trades_today"] = 0


def on_bar(ctx, bar):
    day = bar.time.date()
    if ctx.state["day"] != day:
        ctx.state["day"] = day
        ctx.state["trades_today"] = 0
    if ctx.i < BB_PERIOD:
        return
    block_1 = bar.close < ctx.bb_lower[-1]
    block_2 = ctx.rsi_1[-1] > RSI_EXIT_LEVEL
    block_3 = ctx.state["trades_today"] < MAX_TRADES_PER_DAY
    if ctx.position == 0 and block_1 and block_3:
        ctx.buy(sl=bar.close * (1 - STOP_LOSS_PERCENT / 100), tp=bar.close * (1 + TAKE_PROFIT_PERCENT / 100))
        ctx.state["trades_today"] = ctx.state["trades_today"] + 1
    elif ctx.position > 0 and block_2:
        ctx.close()
