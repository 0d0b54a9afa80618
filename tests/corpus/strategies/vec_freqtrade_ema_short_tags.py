# corpus: data=btc15m
"""Freqtrade strategy with can_short = True, enter_tag columns and a 1h trend built from the 15m
frame by resample (shifted so only closed hours are used), like an informative pair."""

import talib.abstract as ta
from pandas import DataFrame


class EmaCrossShort:
    can_short = True
    timeframe = "15m"
    informative_timeframe = "1h"

    def populate_indicators(self, dataframe: DataFrame) -> DataFrame:
        dataframe["ema_fast"] = ta.EMA(dataframe, timeperiod=9)
        dataframe["ema_slow"] = ta.EMA(dataframe, timeperiod=21)
        hourly = dataframe["close"].resample("1h").last().shift(1)
        hourly_ema = hourly.ewm(span=20, adjust=False).mean()
        dataframe["trend_1h"] = (hourly > hourly_ema).astype(float).reindex(dataframe.index, method="ffill")
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame) -> DataFrame:
        up = (dataframe["ema_fast"] > dataframe["ema_slow"]) & (
            dataframe["ema_fast"].shift(1) <= dataframe["ema_slow"].shift(1)
        )
        down = (dataframe["ema_fast"] < dataframe["ema_slow"]) & (
            dataframe["ema_fast"].shift(1) >= dataframe["ema_slow"].shift(1)
        )
        dataframe.loc[up & (dataframe["trend_1h"] == 1), ["enter_long", "enter_tag"]] = (1, "ema_cross_up")
        dataframe.loc[down & (dataframe["trend_1h"] == 0), ["enter_short", "enter_tag"]] = (1, "ema_cross_down")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame) -> DataFrame:
        rsi = ta.RSI(dataframe, timeperiod=14)
        dataframe.loc[rsi > 70, "exit_long"] = 1
        dataframe.loc[rsi < 30, "exit_short"] = 1
        return dataframe


def generate_signals(data, params):
    s = EmaCrossShort()
    df = s.populate_exit_trend(s.populate_entry_trend(s.populate_indicators(data.copy())))
    target = np.full(len(df), np.nan)
    for col, value in (("exit_long", 0.0), ("exit_short", 0.0), ("enter_long", 1.0), ("enter_short", -1.0)):
        if col in df.columns:
            target[(df[col] == 1).to_numpy()] = value
    target[0] = 0.0
    return target
