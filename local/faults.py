"""Fault injection, local only: make one AWS operation of the functions fail as an outage would.

    with inject_fault("s3", "PutObject") as failed:              # every call, until the block ends
        ...
    with inject_fault("dynamodb", "UpdateItem", times=1, code="ProvisionedThroughputExceededException"):
        ...                                                      # the first call only

A hook on the functions' shared boto3 clients (`backtest_service.clients`, botocore's `before-call`
event): what the code under test sees is exactly what an S3/SQS/DynamoDB outage raises, a `ClientError`.
Tests and drills only; `LocalStack.inject_fault` is this.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def inject_fault(
    service: str,
    operation: str,
    *,
    times: int | None = None,
    code: str = "ServiceUnavailable",
    status: int = 503,
) -> Iterator[list[str]]:
    """While the block runs, the functions' `service` client fails `operation` (the first `times` calls,
    or every one). Yields the list of the calls it failed (the operation's name, one entry a call)."""
    from botocore.exceptions import ClientError

    from backtest_service import clients

    factory = {"s3": clients.s3, "sqs": clients.sqs, "dynamodb": clients.dynamodb}[service]
    client = factory()
    failed: list[str] = []

    def fail(**_: Any) -> None:
        if times is not None and len(failed) >= times:
            return
        failed.append(operation)
        error: Any = {
            "Error": {"Code": code, "Message": f"injected local fault: {service}.{operation} is unavailable"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
        }
        raise ClientError(error, operation)

    event_name = f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}"
    unique_id = f"local-fault-{operation}"
    client.meta.events.register(event_name, fail, unique_id=unique_id)
    try:
        yield failed
    finally:
        client.meta.events.unregister(event_name, unique_id=unique_id)
