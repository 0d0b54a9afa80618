"""Feature blend: z-scored momentum features built with pct_change/diff, joined with pd.concat,
averaged per bar with .agg(func=...), and the score smoothed with an EWM."""


def zscore(s, window=100):
    return (s - s.rolling(window).mean()) / s.rolling(window).std()


def generate_signals(data, params):
    close = data.close
    features = pd.concat(
        [
            zscore(close.pct_change(5)).rename("mom5"),
            zscore(close.pct_change(20)).rename("mom20"),
            zscore(close.diff(10) / close).rename("diff10"),
            zscore(data.volume.pct_change().rolling(10).mean()).rename("vol"),
        ],
        axis=1,
    )
    score = features.agg(func="mean", axis=1)
    smooth = score.ewm(span=5).mean()
    return np.where(smooth > 0.3, 1.0, np.where(smooth < -0.3, 0.0, np.nan))
