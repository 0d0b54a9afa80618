"""Read use cases of the status function: one job of the caller, and the caller's jobs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from backtest_service.api_models import JobError, JobList, JobStatus, JobSummary
from backtest_service.job_store import JobStore, default_job_store
from backtest_service.jobs import JobRecord, Status
from backtest_service.result_store import ResultStore, default_result_store

DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class QueryDeps:
    jobs: JobStore
    results: ResultStore


@cache
def default_deps() -> QueryDeps:
    return QueryDeps(jobs=default_job_store(), results=default_result_store())


def _error(record: JobRecord) -> JobError | None:
    return JobError.model_validate(record.error) if record.error else None


def get_job(execution_id: str, *, owner: str, deps: QueryDeps | None = None) -> JobStatus:
    """The caller's job, with a presigned link to the full result once SUCCEEDED; else `JobNotFound`."""
    deps = deps or default_deps()
    record = deps.jobs.get_for_owner(execution_id, owner)
    results_url = None
    if record.status is Status.SUCCEEDED and record.result_key:
        results_url = deps.results.presigned_url(record.result_key)
    shown = record.model_dump(include=set(JobStatus.model_fields) - {"error"})
    return JobStatus.model_validate(
        {
            **shown,
            "error": _error(record),
            "results_url": results_url,
            "results_url_expires_in": deps.results.url_ttl_seconds if results_url else None,
        }
    )


def _total_return(metrics: dict[str, Any] | None) -> float | None:
    value = (metrics or {}).get("total_return_percent")
    return float(value) if isinstance(value, int | float) else None


def list_jobs(
    *,
    owner: str,
    limit: int = DEFAULT_PAGE_SIZE,
    next_token: str | None = None,
    deps: QueryDeps | None = None,
) -> JobList:
    """A page of the caller's jobs, newest first; `InvalidNextToken` for a token not made here."""
    deps = deps or default_deps()
    records, token = deps.jobs.list_for_owner(owner, limit=limit, next_token=next_token)
    return JobList(
        executions=[
            JobSummary(
                execution_id=r.execution_id,
                status=r.status,
                name=r.name,
                symbol=r.symbol,
                timeframe=r.timeframe,
                created_at=r.created_at,
                started_at=r.started_at,
                finished_at=r.finished_at,
                attempts=r.attempts,
                total_return_percent=_total_return(r.performance_metrics),
                error=_error(r),
            )
            for r in records
        ],
        next_token=token,
    )
