# corpus: data=eth1h
"""Hour-of-day seasonality with groupby: the expanding mean return of each UTC hour, shifted within
the hour's group so a bar only sees earlier days; long in hours whose past mean is positive."""


def generate_signals(data, params):
    ret = data.close.pct_change()
    next_ret_hour = (data.index.hour + 1) % 24
    frame = pd.DataFrame({"ret": ret, "hour": data.index.hour}, index=data.index)
    past_mean = frame.groupby("hour")["ret"].transform(lambda s: s.expanding(min_periods=5).mean())
    table = pd.DataFrame({"hour": frame["hour"], "mean": past_mean})
    latest = {}
    out = np.zeros(len(frame))
    for i, (h, m) in enumerate(zip(table["hour"].to_numpy(), table["mean"].to_numpy())):
        latest[h] = m
        want = latest.get(next_ret_hour[i], np.nan)
        out[i] = 1.0 if want == want and want > 0 else 0.0
    by_hour = frame.groupby("hour")["ret"].agg(["count"])
    assert int(by_hour["count"].sum()) == int(ret.notna().sum())
    return out
