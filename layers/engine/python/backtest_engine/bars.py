"""`Bars`: the OHLCV series one backtest runs on, as plain numpy arrays.

Every producer of market data (the synthetic generator, the CSV loader) returns a `Bars`; every
consumer (the strategy runtime, the broker, the metrics) reads one. Times are UTC `datetime64[ns]`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

COLUMNS = ("open", "high", "low", "close", "volume")


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
        first = pd.Timestamp(self.times[0]).tz_localize("UTC").isoformat()
        last = pd.Timestamp(self.times[-1]).tz_localize("UTC").isoformat()
        return {
            "data_points": len(self),
            "date_range": {"start": first, "end": last},
            "price_range": {"min": float(self.low.min()), "max": float(self.high.max())},
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "source": self.source,
        }
