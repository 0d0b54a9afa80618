# corpus: data=eth1h
"""Freqtrade strategy with can_short: STOCH (slowk/slowd) and CCI, enter_long / enter_short,
with local crossed_above / crossed_below helpers in the style of qtpylib."""

import talib.abstract as ta
import pandas as pd


def crossed_above(series1: pd.Series, series2: pd.Series) -> pd.Series:
    return (series1 > series2) & (series1.shift(1) <= series2.shift(1))


def crossed_below(series1: pd.Series, series2: pd.Series) -> pd.Series:
    return (series1 < series2) & (series1.shift(1) >= series2.shift(1))


def populate_indicators(dataframe):
    stoch = ta.STOCH(dataframe, fastk_period=14, slowk_period=3, slowd_period=3)
    dataframe["slowk"] = stoch["slowk"]
    dataframe["slowd"] = stoch["slowd"]
    dataframe["cci"] = ta.CCI(dataframe, timeperiod=20)
    return dataframe


def populate_entry_trend(dataframe):
    dataframe.loc[crossed_above(dataframe["slowk"], dataframe["slowd"]) & (dataframe["slowk"] < 30), "enter_long"] = 1
    dataframe.loc[crossed_below(dataframe["slowk"], dataframe["slowd"]) & (dataframe["slowk"] > 70), "enter_short"] = 1
    return dataframe


def populate_exit_trend(dataframe):
    dataframe.loc[dataframe["cci"] > 150, "exit_long"] = 1
    dataframe.loc[dataframe["cci"] < -150, "exit_short"] = 1
    return dataframe


def generate_signals(data, params):
    df = populate_exit_trend(populate_entry_trend(populate_indicators(data.copy())))
    df = df.fillna({"enter_long": 0, "enter_short": 0, "exit_long": 0, "exit_short": 0})
    target = pd.Series(np.nan, index=df.index)
    target[df["exit_long"] == 1] = 0.0
    target[df["exit_short"] == 1] = 0.0
    target[df["enter_long"] == 1] = 1.0
    target[df["enter_short"] == 1] = -1.0
    return target
