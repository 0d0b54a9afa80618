# corpus: data=btc1h
"""ndarray methods on the history window each bar: .mean(), .std(), .var(), .min(), .max(),
.argmax(), .cumsum(), .any(), .all() and np.percentile."""


def on_bar(ctx, bar):
    if ctx.i < 60:
        return
    w = np.asarray(ctx.data.close[-60:])
    rets = np.diff(w) / w[:-1]
    recent_high_age = len(w) - 1 - w.argmax()
    path = rets.cumsum()
    calm = rets.var() < 4 * rets[-20:].var() and rets.std() > 0
    near_low = w[-1] <= w.min() + 0.25 * (w.max() - w.min())
    below_p20 = w[-1] < np.percentile(w, 20)
    crashing = (rets[-3:] < -0.02).any()
    rising = (np.diff(w[-4:]) > 0).all()
    if ctx.position == 0 and near_low and below_p20 and calm and not crashing and recent_high_age > 10:
        ctx.buy()
    elif ctx.position > 0 and (w[-1] > w.mean() or (rising and path[-1] > 0)):
        ctx.close()
