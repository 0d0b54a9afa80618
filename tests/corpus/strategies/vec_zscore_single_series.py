# corpus: data=msft1d
"""Pairs-like z-score on one series: the log price against its rolling mean.
Short above +2 sigma, long below -2 sigma, flat when the z-score crosses back through 0."""


def generate_signals(data, params):
    window = int(params.get("window", 40))
    entry = float(params.get("entry", 2.0))
    logp = np.log(data["close"])
    z = (logp - logp.rolling(window).mean()) / logp.rolling(window).std()
    zs = np.nan_to_num(z.to_numpy(), nan=0.0)
    position = np.zeros(len(zs))
    current = 0.0
    for i in range(1, len(zs)):
        if current == 0.0:
            if zs[i] > entry:
                current = -1.0
            elif zs[i] < -entry:
                current = 1.0
        elif (current > 0 and zs[i] >= 0) or (current < 0 and zs[i] <= 0):
            current = 0.0
        position[i] = current
    return position
