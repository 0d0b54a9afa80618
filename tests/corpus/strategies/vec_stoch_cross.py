"""Slow stochastic crossover in the oversold zone; exit when %K leaves the overbought zone."""


def generate_signals(data, params):
    slowk, slowd = talib.STOCH(
        data.high.values,
        data.low.values,
        data.close.values,
        fastk_period=14,
        slowk_period=3,
        slowk_matype=0,
        slowd_period=3,
        slowd_matype=0,
    )
    prev_k, prev_d = np.roll(slowk, 1), np.roll(slowd, 1)
    cross_up = (slowk > slowd) & (prev_k <= prev_d) & (slowk < 25)
    leave_ob = (slowk < 80) & (prev_k >= 80)
    sig = np.full(len(slowk), np.nan)
    sig[cross_up] = 1
    sig[leave_ob] = 0
    sig[0] = 0
    return sig
