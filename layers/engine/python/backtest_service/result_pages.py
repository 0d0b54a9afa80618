"""The results function's use cases: a SUCCEEDED job's equity curve downsampled for a chart, and its trades a
page at a time, read from the `.npy` records the runner stored beside the result (see `result_store`).

The curve is read whole (24 bytes a bar) and cut to the requested range before downsampling, so zooming in
returns more detail for that range; `downsample.extremes` keeps every bucket's minimum and maximum of equity
and of drawdown, so the range's envelope and its maximum drawdown are exact. A page of trades is one ranged
GET of fixed-width records: its cost does not grow with the job's size. Imports numpy: only the results
function uses this module.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import numpy as np

from backtest_engine.downsample import DEFAULT_POINTS, extremes, window
from backtest_engine.result import EQUITY_DTYPE, TRADE_DTYPE, curve_points, npy_layout, records_from, trade_rows
from backtest_service.api_models import EquityResponse, Trade, TradesResponse
from backtest_service.errors import InvalidNextToken, JobExpired, JobNotReady, RequestInvalid
from backtest_service.job_store import JobStore, default_job_store
from backtest_service.jobs import JobRecord, Status
from backtest_service.queries import is_expired
from backtest_service.result_store import Artifact, ResultStore, artifact_key, default_result_store

MAX_POINTS = 10_000
# A date, or a date and time with an optional fraction and offset (what `datetime.fromisoformat` reads);
# a number is not a time here (pydantic would read 0.5 as a Unix timestamp).
ISO_MOMENT = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
DEFAULT_TRADES_PAGE = 100
MAX_TRADES_PAGE = 1000
_HEADER_BYTES = 4096  # an .npy header of these records is a few hundred bytes


@dataclass(frozen=True)
class PageDeps:
    jobs: JobStore
    results: ResultStore


@cache
def default_deps() -> PageDeps:
    return PageDeps(jobs=default_job_store(), results=default_result_store())


def _succeeded(execution_id: str, owner: str, deps: PageDeps) -> JobRecord:
    job = deps.jobs.get_for_owner(execution_id, owner)
    if is_expired(job):
        raise JobExpired(f"the results of backtest {execution_id} have expired; run it again", field="execution_id")
    if job.status is not Status.SUCCEEDED:
        raise JobNotReady(
            f"backtest {execution_id} is {job.status}; its curve and trades exist once it is SUCCEEDED",
            field="execution_id",
        )
    return job


def moment(text: str | None, field: str) -> datetime | None:
    """An ISO-8601 date or time of a query parameter (422 naming `field` when it is not a real one)."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RequestInvalid(
            f"{field} {text!r} is not a date or time (YYYY-MM-DD[THH:MM[:SS]][Z])", field=field
        ) from None


def _utc(moment: datetime | None) -> np.datetime64 | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(moment, "ns")


def equity(
    execution_id: str,
    *,
    owner: str,
    points: int = DEFAULT_POINTS,
    start: datetime | None = None,
    end: datetime | None = None,
    deps: PageDeps | None = None,
) -> EquityResponse:
    """The job's curve between `start` and `end` (inclusive; None = its first or last bar) in at most `points`
    points."""
    deps = deps or default_deps()
    _succeeded(execution_id, owner, deps)
    data = deps.results.get_bytes(artifact_key(execution_id, Artifact.EQUITY))
    records = np.load(io.BytesIO(data), allow_pickle=False)
    if records.dtype != EQUITY_DTYPE:
        raise ValueError(f"stored curve of {execution_id} has records {records.dtype}, not {EQUITY_DTYPE}")
    lo, hi = window(records["time"], _utc(start), _utc(end))
    part = records[lo:hi]
    if part.shape[0]:
        equity_values = np.ascontiguousarray(part["equity"])
        drawdown = np.ascontiguousarray(part["drawdown_pct"])
        part = part[extremes(equity_values, points, drawdown)]
    shown = curve_points(part)
    return EquityResponse(
        execution_id=execution_id,
        points=int(part.shape[0]),
        total_points=hi - lo,
        start=shown["time"][0] if shown["time"] else None,
        end=shown["time"][-1] if shown["time"] else None,
        max_drawdown_pct=float(part["drawdown_pct"].min()) if part.shape[0] else None,
        **shown,
    )


def trades(
    execution_id: str,
    *,
    owner: str,
    limit: int = DEFAULT_TRADES_PAGE,
    next_token: str | None = None,
    deps: PageDeps | None = None,
) -> TradesResponse:
    """Trades `offset`..`offset + limit` of the job (in exit order) and the token of the next page."""
    deps = deps or default_deps()
    _succeeded(execution_id, owner, deps)
    offset = 0 if next_token is None else decode_offset(next_token, execution_id)
    key = artifact_key(execution_id, Artifact.TRADES)
    dtype, total, data_start = npy_layout(deps.results.get_bytes(key, 0, _HEADER_BYTES - 1))
    if dtype != TRADE_DTYPE:
        raise ValueError(f"stored trades of {execution_id} have records {dtype}, not {TRADE_DTYPE}")
    if offset > total:
        raise InvalidNextToken("this execution's trades")
    stop = min(offset + limit, total)
    rows: list[dict[str, object]] = []
    if stop > offset:
        first = data_start + offset * dtype.itemsize
        raw = deps.results.get_bytes(key, first, data_start + stop * dtype.itemsize - 1)
        rows = trade_rows(records_from(raw, dtype))
    return TradesResponse(
        execution_id=execution_id,
        total=total,
        offset=offset,
        trades=[Trade.model_validate(row) for row in rows],
        next_token=encode_offset(stop, execution_id) if stop < total else None,
    )


def encode_offset(offset: int, execution_id: str) -> str:
    raw = json.dumps({"o": offset, "e": execution_id[:8]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_offset(token: str, execution_id: str) -> int:
    """The offset a token of `encode_offset` stands for; `InvalidNextToken` for anything else (including a
    token of another execution's trades)."""
    try:
        if len(token) > 256:
            raise ValueError("too long")
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or set(data) != {"o", "e"} or data["e"] != execution_id[:8]:
            raise ValueError("wrong shape")
        offset = data["o"]
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError("bad offset")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidNextToken("this execution's trades") from None
    return offset
