"""The local stack applies DynamoDB TTL and S3 lifecycle as AWS does (local/expiry.py), which moto never
does by itself: a job, its idempotency record and its result object go when their time comes, and not
before; `backtest local` sweeps every minute, so its memory stays bounded over a long session."""

from __future__ import annotations

import time

from backtest_service import topology
from backtest_service.result_store import artifact_keys
from local.http_server import LocalServer
from local.stack import LocalStack
from tests.support import Api

DAY = 86400.0


def one_finished_job(stack: LocalStack, api: Api) -> str:
    submitted = api.submit(headers={"Idempotency-Key": "expiry-test"})
    assert submitted.status == 202, submitted.body
    stack.drain_queue()
    execution_id = str(submitted.body["execution_id"])
    assert api.status(execution_id).body["status"] == "SUCCEEDED"
    return execution_id


def idempotency_records(stack: LocalStack) -> int:
    scan = stack.client("dynamodb").scan(TableName=stack.resources.idempotency_table, Select="COUNT")
    return int(scan["Count"])


def test_nothing_expires_before_its_time_and_everything_after(stack: LocalStack, api: Api) -> None:
    execution_id = one_finished_job(stack, api)
    now = time.time()
    stored = len(artifact_keys(execution_id))
    assert (len(stack.job_items()), len(stack.result_keys()), idempotency_records(stack)) == (1, stored, 1)
    # Given a sweep today, Then nothing goes.
    stack.expiry.clock = lambda: now
    assert stack.expiry.sweep().items == 0
    # Given two days on, Then only the idempotency record (24 h) has gone; the job and its result stay.
    stack.expiry.clock = lambda: now + 2 * DAY
    swept = stack.expiry.sweep()
    assert (swept.items, swept.objects) == (1, 0)
    assert idempotency_records(stack) == 0
    assert api.status(execution_id).body["status"] == "SUCCEEDED"
    # Given the job's TTL passed (30 days, as deployed), Then the job goes; its objects a day later, as the
    # bucket's lifecycle says (status says `expired` in between)
    stack.expiry.clock = lambda: now + (topology.JOB_TTL_DAYS + 0.5) * DAY
    swept = stack.expiry.sweep()
    assert (swept.items, swept.objects) == (1, 0)
    stack.expiry.clock = lambda: now + (topology.JOB_TTL_DAYS + 2) * DAY
    swept = stack.expiry.sweep()
    assert (swept.items, swept.objects) == (0, stored)
    assert stack.job_items() == [] and stack.result_keys() == []
    assert api.status(execution_id).status == 404
    assert stack.expiry.sweep().items == 0  # and a second sweep finds nothing


def test_a_shorter_local_ttl_expires_jobs_and_results_on_one_schedule() -> None:
    with LocalStack(retry_delay_seconds=0, job_ttl_days=1) as stack:
        api = Api(stack)
        one_finished_job(stack, api)
        (item,) = stack.job_items()
        assert int(item["expires_at"]["N"]) <= time.time() + DAY + 60  # the functions got JOB_TTL_DAYS=1
        rules = stack.client("s3").get_bucket_lifecycle_configuration(Bucket=stack.resources.results_bucket)
        days = {rule["Filter"]["Prefix"]: rule["Expiration"]["Days"] for rule in rules["Rules"]}
        assert days[topology.RESULTS_PREFIX] == 2  # a day after the records, as deployed
        now = time.time()
        stack.expiry.clock = lambda: now + 2.5 * DAY
        swept = stack.expiry.sweep()
        # the job and its idempotency record; the result's objects
        assert (swept.items, swept.objects) == (2, len(artifact_keys(item["execution_id"]["S"])))


def test_backtest_local_sweeps_in_the_background() -> None:
    stack = LocalStack(server=True, retry_delay_seconds=0)
    with LocalServer(port=0, workers=1, stack=stack, log=lambda _: None, expiry_interval_seconds=0.2) as server:
        api = Api(server.stack)
        submitted = api.submit()
        assert submitted.status == 202
        deadline = time.monotonic() + 60
        while api.status(str(submitted.body["execution_id"])).body["status"] != "SUCCEEDED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert len(stack.result_keys()) == len(artifact_keys(str(submitted.body["execution_id"])))
        later = time.time() + (topology.JOB_TTL_DAYS + 2) * DAY
        stack.expiry.clock = lambda: later
        deadline = time.monotonic() + 10
        while stack.job_items() or stack.result_keys():
            assert time.monotonic() < deadline, "the background sweep did not run"
            time.sleep(0.1)
