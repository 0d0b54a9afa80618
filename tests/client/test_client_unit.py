"""The client without a server: retries (driven effect by effect through the I/O-free operations), error
mapping of answers the service's functions never give (API Gateway's own, S3's), waiting, and SigV4
signing checked against botocore's signer and against the signature a server computes from the wire."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import botocore.auth
import httpx
import pytest
from backtest_client import (
    BacktestClient,
    CognitoAuth,
    Conflict,
    ConnectionFailed,
    IamAuth,
    LocalUser,
    NoReport,
    NotReady,
    RateLimited,
    RetryPolicy,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    WaitTimeout,
    _core,
    models,
)
from backtest_client.auth import region_of_url
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import SMA_CROSS

API = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
NO_WAIT = RetryPolicy(attempts=3, backoff=0.0)
Handler = Callable[[httpx.Request], httpx.Response]


def job(status: str = "QUEUED", **fields: Any) -> dict[str, Any]:
    return {"execution_id": "job-1", "status": status, "symbol": "AAPL", "timeframe": "1d", "created_at": "x", **fields}


def error(
    status: int, type_: str, message: str = "m", headers: dict[str, str] | None = None, **more: Any
) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, json={"success": False, "error": {"type": type_, "message": message}, **more}
    )


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering the requests in order (an exception is raised as the transport's)."""
    seen: list[httpx.Request] = []
    pending = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def client_with(
    *answers: httpx.Response | Exception, auth: httpx.Auth | None = None, retry: RetryPolicy = NO_WAIT
) -> tuple[BacktestClient, list[httpx.Request]]:
    transport, seen = scripted(*answers)
    return BacktestClient(API, auth=auth or LocalUser("u"), retry=retry, transport=transport), seen


# ---- retries, effect by effect ------------------------------------------------------------------


def drive(operation: Iterator[Any], outcomes: list[Any]) -> list[Any]:
    """Run an operation, answering each Call with the next outcome; the effects it yielded, in order
    (the last entry is the operation's return value or the exception it raised)."""
    effects: list[Any] = []
    value: Any = None
    try:
        while True:
            effect = operation.send(value)  # type: ignore[attr-defined]
            effects.append(effect)
            value = outcomes.pop(0) if isinstance(effect, _core.Call) else None
    except StopIteration as stop:
        effects.append(stop.value)
    except Exception as exc:
        effects.append(exc)
    return effects


def test_retry_after_is_honoured_and_the_idempotency_key_is_kept() -> None:
    policy = RetryPolicy(attempts=4, backoff=1.0)
    busy = error(503, "QueueUnavailable", headers={"Retry-After": "7"})
    throttled = httpx.Response(429, json={"message": "Too Many Requests"})  # API Gateway's own throttle
    accepted = httpx.Response(202, json={"execution_id": "job-1", "status": "QUEUED", "status_url": "u"})

    effects = drive(_core.submit({"strategy_code": "x"}, policy), [busy, throttled, accepted])

    calls = [e for e in effects if isinstance(e, _core.Call)]
    sleeps = [e.seconds for e in effects if isinstance(e, _core.Sleep)]
    assert len(calls) == 3
    assert len({c.headers["Idempotency-Key"] for c in calls}) == 1
    assert sleeps[0] == 7  # Retry-After
    assert 1.0 <= sleeps[1] <= 2.0  # no Retry-After: backoff (cap 2 s after the 2nd try), half of it jittered
    assert isinstance(effects[-1], models.SubmitResponse)


def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=4.0)
    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = {policy.delay(attempt, None) for _ in range(50)}
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(delays) > 1  # jittered
    assert policy.delay(1, 120.0) == policy.max_retry_after


def test_retry_after_as_an_http_date() -> None:
    now = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
    response = httpx.Response(503, headers={"Retry-After": "Wed, 01 May 2024 12:00:09 GMT"})
    assert _core.retry_after_seconds(response, now=now) == 9
    assert _core.retry_after_seconds(httpx.Response(503, headers={"Retry-After": "soon"})) is None


def test_a_submit_still_in_progress_is_retried_but_other_conflicts_are_not() -> None:
    in_progress = error(409, "IdempotencyKeyInProgress", headers={"Retry-After": "0"})
    accepted = httpx.Response(202, json={"execution_id": "job-1", "status": "QUEUED", "status_url": "u"})
    client, seen = client_with(in_progress, accepted)
    assert client.submit(SMA_CROSS).execution_id == "job-1"
    assert len(seen) == 2

    client, seen = client_with(error(409, "NotReady", "no results yet"))
    with pytest.raises(NotReady):
        client.equity("job-1")
    assert len(seen) == 1


def test_connection_errors_are_retried_then_raised_as_connection_failed() -> None:
    client, seen = client_with(httpx.ConnectError("refused"), httpx.Response(200, json=job()))
    assert client.status("job-1").status == "QUEUED"
    assert len(seen) == 2

    client, seen = client_with(*[httpx.ReadTimeout("slow")] * 3)
    with pytest.raises(ConnectionFailed, match="after 3 tries") as failed:
        client.health()
    assert isinstance(failed.value, Unavailable) and failed.value.status is None


def test_a_client_error_is_not_retried() -> None:
    invalid = error(422, "ValidationError", "timeframe: bad", errors=[{"field": "timeframe", "message": "bad"}])
    client, seen = client_with(invalid)
    with pytest.raises(ValidationFailed) as raised:
        client.validate(SMA_CROSS)
    assert len(seen) == 1
    assert raised.value.errors == [models.FieldError(field="timeframe", message="bad")]


def test_unavailable_after_the_last_try_keeps_its_retry_after() -> None:
    client, seen = client_with(*[error(503, "ServiceUnavailable", headers={"Retry-After": "0"})] * 3)
    with pytest.raises(Unavailable) as raised:
        client.status("job-1")
    assert len(seen) == 3
    assert raised.value.retry_after == 0 and raised.value.type == "ServiceUnavailable"


def test_a_delete_whose_answer_was_lost_is_done() -> None:
    client, seen = client_with(
        httpx.Response(504, json={"message": "Endpoint request timed out"}), error(404, "NotFound")
    )
    client.delete("job-1")
    assert [r.method for r in seen] == ["DELETE", "DELETE"]


@pytest.mark.parametrize(
    ("answer", "kind", "type_", "message"),
    [
        (
            httpx.Response(403, json={"message": "Missing Authentication Token"}),
            Unauthorized,
            "HTTP 403",
            "Missing Authentication Token",
        ),
        (httpx.Response(401, json={"message": "Unauthorized"}), Unauthorized, "HTTP 401", "Unauthorized"),
        (httpx.Response(429, json={"message": "Too Many Requests"}), RateLimited, "HTTP 429", "Too Many Requests"),
        (httpx.Response(500, text="<html>oops</html>"), ServerError, "HTTP 500", "<html>oops</html>"),
        (error(409, "JobAlreadyTerminal", "already SUCCEEDED"), Conflict, "JobAlreadyTerminal", "already SUCCEEDED"),
    ],
)
def test_answers_not_from_the_service_map_by_status(
    answer: httpx.Response, kind: type, type_: str, message: str
) -> None:
    answer.headers["x-amzn-RequestId"] = "req-123"
    client, _ = client_with(*[answer] * 3)
    with pytest.raises(kind) as raised:
        client.status("job-1")
    assert raised.value.type == type_  # type: ignore[attr-defined]
    assert raised.value.message == message  # type: ignore[attr-defined]
    assert raised.value.request_id == "req-123"  # type: ignore[attr-defined]
    assert "req-123" in str(raised.value)


# ---- requests, waiting, links ------------------------------------------------------------------


def test_requests_go_under_the_stage_with_encoded_queries() -> None:
    page: dict[str, Any] = {"executions": [], "next_token": None}
    client, seen = client_with(httpx.Response(200, json=page))
    list(client.list(name="my run/1", status="SUCCEEDED", page_size=5))
    assert seen[0].url.raw_path == b"/prod/api/backtest/executions?limit=5&name=my%20run%2F1&status=SUCCEEDED"
    assert seen[0].headers["X-Local-User"] == "u"


def test_update_sends_only_the_fields_given() -> None:
    client, seen = client_with(httpx.Response(200, json=job(name="n")), httpx.Response(200, json=job()))
    client.update("job-1", name="n")
    client.update("job-1", notes=None)
    assert [json.loads(r.content) for r in seen] == [{"name": "n"}, {"notes": None}]


def test_a_submit_request_model_sends_only_its_set_fields() -> None:
    accepted = httpx.Response(202, json={"execution_id": "job-1", "status": "QUEUED", "status_url": "u"})
    client, seen = client_with(accepted)
    client.submit(models.SubmitRequest(strategy_code="code", symbol="MSFT"))
    assert json.loads(seen[0].content) == {"strategy_code": "code", "symbol": "MSFT"}
    with pytest.raises(TypeError, match="not both"):
        client.submit(models.SubmitRequest(strategy_code="code"), symbol="AAPL")


def test_presigned_links_are_fetched_without_the_callers_credentials() -> None:
    link = "https://bucket.s3.eu-west-1.amazonaws.com/results/job-1.json?X-Amz-Signature=abc&X-Amz-Expires=900"
    done = httpx.Response(200, json=job("SUCCEEDED", results_url=link))
    document = httpx.Response(200, json={"performance_metrics": {}})
    client, seen = client_with(done, document, auth=CognitoAuth("id-token"))

    assert client.result("job-1") == {"performance_metrics": {}}

    assert seen[0].headers["Authorization"] == "id-token"
    assert str(seen[1].url) == link
    assert "Authorization" not in seen[1].headers


def test_a_job_without_a_report_says_why(tmp_path: Path) -> None:
    client, _ = client_with(httpx.Response(200, json=job("RUNNING")), httpx.Response(200, json=job("SUCCEEDED")))
    with pytest.raises(NoReport, match="no report_url: it is not SUCCEEDED"):
        client.report("job-1", tmp_path / "r.html")
    with pytest.raises(NoReport, match="this deployment writes no report"):
        client.report("job-1", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_an_expired_link_says_so() -> None:
    link = "https://bucket.s3.amazonaws.com/r.json?X-Amz-Signature=abc"
    expired = httpx.Response(403, text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
    client, _ = client_with(httpx.Response(200, json=job("SUCCEEDED", results_url=link)), expired)
    with pytest.raises(Unauthorized, match="may have expired"):
        client.result("job-1")


def test_wait_reports_changes_only_and_times_out_with_the_last_status() -> None:
    now = [0.0]
    answers = [
        job("QUEUED", progress={"stage": "queued", "percent": 0}),
        job("QUEUED", progress={"stage": "queued", "percent": 0}),
        job("RUNNING", progress={"stage": "strategy", "percent": 40}),
        job("RUNNING", progress={"stage": "strategy", "percent": 40}),
    ]
    seen: list[str] = []
    operation = _core.wait(
        "job-1", NO_WAIT, timeout=1.0, on_progress=lambda j: seen.append(j.status), clock=lambda: now[0]
    )
    effects: list[Any] = []
    value: Any = None
    with pytest.raises(WaitTimeout) as timed_out:
        while True:
            effect = operation.send(value)
            effects.append(effect)
            value = None
            if isinstance(effect, _core.Call):
                value = httpx.Response(200, json=answers.pop(0) if len(answers) > 1 else answers[0])
            elif isinstance(effect, _core.Notify):
                effect.callback(effect.value)
            elif isinstance(effect, _core.Sleep):
                now[0] += effect.seconds
    assert seen == ["QUEUED", "RUNNING"]
    assert timed_out.value.job.status == "RUNNING"
    sleeps = [e.seconds for e in effects if isinstance(e, _core.Sleep)]
    assert sleeps[:-1] == sorted(sleeps[:-1]) and sleeps[1] > sleeps[0]  # polls back off (the last: the rest)
    assert sum(sleeps) == pytest.approx(1.0)  # never past the deadline


# ---- SigV4 ---------------------------------------------------------------------------------------

CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
SIGNED_AT = dt.datetime(2024, 5, 1, 12, 0, 0)


def server_signature(request: httpx.Request, secret: str, region: str, service: str = "execute-api") -> str:
    """The signature a SigV4 verifier computes from the request as received (AWS's documented algorithm,
    written out here independently of botocore): the path as sent, the query decoded and re-encoded."""
    authorization = request.headers["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    amz_date = request.headers["X-Amz-Date"]
    query = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, v in parse_qsl(request.url.query.decode(), keep_blank_values=True)
    )
    canonical = "\n".join(
        [
            request.method,
            quote(request.url.path, safe="/-_.~"),
            "&".join(f"{k}={v}" for k, v in query),
            "".join(f"{h}:{request.headers[h].strip()}\n" for h in signed),
            ";".join(signed),
            hashlib.sha256(request.content).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: SIGNED_AT)


@pytest.mark.usefixtures("fixed_clock")
def test_sigv4_signing_matches_botocore_and_a_servers_verification() -> None:
    accepted = httpx.Response(202, json={"execution_id": "job-1", "status": "QUEUED", "status_url": "u"})
    page = httpx.Response(200, json={"executions": [], "next_token": None})
    client, seen = client_with(accepted, page, auth=IamAuth(credentials=CREDENTIALS))

    client.submit(SMA_CROSS, symbol="AAPL", idempotency_key="key-1")
    client.list_page(name="my run", status="SUCCEEDED")

    for request in seen:
        # botocore's own signer, given the request as it went over the wire, signs it the same
        expected = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={
                h: request.headers[h] for h in ("host", "content-type", "idempotency-key") if h in request.headers
            },
        )
        SigV4Auth(CREDENTIALS, "execute-api", "eu-west-1").add_auth(expected)
        assert request.headers["Authorization"] == expected.headers["Authorization"]
        assert request.headers["X-Amz-Date"] == "20240501T120000Z"
        assert request.headers["X-Amz-Security-Token"] == "session-token"
        # and a server's verification of the received request agrees (region from the host name)
        assert request.headers["Authorization"].startswith(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/eu-west-1/execute-api/aws4_request, "
        )
        signature = request.headers["Authorization"].rsplit("Signature=", 1)[1]
        assert signature == server_signature(request, CREDENTIALS.secret_key, "eu-west-1")
    assert (
        "SignedHeaders=content-type;host;idempotency-key;x-amz-date;x-amz-security-token,"
        in seen[0].headers["Authorization"]
    )
    assert seen[1].url.query == b"name=my%20run&status=SUCCEEDED"


@pytest.mark.usefixtures("fixed_clock")
def test_sigv4_reads_credentials_and_region_from_a_session() -> None:
    class Session:
        region_name = "us-east-2"

        def get_credentials(self) -> Credentials:
            return CREDENTIALS

    transport, seen = scripted(httpx.Response(200, json={"status": "ok", "service": "s", "version": "1"}))
    with BacktestClient("https://api.example.com/prod", auth=IamAuth(Session()), transport=transport) as client:
        client.health()
    assert "/20240501/us-east-2/execute-api/aws4_request" in seen[0].headers["Authorization"]
    assert region_of_url("https://abc.execute-api.ap-south-1.amazonaws.com/prod") == "ap-south-1"
    assert region_of_url("https://api.example.com") is None
