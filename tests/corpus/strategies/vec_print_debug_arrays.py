"""Debug printing as people do it: print(arr), str(arr), f-strings of arrays and of pandas objects,
str.format and %-formatting. The log shows up in the result."""


def generate_signals(data, params):
    close = data.close.values
    sma = talib.SMA(close, 20)
    signal = np.where(close > sma, 1.0, 0.0)
    print(signal[-5:])
    print("last closes: " + str(np.round(close[-3:], 2)))
    print(f"sma tail = {np.round(sma[-3:], 2)}")
    print(f"frame:\n{data[['close', 'volume']].tail(3)}")
    print(f"series head {data.close.head(2)}")
    exposure = signal.mean()
    print("time in market: {:.1%}".format(exposure))
    print("{} bars, {} long".format(len(signal), int(signal.sum())))
    print("first close %.2f, last close %.2f" % (close[0], close[-1]))
    print("stats: %s" % {"max": round(float(close.max()), 2), "min": round(float(close.min()), 2)})
    return signal
