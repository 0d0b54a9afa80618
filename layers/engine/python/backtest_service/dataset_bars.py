"""The runner's market data for a request that names a dataset: `bars_for(request, owner)`.

The bars come from the dataset's validated columnar copy (`bar_files.bars_from_npz`: numpy only, no
parsing, no pyarrow), cut to the request's days and aggregated to its timeframe when that is coarser than
the dataset's (the submit function checked both). The last dataset read is kept per container (keyed by
its id and fingerprint, checked against the record on every job), so a series of backtests on one dataset
downloads it once.

A dataset deleted (or expired) after the job was queued, or no longer the job owner's, ends the job FAILED
with `DatasetUnavailable`: running again would fail the same way.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from backtest_engine.bar_files import bars_from_npz
from backtest_engine.bars import Bars
from backtest_engine.catalog import TIMEFRAMES
from backtest_engine.errors import UserInputError
from backtest_engine.market_data import aggregate
from backtest_engine.models import BacktestRequest
from backtest_service.dataset_models import DatasetStatus
from backtest_service.dataset_store import DatasetStore, default_dataset_store

_DAY_NS = 86_400 * 1_000_000_000
_cache: dict[str, Any] = {}
_lock = threading.Lock()


class DatasetUnavailable(UserInputError):
    """The dataset a queued backtest names is gone (deleted, expired) or not the job owner's."""

    code = "DatasetUnavailable"


def bars_for(request: BacktestRequest, owner: str, *, store: DatasetStore | None = None) -> Bars | None:
    """The dataset's bars for `request`; None when the request names no dataset (the synthetic catalog)."""
    if request.dataset_id is None:
        return None
    store = store or default_dataset_store()
    dataset_id = request.dataset_id
    record = store.get(dataset_id)
    if record is None or record.owner != owner or record.status is not DatasetStatus.READY or not record.data_key:
        raise DatasetUnavailable(
            f"dataset {dataset_id!r} was deleted (or expired) after this backtest was submitted; "
            "upload it again and submit the backtest with the new dataset_id"
        )
    fingerprint = str((record.stats or {}).get("fingerprint"))
    with _lock:
        cached = _cache.get("bars") if _cache.get("key") == (dataset_id, fingerprint) else None
    if cached is None:
        try:
            body = store.s3.get_object(Bucket=store.bucket, Key=record.data_key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise DatasetUnavailable(
                    f"dataset {dataset_id!r} was deleted after this backtest was submitted; upload it again"
                ) from None
            raise
        cached = bars_from_npz(body)
        with _lock:
            _cache.clear()
            _cache.update(key=(dataset_id, fingerprint), bars=cached)
    return select(cached, request)


def select(bars: Bars, request: BacktestRequest) -> Bars:
    """`bars` of the request's days (UTC, inclusive), aggregated to its timeframe when coarser."""
    times = bars.times.view(np.int64)
    lo = int(np.searchsorted(times, _ns(request.start_date), side="left"))
    hi = int(np.searchsorted(times, _ns(request.end_date) + _DAY_NS, side="left"))
    chosen = bars if (lo, hi) == (0, len(bars)) else bars.slice(lo, hi)
    if len(chosen) < 2:
        raise UserInputError(
            f"dataset {request.dataset_id!r} has {len(chosen)} bar(s) from {request.start_date} to "
            f"{request.end_date}; a backtest needs at least 2"
        )
    if request.timeframe != chosen.timeframe and chosen.timeframe in TIMEFRAMES:
        chosen = aggregate(chosen, request.timeframe)
    return chosen


def _ns(day: date) -> int:
    return int(np.datetime64(day, "D").astype("datetime64[ns]").astype(np.int64))
