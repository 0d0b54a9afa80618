"""Local names starting with an underscore (a habit of many authors and code generators)."""


def _crossover(_a, _b):
    _prev = np.roll(_a - _b, 1)
    _out = ((_a - _b) > 0) & (_prev <= 0)
    _out[0] = False
    return _out


def generate_signals(data, params):
    _close = data.close.values
    _fast = talib.EMA(_close, 9)
    _slow = talib.EMA(_close, 26)
    _sig = np.full(len(_close), np.nan)
    _sig[_crossover(_fast, _slow)] = 1.0
    _sig[_crossover(_slow, _fast)] = 0.0
    _sig[0] = 0.0
    for _i, _ in enumerate(_sig[:3]):
        pass
    return _sig
