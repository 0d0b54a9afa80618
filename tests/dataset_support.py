"""What the dataset tests share: small OHLCV files and the upload through a presigned POST (in-process
moto intercepts the POST; with moto's server it goes over loopback)."""

from __future__ import annotations

import base64
import io
import json
from datetime import date
from typing import Any

import requests

from backtest_engine.market_data import load_bars

DATASETS = "/api/backtest/datasets"


def ohlcv_csv(days: int = 20, timeframe: str = "1h", symbol: str = "BTCUSD") -> bytes:
    """Synthetic bars written as a user would (pandas' to_csv)."""
    start = date(2024, 1, 1)
    bars = load_bars(symbol, timeframe, start, date(2024, 1, days))
    return bars.to_frame().to_csv().encode()


def ohlcv_parquet(days: int = 20, timeframe: str = "1h") -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bars = load_bars("BTCUSD", timeframe, date(2024, 1, 1), date(2024, 1, days))
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(bars.to_frame().reset_index(), preserve_index=False), sink)
    return sink.getvalue()


def upload(created: dict[str, Any], data: bytes, filename: str = "bars.csv") -> requests.Response:
    """POST the file as a browser form would: the presigned fields, then the file."""
    return requests.post(
        created["upload_url"],
        data=created["upload_fields"],
        files={"file": (filename, data, created["content_type"])},
        timeout=60,
    )


def policy(created: dict[str, Any]) -> dict[str, Any]:
    """The presigned POST's policy document (what S3 enforces)."""
    decoded: dict[str, Any] = json.loads(base64.b64decode(created["upload_fields"]["policy"]))
    return decoded
