# corpus: data=eth1h
# StrategyBuilder export 2024-05-02T10:11:12Z
# Name: Band squeeze + volume spike
PARAM_BB_PERIOD = 20
PARAM_BB_STD = 2.0
PARAM_SQUEEZE_PCT = 0.03
PARAM_VOLUME_MULT = 1.5
PARAM_EXIT_BARS = 12


def generate_signals(data, params):
    close = data.close.to_numpy()
    volume = data.volume.to_numpy()
    bb_upper, bb_middle, bb_lower = talib.BBANDS(close, PARAM_BB_PERIOD, PARAM_BB_STD, PARAM_BB_STD)
    cond_1 = (bb_upper - bb_lower) / bb_middle < PARAM_SQUEEZE_PCT * 2
    cond_2 = close > bb_upper
    cond_3 = volume > talib.SMA(volume, 20) * PARAM_VOLUME_MULT
    entry = cond_1 & cond_2 & cond_3
    target = np.zeros(len(close))
    bars_left = 0
    for i in range(len(close)):
        if entry[i]:
            bars_left = PARAM_EXIT_BARS
        if bars_left > 0:
            target[i] = 1.0
            bars_left -= 1
    return target
