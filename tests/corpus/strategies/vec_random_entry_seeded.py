# corpus: data=aapl1h
"""A random-entry benchmark (the baseline a quant compares a strategy against): entries drawn with a
seeded numpy Generator, a fixed 7-bar holding period. Deterministic because the seed is fixed."""


def generate_signals(data, params):
    n = len(data)
    rng = np.random.default_rng(int(params.get("seed", 42)))
    draws = rng.random(n)
    entries = draws < params.get("p_entry", 0.03)
    hold = int(params.get("hold", 7))
    target = np.zeros(n)
    i = 0
    while i < n:
        if entries[i]:
            target[i : i + hold] = 1.0
            i += hold
        else:
            i += 1
    return target
