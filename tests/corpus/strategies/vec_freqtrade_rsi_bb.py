# corpus: data=btc15m
"""Freqtrade-style strategy ported as-is: populate_indicators / populate_entry_trend /
populate_exit_trend on a DataFrame, with talib.abstract as ta."""

import talib.abstract as ta
import numpy as np  # noqa
import pandas as pd


class BBRSIStrategy:
    minimal_roi = {"0": 0.05}
    stoploss = -0.10
    timeframe = "15m"

    def populate_indicators(self, dataframe: pd.DataFrame) -> pd.DataFrame:
        dataframe["rsi"] = ta.RSI(dataframe, timeperiod=14)
        bollinger = ta.BBANDS(dataframe, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
        dataframe["bb_lowerband"] = bollinger["lowerband"]
        dataframe["bb_middleband"] = bollinger["middleband"]
        dataframe["bb_upperband"] = bollinger["upperband"]
        return dataframe

    def populate_entry_trend(self, dataframe: pd.DataFrame) -> pd.DataFrame:
        dataframe.loc[
            (dataframe["rsi"] < 35) & (dataframe["close"] < dataframe["bb_lowerband"]) & (dataframe["volume"] > 0),
            "enter_long",
        ] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: pd.DataFrame) -> pd.DataFrame:
        dataframe.loc[(dataframe["rsi"] > 65) | (dataframe["close"] > dataframe["bb_upperband"]), "exit_long"] = 1
        return dataframe


def generate_signals(data, params):
    strategy = BBRSIStrategy()
    df = strategy.populate_indicators(data.copy())
    df = strategy.populate_entry_trend(df)
    df = strategy.populate_exit_trend(df)
    df["target"] = np.nan
    df.loc[df["exit_long"] == 1, "target"] = 0.0
    df.loc[df["enter_long"] == 1, "target"] = 1.0
    return df["target"].to_numpy()
