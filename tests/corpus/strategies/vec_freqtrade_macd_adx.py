# corpus: data=btc1h
"""Freqtrade MACD + ADX strategy (ta.MACD returns macd, macdsignal, macdhist columns)."""

import talib.abstract as ta
from pandas import DataFrame


class MacdAdx:
    INTERFACE_VERSION = 3
    can_short = False

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        macd = ta.MACD(dataframe)
        dataframe["macd"] = macd["macd"]
        dataframe["macdsignal"] = macd["macdsignal"]
        dataframe["macdhist"] = macd["macdhist"]
        dataframe["adx"] = ta.ADX(dataframe, timeperiod=14)
        dataframe["ema100"] = ta.EMA(dataframe, timeperiod=100)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[
            (dataframe["macd"] > dataframe["macdsignal"]) & (dataframe["adx"] > 20) & (dataframe["volume"] > 0),
            ["enter_long", "enter_tag"],
        ] = (1, "macd_adx")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[(dataframe["macd"] < dataframe["macdsignal"]), "exit_long"] = 1
        return dataframe


def generate_signals(data, params):
    s = MacdAdx()
    meta = {"pair": "BTC/USD"}
    df = s.populate_exit_trend(s.populate_entry_trend(s.populate_indicators(data.copy(), meta), meta), meta)
    target = np.where(df["enter_long"] == 1, 1.0, np.where(df["exit_long"] == 1, 0.0, np.nan))
    return target
