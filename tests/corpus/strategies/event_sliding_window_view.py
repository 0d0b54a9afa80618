# corpus: data=eth1h
"""np.lib.stride_tricks.sliding_window_view over the seen history: the share of the last 20 rolling
8-bar windows that trended up decides the position."""

from numpy.lib.stride_tricks import sliding_window_view


def on_bar(ctx, bar):
    if ctx.i < 40:
        return
    hist = np.asarray(ctx.data.close[-28:])
    windows = sliding_window_view(hist, 8)
    up = windows[:, -1] > windows[:, 0]
    share = up.mean()
    if share > 0.8:
        ctx.buy()
    elif share < 0.4:
        ctx.close()
