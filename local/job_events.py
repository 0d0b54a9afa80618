"""Job progress as the local stack sees it, for the `backtest local` log and the demo: submitted, running,
then what the delivery ended in (succeeded, failed, retry, dead-lettered, skipped), read from the job.

    progress = JobProgress(read_job)
    progress.listeners.append(print)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backtest_service import topology

log = logging.getLogger("backtest.local")


@dataclass(frozen=True)
class JobEvent:
    """A step of a job."""

    execution_id: str
    kind: str  # submitted | running | succeeded | failed | retry | skipped | dead_lettered
    attempt: int = 0
    duration_s: float | None = None
    detail: str = ""


JobListener = Callable[[JobEvent], None]


@dataclass
class JobProgress:
    """Turns what the local API and event source mapping did into `JobEvent`s for its listeners."""

    read_job: Callable[[str], dict[str, Any] | None]  # the job's item, as `LocalStack.job` reads it
    listeners: list[JobListener] = field(default_factory=list)

    def submitted(self, execution_id: str) -> None:
        self.emit(JobEvent(execution_id, "submitted"))

    def received(self, record: dict[str, Any]) -> None:
        if self.listeners and (execution_id := _execution_id(record["body"])):
            self.emit(JobEvent(execution_id, "running", attempt=_receive_count(record)))

    def delivered(self, record: dict[str, Any], failed: bool, elapsed: float) -> None:
        """What the delivery of `record` ended in, from its job's item."""
        if not self.listeners or not (execution_id := _execution_id(record["body"])):
            return
        receive_count = _receive_count(record)
        try:
            job = self.read_job(execution_id) or {}
        except Exception:  # the log line is not worth failing the poll for
            job = {}
        status = job.get("status")
        error = job.get("error") or {}
        attempt = int(job.get("attempts") or receive_count)
        what = f"{error.get('type', '')}: {error.get('message', '')}".strip(": ")
        if error.get("line"):
            what += f" (line {error['line']})"
        if failed:
            max_receives = topology.JOBS_QUEUE.max_receive_count
            if status == "FAILED" or receive_count >= max_receives:
                self.emit(JobEvent(execution_id, "dead_lettered", attempt, elapsed, what))
            else:
                self.emit(
                    JobEvent(execution_id, "retry", attempt, elapsed, f"receive {receive_count} of {max_receives}")
                )
        elif status == "SUCCEEDED":
            self.emit(JobEvent(execution_id, "succeeded", attempt, elapsed))
        elif status == "FAILED":
            self.emit(JobEvent(execution_id, "failed", attempt, elapsed, what))
        else:
            self.emit(JobEvent(execution_id, "skipped", attempt, elapsed, f"job is {status}"))

    def emit(self, event: JobEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("job listener failed")


def _receive_count(record: dict[str, Any]) -> int:
    return int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))


def _execution_id(body: str) -> str | None:
    from backtest_service.job_queue import InvalidMessage, JobMessage, decode_message

    try:
        message = decode_message(body)
    except InvalidMessage:
        return None
    return message.execution_id if isinstance(message, JobMessage) else None
