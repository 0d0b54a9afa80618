"""GET /api/backtest/status/{id} and GET /api/backtest/executions through the real status handler."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from backtest_service.topology import API_PREFIX
from local.stack import LocalStack
from tests.support import SMA_CROSS, SMALL_RUN, Api

pytestmark = pytest.mark.xdist_group("integration")

EXECUTIONS = f"{API_PREFIX}/executions"


def test_a_queued_job_shows_its_request_and_no_result_yet(api: Api, stack: LocalStack) -> None:
    execution_id = api.submit(name="first").body["execution_id"]
    res = api.status(execution_id)
    assert res.status == 200
    job = res.body
    assert job["success"] is True
    assert job["execution_id"] == execution_id
    assert job["status"] == "QUEUED"
    assert (job["name"], job["symbol"], job["timeframe"]) == ("first", "AAPL", "1h")
    assert (job["start_date"], job["end_date"]) == ("2024-01-01", "2024-01-31")
    assert job["attempts"] == 0
    assert job["started_at"] is None and job["finished_at"] is None
    assert job["performance_metrics"] is None and job["error"] is None and job["results_url"] is None


def test_another_callers_job_and_an_unknown_id_are_the_same_404(api: Api, stack: LocalStack) -> None:
    # Given alice's job
    alices = api.submit(user="alice").body["execution_id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    # When bob asks for it, and for an id that does not exist
    foreign = api.status(alices, user="bob")
    missing = api.status(unknown, user="bob")
    # Then both are 404 with the same body (only the id they asked for differs)
    assert foreign.status == missing.status == 404
    assert foreign.body == {
        "success": False,
        "error": {"type": "NotFound", "message": f"no backtest with execution_id {alices!r}"},
    }
    assert json.dumps(foreign.body).replace(alices, "ID") == json.dumps(missing.body).replace(unknown, "ID")
    # And alice still sees it
    assert api.status(alices, user="alice").status == 200


@pytest.mark.parametrize("bad_id", ["x" * 300, "not.an.id", "%00"])
def test_malformed_ids_are_404(api: Api, stack: LocalStack, bad_id: str) -> None:
    res = api.status(bad_id)
    assert res.status == 404
    assert res.error["type"] == "NotFound"


def test_an_iam_caller_owns_its_jobs_apart_from_cognito_users(api: Api, stack: LocalStack) -> None:
    # Given a service caller signed with IAM (no Cognito claims)
    arn = "arn:aws:iam::123456789012:user/batch-runner"
    body = {"strategy_code": SMA_CROSS, **SMALL_RUN}
    submitted = api.call("POST", f"{API_PREFIX}/run", body=body, user=None, iam_arn=arn)
    assert submitted.status == 202
    execution_id = submitted.body["execution_id"]
    # Then the job belongs to that ARN: it sees it, a Cognito user does not
    assert stack.job(execution_id)["owner"] == f"iam:{arn}"  # type: ignore[index]
    assert api.call("GET", f"{API_PREFIX}/status/{execution_id}", user=None, iam_arn=arn).status == 200
    assert api.status(execution_id, user="alice").status == 404
    listed = api.call("GET", EXECUTIONS, user=None, iam_arn=arn).body["executions"]
    assert [j["execution_id"] for j in listed] == [execution_id]


def test_no_caller_is_401(api: Api, stack: LocalStack) -> None:
    execution_id = api.submit().body["execution_id"]
    assert api.status(execution_id, user=None).status == 401
    assert api.call("GET", EXECUTIONS, user=None).status == 401


def test_executions_are_the_callers_newest_first_in_pages(api: Api, stack: LocalStack) -> None:
    # Given 7 jobs of alice and 2 of bob
    alices = [api.submit(user="alice", name=f"job {i}").body["execution_id"] for i in range(7)]
    bobs = [api.submit(user="bob").body["execution_id"] for _ in range(2)]

    # When alice pages through her executions 3 at a time
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    while True:
        query = {"limit": "3", **({"next_token": token} if token else {})}
        res = api.call("GET", EXECUTIONS, query=query, user="alice")
        assert res.status == 200, res.body
        pages.append(res.body["executions"])
        token = res.body.get("next_token")
        if token is None:
            break

    # Then she gets 3 + 3 + 1 of her own jobs, newest first, each once
    assert [len(p) for p in pages] == [3, 3, 1]
    listed = [j["execution_id"] for p in pages for j in p]
    assert listed == list(reversed(alices))
    assert not set(listed) & set(bobs)
    first = pages[0][0]
    assert (first["name"], first["status"], first["symbol"], first["attempts"]) == (
        "job 6",
        "QUEUED",
        "AAPL",
        0,
    )
    created = [j["created_at"] for p in pages for j in p]
    assert created == sorted(created, reverse=True)

    # And bob sees only his two
    bob_page = api.call("GET", EXECUTIONS, user="bob").body
    assert [j["execution_id"] for j in bob_page["executions"]] == list(reversed(bobs))
    assert bob_page.get("next_token") is None


def _token(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !!",
        "bm90LWpzb24",  # base64url of "not-json"
        _token(["id", "at"]),
        _token({"id": "abc", "at": "2024-01-01"}),
        _token({"id": "../etc", "at": "2024-01-01T00:00:00.000000Z"}),
        _token({"id": "abc", "at": "2024-01-01T00:00:00.000000Z", "owner": "cognito:bob"}),
    ],
)
def test_a_next_token_not_made_by_the_api_is_400(api: Api, stack: LocalStack, token: str) -> None:
    res = api.call("GET", EXECUTIONS, query={"next_token": token})
    assert res.status == 400
    assert res.error["type"] == "InvalidNextToken"
    assert res.error["field"] == "next_token"


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_a_bad_limit_is_422_naming_limit(api: Api, stack: LocalStack, limit: str) -> None:
    res = api.call("GET", EXECUTIONS, query={"limit": limit})
    assert res.status == 422
    assert res.error["field"] == "limit"
