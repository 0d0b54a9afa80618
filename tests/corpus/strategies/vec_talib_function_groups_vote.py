"""Indicator vote over TA-Lib's function groups: every momentum oscillator of a known list that
TA-Lib's 'Momentum Indicators' group contains votes long or short."""


def generate_signals(data, params):
    groups = talib.get_function_groups()
    momentum = set(groups["Momentum Indicators"])
    close = data.close.values
    votes = []
    if "RSI" in momentum:
        votes.append(np.sign(talib.RSI(close, 14) - 50))
    if "MOM" in momentum:
        votes.append(np.sign(talib.MOM(close, 10)))
    if "ROC" in momentum:
        votes.append(np.sign(talib.ROC(close, 20)))
    if "CMO" in momentum:
        votes.append(np.sign(talib.CMO(close, 14)))
    score = np.nansum(np.vstack(votes), axis=0) / len(votes)
    return np.where(score >= 0.5, 1.0, np.where(score <= -0.5, 0.0, np.nan))
