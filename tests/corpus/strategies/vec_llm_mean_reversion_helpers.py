# corpus: data=btc15m
"""
Mean Reversion Strategy (Bollinger %B)

Buys when %B drops below a lower threshold and sells when %B rises above an upper threshold.
Includes defensive handling of missing data and parameter validation.
"""

from typing import Any, Dict

import numpy as np
import pandas as pd


def validate_params(params: Dict[str, Any]) -> Dict[str, Any]:
    """Fill in defaults and make sure the thresholds are in order."""
    cfg = {"window": 20, "num_std": 2.0, "lower": 0.05, "upper": 0.95}
    cfg.update({k: v for k, v in params.items() if k in cfg})
    if cfg["lower"] >= cfg["upper"]:
        raise ValueError("lower threshold must be below upper threshold")
    return cfg


def percent_b(close: pd.Series, window: int, num_std: float) -> pd.Series:
    """Bollinger %B: 0 at the lower band, 1 at the upper band."""
    mean = close.rolling(window).mean()
    std = close.rolling(window).std(ddof=0)
    upper = mean + num_std * std
    lower = mean - num_std * std
    return (close - lower) / (upper - lower)


def generate_signals(data: pd.DataFrame, params: Dict[str, Any]) -> pd.Series:
    """Return target positions: 1.0 (long), 0.0 (flat), NaN (hold)."""
    cfg = validate_params(params)
    try:
        pb = percent_b(data["close"], cfg["window"], cfg["num_std"])
    except KeyError as exc:
        raise ValueError(f"missing column: {exc}") from exc
    positions = pd.Series(np.nan, index=data.index, dtype="float64")
    positions.loc[pb < cfg["lower"]] = 1.0
    positions.loc[pb > cfg["upper"]] = 0.0
    positions.iloc[0] = 0.0
    return positions
