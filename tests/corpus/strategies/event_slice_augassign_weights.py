# corpus: data=btc1h
"""Weighted momentum vote with numpy: a weight vector edited by slice augmented assignment
(w[1:3] += 1), fancy indexing of the lookbacks that agree, and np.clip of the score to a target."""


def initialize(ctx):
    weights = np.ones(5)
    weights[1:3] += 1  # the medium lookbacks count double
    weights[-1:] *= 0.5
    ctx.weights = weights / weights.sum()
    ctx.lookbacks = np.array([6, 12, 24, 48, 96])


def on_bar(ctx, bar):
    if ctx.i < 97:
        return
    closes = np.asarray(ctx.data.close[-97:])
    past = closes[-1 - ctx.lookbacks]
    votes = np.sign(closes[-1] - past)
    agree = np.flatnonzero(votes > 0)
    score = ctx.weights[agree].sum() - ctx.weights[votes < 0].sum()
    x = float(np.clip(score, 0.0, 1.0))
    ctx.target(round(x * 2) / 2)
