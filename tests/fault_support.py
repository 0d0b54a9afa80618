"""Faults injected into the runner's own steps by the hardening tests (`local.faults` fails AWS calls at the
client instead): a crash of the container, a throttled or unavailable AWS call, a step that fails before or
after it took effect."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


class Crash(Exception):
    """The container died at this point: the invocation fails and SQS delivers the message again."""


def throttled(operation: str) -> ClientError:
    """What botocore raises once its own retries of a throttled DynamoDB call are spent."""
    response: Any = {
        "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    return ClientError(response, operation)


def s3_unavailable(operation: str) -> ClientError:
    response: Any = {
        "Error": {"Code": "ServiceUnavailable", "Message": "Please reduce your request rate."},
        "ResponseMetadata": {"HTTPStatusCode": 503},
    }
    return ClientError(response, operation)


@dataclasses.dataclass
class Injected:
    """Counts the calls of one faulty step and how many of them failed."""

    calls: int = 0
    failures: int = 0


def inject(
    target: Any,
    method: str,
    error: Callable[[], BaseException],
    *,
    before: int = 0,
    after: int = 0,
    when: Callable[..., bool] = lambda *a, **k: True,
) -> Injected:
    """`target.method` raises `error()` instead of running (the first `before` matching calls), then after
    running (the next `after` matching calls: the step took effect, the caller never learned it); calls for
    which `when(*args, **kwargs)` is false run untouched."""
    real = getattr(target, method)
    seen = Injected()

    def faulty(*args: Any, **kwargs: Any) -> Any:
        if not when(*args, **kwargs):
            return real(*args, **kwargs)
        seen.calls += 1
        if seen.calls <= before:
            seen.failures += 1
            raise error()
        result = real(*args, **kwargs)
        if seen.calls <= before + after:
            seen.failures += 1
            raise error()
        return result

    setattr(target, method, faulty)
    return seen
