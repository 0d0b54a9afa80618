# corpus: data=btc1h
"""Hour-of-day seasonality learned online: a defaultdict(list) of past returns per UTC hour;
long in the next hour when that hour's average return so far is positive (after 10 samples)."""

from collections import defaultdict


def generate_signals(data, params):
    ret = data.close.pct_change().fillna(0.0).to_numpy()
    hours = data.index.hour
    history = defaultdict(list)
    sig = np.zeros(len(ret))
    for i in range(len(ret) - 1):
        history[hours[i]].append(ret[i])
        next_hour = (hours[i] + 1) % 24
        past = history[next_hour]
        if len(past) >= 10 and sum(past) / len(past) > 0:
            sig[i] = 1.0
    return sig
