# corpus: data=eth1h trades=any
"""Type-annotated helpers (from __future__ import annotations, typing List/Dict/Optional/Tuple)
combining RSI and a rolling drawdown filter."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd


def rolling_drawdown(close: pd.Series, window: int = 48) -> pd.Series:
    peak = close.rolling(window, min_periods=1).max()
    return close / peak - 1.0


def thresholds(params: Dict[str, float]) -> Tuple[float, float]:
    lo: Optional[float] = params.get("rsi_low")
    hi: Optional[float] = params.get("rsi_high")
    return (lo if lo is not None else 35.0, hi if hi is not None else 60.0)


def generate_signals(data: pd.DataFrame, params: Dict[str, float]) -> List[float]:
    lo, hi = thresholds(params)
    rsi: np.ndarray = talib.RSI(data["close"].to_numpy(), timeperiod=14)
    dd = rolling_drawdown(data["close"]).to_numpy()
    out: List[float] = []
    state: float = 0.0
    for r, d in zip(rsi, dd):
        if state == 0.0 and r < lo and d > -0.08:
            state = 1.0
        elif state == 1.0 and (r > hi or d < -0.10):
            state = 0.0
        out.append(state)
    return out
