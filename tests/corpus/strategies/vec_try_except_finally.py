# corpus: data=tsla1h
"""Defensive code: try/except around an optional indicator, type(e).__name__ in the message,
and a finally block that logs how the signals were built."""


def generate_signals(data, params):
    close = data.close.values
    notes = []
    try:
        period = int(params.get("period", "fourteen"))
    except (TypeError, ValueError) as e:
        notes.append(f"bad period ({type(e).__name__}), using 14")
        period = 14
    try:
        rsi = talib.RSI(close, timeperiod=period)
        kama = talib.KAMA(close, timeperiod=30)
        if np.isnan(kama).all():
            raise RuntimeError("KAMA is all NaN")
    except Exception as e:
        notes.append(f"{type(e).__name__}: {e}")
        kama = talib.SMA(close, 30)
    finally:
        notes.append("indicators ready")
        print("; ".join(notes))
    sig = np.where((rsi < 40) & (close > kama * 0.98), 1.0, np.where(rsi > 65, 0.0, np.nan))
    sig[:period] = 0.0
    return sig
