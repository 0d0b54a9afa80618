"""Curves sized for a browser: at most N points that keep a curve's shape and its extremes.

`extremes(values, points)` cuts the series into buckets and keeps, from each, its first point and the
indices of its minimum and maximum (in time order), plus the very last point: the chart's envelope is
exact (every peak and trough survives, so the maximum drawdown measured on the kept equity points is the
true one) and a bucket costs at most three points. Chosen over LTTB, which picks one point per bucket by
triangle area and can drop the trough of the worst drawdown. Pure numpy, O(n), no Python loop per point.
"""

from __future__ import annotations

import numpy as np

DEFAULT_POINTS = 1000


def extremes(values: np.ndarray, points: int = DEFAULT_POINTS, *also: np.ndarray) -> np.ndarray:
    """Sorted indices into `values` (at most `points`, at least the first and the last) whose points draw
    the same envelope as the whole series. Extra series in `also` (for example the drawdown beside the
    equity) have their minima and maxima kept too, within the same budget. With fewer than four points
    (no room for a bucket) only the ends and what fits of the series' minimum and maximum are kept."""
    n = values.shape[0]
    if points < 2:
        raise ValueError("points must be at least 2")
    if n <= points:
        return np.arange(n)
    series = (values, *also)
    per_bucket = 1 + 2 * len(series)  # the bucket's first point, then a minimum and a maximum per series
    if points < per_bucket + 1:  # too few for one bucket: the ends, then the primary series' extremes
        inner = [int(np.argmin(values)), int(np.argmax(values))][: points - 2]
        return np.unique(np.array([0, n - 1, *inner], dtype=np.int64))
    buckets = (points - 1) // per_bucket
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    keep = [starts, np.array([n - 1])]
    for s in series:
        keep.append(_bucket_arg(s, edges, np.minimum))
        keep.append(_bucket_arg(s, edges, np.maximum))
    return np.unique(np.concatenate(keep))


def _bucket_arg(values: np.ndarray, edges: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """For each bucket [edges[k], edges[k+1]), the index of its first minimum (or maximum); a bucket whose
    extreme is NaN has none."""
    starts = edges[:-1]
    best = reduce.reduceat(values, starts)
    is_best = values == np.repeat(best, np.diff(edges))
    # the first index of each bucket where the value equals the bucket's extreme: the smallest index that
    # is one, the others standing in as n (a flat curve ties over whole buckets: no search per tie)
    n = values.shape[0]
    first = np.minimum.reduceat(np.where(is_best, np.arange(n), n), starts)
    return first[first < n]


def window(times: np.ndarray, start: np.datetime64 | None, end: np.datetime64 | None) -> tuple[int, int]:
    """The index range [lo, hi) of the sorted `times` within start..end (both inclusive, None = open)."""
    lo = 0 if start is None else int(np.searchsorted(times, start, side="left"))
    hi = times.shape[0] if end is None else int(np.searchsorted(times, end, side="right"))
    return lo, max(lo, hi)
