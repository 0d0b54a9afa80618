"""The status function's use cases: one job of the caller with its links, the caller's jobs, and their
management (cancel, rename and notes, delete)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from backtest_service import routes
from backtest_service.api_models import JobError, JobList, JobStatus, JobSummary, Progress
from backtest_service.job_store import HEADLINE_METRICS, JobStore, ListFilters, default_job_store
from backtest_service.jobs import JobRecord, Stage, Status, utc_now
from backtest_service.observability import MetricUnit, logger, metrics
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


def _progress(record: JobRecord) -> Progress | None:
    if record.status is Status.QUEUED:
        return Progress(stage="queued", percent=0.0, updated_at=record.updated_at)
    if record.status is Status.RUNNING:
        return Progress.model_validate(record.progress or {"stage": Stage.DATA, "percent": 0.0})
    return None


def is_expired(record: JobRecord) -> bool:
    """Past the record's expires_at (DynamoDB's TTL deletes it up to a couple of days later)."""
    return record.expires_at is not None and utc_now().timestamp() >= record.expires_at


def job_status(record: JobRecord, *, base_url: str, deps: QueryDeps) -> JobStatus:
    """The caller's view of `record`: links to follow it and, once SUCCEEDED, to its results (none once
    expired: the answer says `expired` instead of handing out a dead link)."""
    execution_id = record.execution_id
    expired = is_expired(record)
    links: dict[str, Any] = {"status_url": routes.GET_STATUS.url(base_url, execution_id=execution_id)}
    if record.status is Status.SUCCEEDED and record.result_key and not expired:
        links.update(
            equity_url=routes.GET_EQUITY.url(base_url, execution_id=execution_id),
            trades_url=routes.GET_TRADES.url(base_url, execution_id=execution_id),
            results_url=deps.results.presigned_url(record.result_key),
            report_url=deps.results.presigned_url(record.report_key) if record.report_key else None,
            results_url_expires_in=deps.results.url_ttl_seconds,
        )
    shown = record.model_dump(include=set(JobStatus.model_fields) - {"error", "progress"})
    return JobStatus.model_validate(
        {
            **shown,
            **links,
            "parameters": record.request.get("parameters") or {},
            "progress": _progress(record),
            "cancel_requested": record.cancel_requested_at is not None and not record.status.terminal,
            "expired": expired,
            "error": _error(record),
        }
    )


def get_job(execution_id: str, *, owner: str, base_url: str, deps: QueryDeps | None = None) -> JobStatus:
    """The caller's job; `JobNotFound` for an unknown or foreign id."""
    deps = deps or default_deps()
    return job_status(deps.jobs.get_for_owner(execution_id, owner), base_url=base_url, deps=deps)


def list_jobs(
    *,
    owner: str,
    base_url: str,
    limit: int = DEFAULT_PAGE_SIZE,
    next_token: str | None = None,
    filters: ListFilters | None = None,
    deps: QueryDeps | None = None,
) -> JobList:
    """A page of the caller's jobs, newest first; `InvalidNextToken` for a token not made here."""
    deps = deps or default_deps()
    records, token = deps.jobs.list_for_owner(owner, limit=limit, next_token=next_token, filters=filters)
    return JobList(
        executions=[
            JobSummary(
                execution_id=r.execution_id,
                status=r.status,
                name=r.name,
                notes=r.notes,
                symbol=r.symbol,
                timeframe=r.timeframe,
                start_date=r.start_date,
                end_date=r.end_date,
                created_at=r.created_at,
                started_at=r.started_at,
                finished_at=r.finished_at,
                attempts=r.attempts,
                parameters=r.request.get("parameters") or {},
                total_return_percent=_number((r.performance_metrics or {}).get("total_return_percent")),
                performance_metrics=(
                    {k: (r.performance_metrics or {}).get(k) for k in HEADLINE_METRICS}
                    if r.performance_metrics
                    else None
                ),
                progress=_progress(r),
                error=_error(r),
                status_url=routes.GET_STATUS.url(base_url, execution_id=r.execution_id),
            )
            for r in records
        ],
        next_token=token,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cancel_job(execution_id: str, *, owner: str, base_url: str, deps: QueryDeps | None = None) -> JobStatus:
    """Cancel the caller's job (idempotent); the job as it now is (CANCELLED, or RUNNING with
    `cancel_requested` until its runner stops it, or the terminal status it already had)."""
    deps = deps or default_deps()
    record = deps.jobs.request_cancel(execution_id, owner)
    if record.status is Status.CANCELLED:
        metrics.add_metric(name="JobsCancelled", unit=MetricUnit.Count, value=1)
    logger.info("cancel requested", extra={"status": record.status})
    return job_status(record, base_url=base_url, deps=deps)


def update_job(
    execution_id: str, changes: dict[str, str | None], *, owner: str, base_url: str, deps: QueryDeps | None = None
) -> JobStatus:
    """Rename the caller's job or change its notes (`changes`: only the fields the caller sent)."""
    deps = deps or default_deps()
    record = (
        deps.jobs.update_for_owner(execution_id, owner, changes)
        if changes
        else deps.jobs.get_for_owner(execution_id, owner)
    )
    return job_status(record, base_url=base_url, deps=deps)


def delete_job(execution_id: str, *, owner: str, deps: QueryDeps | None = None) -> None:
    """Remove the caller's job and everything stored for it. A queued job's message then finds no job and
    is dropped; a running job's runner finds it gone at its next progress write (within 2 s), stops, and
    removes whatever it stored after this."""
    deps = deps or default_deps()
    record = deps.jobs.delete_for_owner(execution_id, owner)
    deps.results.delete_all(execution_id)
    logger.info("job deleted", extra={"status": record.status})
