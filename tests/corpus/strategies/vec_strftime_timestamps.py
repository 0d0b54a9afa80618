# corpus: data=aapl15m
"""Timestamps: ts.strftime, f"{ts:%H:%M}", pd.Timestamp arithmetic and the .date of the index.
Long from 30 minutes after each session's open (New York) for two hours, when the day opened up."""


def generate_signals(data, params):
    ny = data.index.tz_convert("America/New_York")
    opens = {}
    sig = np.zeros(len(data))
    closes = data.close.to_numpy()
    first_day = ny[0].strftime("%Y-%m-%d")
    for i, ts in enumerate(ny):
        key = ts.date()
        if key not in opens:
            opens[key] = (ts, closes[i])
        session_start, first_close = opens[key]
        start = session_start + pd.Timedelta(minutes=30)
        stop = start + pd.Timedelta(hours=2)
        if start <= ts < stop and closes[i] > first_close:
            sig[i] = 1.0
    label = f"{ny[0]:%H:%M}"
    print(f"first session {first_day} opens at {label} New York time; {len(opens)} sessions")
    assert pd.Timestamp(ny[-1]) - pd.Timestamp(ny[0]) > pd.Timedelta(days=1)
    return sig
