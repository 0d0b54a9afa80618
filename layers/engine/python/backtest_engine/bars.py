"""`Bars`: the OHLCV series one backtest runs on, as plain numpy arrays.

Every producer of market data (the synthetic generator, the CSV loader) returns a `Bars`; every
consumer (the strategy runtime, the broker, the metrics) reads one. Times are UTC `datetime64[ns]`.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("open", "high", "low", "close", "volume")


def loaded_pandas() -> ModuleType | None:
    """pandas if this process has imported it, else None (then no object here is a pandas one). pandas is the
    strategies' library: the sandbox's zygote imports it for them, while the runner itself works on numpy
    arrays and stays without it (about 260 ms of its cold start)."""
    return sys.modules.get("pandas")


def iso_utc(time: np.datetime64 | int) -> str:
    """A UTC time (or int nanoseconds since the epoch) as `pd.Timestamp(...).isoformat()` writes it, without
    pandas: seconds, then microseconds or nanoseconds when there are any, then ``+00:00``."""
    ns = (
        int(time)
        if isinstance(time, int | np.integer)
        else int(np.asarray(time, dtype="datetime64[ns]").view(np.int64))
    )
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = str(np.datetime_as_string(np.datetime64(seconds, "s"), unit="s"))
    if fraction:
        text += f".{fraction // 1000:06d}" if fraction % 1000 == 0 else f".{fraction:09d}"
    return text + "+00:00"


@dataclass(frozen=True, eq=False)
class Bars:
    symbol: str
    timeframe: str
    times: np.ndarray  # datetime64[ns], UTC, strictly increasing
    open: np.ndarray  # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    lot_size: float = 1.0
    periods_per_year: int = 252
    source: str = "synthetic"  # "synthetic" or "csv"
    _fingerprint: list[str] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def to_frame(self, copy: bool = False) -> pd.DataFrame:
        """A DataFrame indexed by UTC time with columns open, high, low, close, volume (the arrays themselves,
        or, with `copy`, a writable copy of them)."""
        import pandas as pd

        index = pd.DatetimeIndex(self.times, name="time").tz_localize("UTC")
        return pd.DataFrame(
            {
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
                "volume": self.volume,
            },
            index=index,
            copy=copy,
        )

    def slice(self, start: int, stop: int) -> Bars:
        """Bars[start:stop] as a new `Bars` sharing memory with this one."""
        return Bars(
            self.symbol,
            self.timeframe,
            self.times[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            self.lot_size,
            self.periods_per_year,
            self.source,
        )

    def fingerprint(self) -> str:
        """A content hash of the bars: equal fingerprints mean identical data (cached after the first call)."""
        if not self._fingerprint:
            h = hashlib.blake2b(digest_size=16)
            h.update(f"{self.symbol}|{self.timeframe}|{len(self)}|".encode())
            for arr in (self.times.view(np.int64), self.open, self.high, self.low, self.close, self.volume):
                h.update(np.ascontiguousarray(arr).data)
            self._fingerprint.append("blake2b:" + h.hexdigest())
        return self._fingerprint[0]

    def stats(self) -> dict[str, object]:
        """`market_data_stats` of a result: data_points, date_range, price_range."""
        if len(self) == 0:
            return {"data_points": 0, "date_range": None, "price_range": None}
        first, last = iso_utc(self.times[0]), iso_utc(self.times[-1])
        return {
            "data_points": len(self),
            "date_range": {"start": first, "end": last},
            "price_range": {"min": float(self.low.min()), "max": float(self.high.max())},
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "source": self.source,
        }
