# corpus: data=btc15m
"""Closures: a stateful signal filter built with nonlocal (a cooldown after each exit),
applied bar by bar; lambdas for the entry/exit rules."""


def make_cooldown_filter(cooldown):
    last_exit = -(10**9)
    position = 0.0

    def step(i, want_long, want_exit):
        nonlocal last_exit, position
        if position == 0.0 and want_long and i - last_exit > cooldown:
            position = 1.0
        elif position == 1.0 and want_exit:
            position = 0.0
            last_exit = i
        return position

    return step


def generate_signals(data, params):
    close = data.close.values
    rsi = talib.RSI(close, 7)
    is_entry = lambda k: rsi[k] < 25  # noqa: E731
    is_exit = lambda k: rsi[k] > 55  # noqa: E731
    step = make_cooldown_filter(int(params.get("cooldown", 16)))
    return np.array([step(i, is_entry(i), is_exit(i)) for i in range(len(close))])
