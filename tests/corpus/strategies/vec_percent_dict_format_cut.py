# corpus: data=msft1d
"""RSI zones with pd.cut on fixed bins mapped to exposures, a rolling .agg({...}) summary, and
%-formatting with a dict ("%(name)s") for the report line."""

ZONE_EXPOSURE = {"oversold": 1.0, "low": 0.75, "neutral": 0.5, "high": 0.25, "overbought": 0.0}


def generate_signals(data, params):
    rsi = pd.Series(talib.RSI(data.close.values, 14), index=data.index)
    zones = pd.cut(rsi, bins=[0, 30, 45, 55, 70, 100], labels=list(ZONE_EXPOSURE))
    exposure = zones.map(ZONE_EXPOSURE).astype(float)
    smooth = exposure.rolling(3).agg("median")
    summary = data[["close", "volume"]].rolling(20).agg({"close": "mean", "volume": "max"})
    low_volume = data.volume < summary["volume"] * 0.2
    smooth[low_volume] = np.nan
    print("%(n)d bars, %(long).0f%% fully long" % {"n": len(smooth), "long": 100 * (smooth == 1.0).mean()})
    out = smooth.to_numpy(copy=True)  # pandas 3 hands out read-only views
    out[:20] = 0.0
    return out
