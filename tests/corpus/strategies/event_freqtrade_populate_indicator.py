# corpus: data=btc15m
"""A freqtrade populate_indicators function reused through ctx.indicator: it builds a DataFrame
with talib.abstract and returns the entry column, revealed bar by bar."""

import talib.abstract as ta


def populate_indicators(close, high, low, volume):
    dataframe = pd.DataFrame({"close": close, "high": high, "low": low, "open": close, "volume": volume})
    dataframe["rsi"] = ta.RSI(dataframe, timeperiod=14)
    dataframe["ema50"] = ta.EMA(dataframe, timeperiod=50)
    dataframe["adx"] = ta.ADX(dataframe)
    dataframe["enter_long"] = 0
    dataframe.loc[
        (dataframe["rsi"] < 35) & (dataframe["adx"] < 30) & (dataframe["close"] > dataframe["ema50"] * 0.99),
        "enter_long",
    ] = 1
    return dataframe["enter_long"].astype(float)


def initialize(ctx):
    d = ctx.data
    ctx.enter = ctx.indicator(populate_indicators, d.close, d.high, d.low, d.volume)
    ctx.exit_rsi = ctx.indicator(talib.RSI, d.close, 14)


def on_bar(ctx, bar):
    if ctx.position == 0 and ctx.enter[-1] == 1:
        ctx.buy()
    elif ctx.position > 0 and ctx.exit_rsi[-1] > 60:
        ctx.close()
