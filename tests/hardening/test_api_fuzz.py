"""Property-based fuzzing of the HTTP API with schemathesis, through `backtest local` over real HTTP on
loopback, against the OpenAPI document the service serves (`GET /api/backtest/openapi.json`).

Every generated request, valid or deliberately invalid, must get an answer that is not a 5xx and that
the document describes: a documented status code, the documented content type and headers, and a body
matching the documented schema; requests the schema forbids must be refused with a 4xx; every error
is the service's JSON error shape with a message a person can act on.

Schemathesis runs as its CLI (`schemathesis run`, phases examples, coverage and fuzzing) in a
subprocess: its pytest integration loses every operation but the first under pytest-xdist with
pytest 9, and `make test` runs with xdist. The NDJSON report it writes is read back for the counts and
the error-shape check.

Schemathesis alone almost never gets past validation (random symbols, dates and code are refused, as
they should be), so a second property test draws submissions that are valid in shape with hypothesis,
sends them, lets the workers run the accepted ones, and validates every job's status and list answers
(QUEUED to SUCCEEDED or FAILED, with metrics) against the document too.

Bounded for `make test`: `FUZZ_EXAMPLES` examples per operation (default 30), generated
deterministically, so a run is repeatable. `make fuzz` runs FUZZ_EXAMPLES=500.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backtest_engine.catalog import SYMBOLS
from local.http_server import LocalServer

pytestmark = pytest.mark.xdist_group("hardening-fuzz")
# The fuzzer submits hundreds of valid jobs as one caller: the fairness limit (its own tests) out of its way.
LOCAL_SERVER_ENV = {"MAX_ACTIVE_JOBS": "100000"}

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.json"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Not checked: `positive_data_acceptance`. A body the schema allows may still be refused on purpose with
# a documented 4xx: strategy code that does not compile (400 naming the line), dates outside the
# history or more bars than the cap (422), which only the service can judge.

document = schemathesis.openapi.from_path(DOCUMENT)


@pytest.fixture(scope="module")
def http() -> Any:
    with requests.Session() as session:
        session.headers["X-Local-User"] = "fuzzer"
        yield session


def test_the_service_serves_the_committed_document(local_server: LocalServer) -> None:
    served = requests.get(f"{local_server.url}/api/backtest/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == json.loads(DOCUMENT.read_text(encoding="utf-8"))


def _interactions(report: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, method sent, response) of every request in a schemathesis NDJSON report."""
    found = []
    for line in report.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        label = finished["recorder"]["label"]
        for interaction in finished["recorder"].get("interactions", {}).values():
            if interaction.get("response"):
                found.append((label, interaction["request"]["method"], interaction["response"]))
    return found


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    local_server: LocalServer, tmp_path: Path
) -> None:
    # When schemathesis fuzzes every operation of the served document over HTTP
    report = tmp_path / "schemathesis.ndjson"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{local_server.url}/api/backtest/openapi.json",
        "--checks",
        ",".join(check.__name__ for check in CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--generation-deterministic",
        "--header",
        "X-Local-User: fuzzer",
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)

    # Then it found nothing: no 5xx, no undocumented status, content type, header or body
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    answers = _interactions(report)
    operations = {
        f"{m.upper()} {p}" for p, item in json.loads(DOCUMENT.read_text("utf-8"))["paths"].items() for m in item
    }
    assert {label for label, _, _ in answers} == operations
    # And every error answer is the service's JSON error shape with a message a person can act on
    for label, method, response in answers:
        if response["status_code"] < 400 or method == "HEAD":  # a HEAD answer has no body
            continue
        content_type = response["headers"].get("content-type", [""])[0]
        assert content_type.startswith("application/json"), (label, method, response)
        body = json.loads(base64.b64decode(response["content"]["$base64"]))
        assert body["success"] is False and body["error"]["type"], (label, body)
        assert len(body["error"]["message"]) > 10, (label, body)

    statuses: dict[str, Counter[int]] = {}
    for label, _, response in answers:
        statuses.setdefault(label, Counter())[response["status_code"]] += 1
    lines = [
        f"  {label}: {sum(c.values())} ({', '.join(f'{s}: {n}' for s, n in sorted(c.items()))})"
        for label, c in sorted(statuses.items())
    ]
    print(
        f"\nfuzzed {len(answers)} requests over {len(statuses)} operations (FUZZ_EXAMPLES={EXAMPLES}):",
        *lines,
        sep="\n",
    )


# ---- accepted submissions ---------------------------------------------------------------------------

STRATEGIES = [
    "import numpy as np\nimport talib\n\n\ndef generate_signals(data, params):\n"
    "    fast = talib.SMA(data.close.values, timeperiod=3)\n"
    "    slow = talib.SMA(data.close.values, timeperiod=8)\n"
    "    return np.where(fast > slow, 1.0, 0.0)\n",
    "def on_bar(ctx, bar):\n    if ctx.i % 5 == 1:\n        ctx.target(0.5)\n    elif ctx.i % 5 == 3:\n"
    "        ctx.close()\n    print(ctx.i, ctx.params)\n",
    "def generate_signals(data, params):\n    raise ValueError(params)\n",
]
PARAMETER_VALUES = st.one_of(
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(-1e9, 1e9, allow_nan=False),
    st.text(max_size=40),
)
SUBMISSIONS = st.fixed_dictionaries(
    {
        "strategy_code": st.sampled_from(STRATEGIES),
        "symbol": st.sampled_from(list(SYMBOLS)),
        "timeframe": st.sampled_from(["4h", "1d"]),
        "start_date": st.dates(min_value=date(2024, 1, 1), max_value=date(2024, 6, 30)).map(str),
        "end_date": st.dates(min_value=date(2024, 7, 1), max_value=date(2024, 8, 31)).map(str),
    },
    optional={
        "initial_capital": st.floats(0.01, 1e12),
        "commission": st.floats(0, 0.1),
        "slippage": st.floats(0, 0.1),
        "parameters": st.dictionaries(
            st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True), PARAMETER_VALUES, max_size=4
        ),
        "name": st.text(max_size=200),
    },
)
CALLER = {"X-Local-User": "fuzzer-accepted"}  # a caller of its own: its job list is exactly these jobs
EXPLICIT = [
    {
        "strategy_code": STRATEGIES[1],
        "symbol": "BTCUSD",
        "timeframe": "4h",
        "start_date": "2024-03-01",
        "end_date": "2024-03-20",
        "parameters": {"size": 0.5, "label": "ü"},
        "name": "event style",
    },
    {
        "strategy_code": STRATEGIES[2],
        "symbol": "TSLA",
        "timeframe": "1d",
        "start_date": "2024-01-01",
        "end_date": "2024-02-01",
        "parameters": {"flag": True},
    },
]


def test_valid_shaped_submissions_and_their_jobs_are_answered_as_documented(
    local_server: LocalServer, http: requests.Session
) -> None:
    accepted: list[str] = []

    @settings(
        max_examples=max(10, EXAMPLES // 2),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=SUBMISSIONS)
    @example(body=EXPLICIT[0])
    @example(body=EXPLICIT[1])
    def submit(body: dict[str, Any]) -> None:
        case = document["/api/backtest/run"]["POST"].Case(body=body, media_type="application/json")
        response = case.call(base_url=local_server.url, session=http, headers=CALLER, timeout=30)
        case.validate_response(response, checks=CHECKS)
        if response.status_code == 202:
            accepted.append(response.json()["execution_id"])
        else:  # only a name with control characters or a surrogate is refused here
            assert response.status_code == 422 and response.json()["error"]["field"] == "name", response.text

    # When hypothesis submits valid-shaped backtests
    submit()
    assert len(accepted) >= 5, "too few submissions were accepted to check their jobs"

    # Then every answer about each job, until it ends, conforms to the document
    status = document["/api/backtest/status/{execution_id}"]["GET"]
    seen: Counter[str] = Counter()
    for execution_id in accepted:
        case = status.Case(path_parameters={"execution_id": execution_id})
        deadline = time.monotonic() + 120
        while True:  # the intermediate answers (QUEUED, RUNNING) too
            response = case.call(base_url=local_server.url, session=http, headers=CALLER, timeout=30)
            case.validate_response(response, checks=CHECKS)
            job = response.json()
            if job["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        seen[job["status"]] += 1
        assert job["status"] in ("SUCCEEDED", "FAILED"), job
        if job["status"] == "FAILED":
            assert job["error"]["type"] in ("StrategyError", "InvalidRequest"), job["error"]
    assert seen["SUCCEEDED"] >= 1 and seen["FAILED"] >= 1, seen
    # And so does the caller's job list, page by page, which holds exactly these jobs
    listing = document["/api/backtest/executions"]["GET"]
    token: str | None = None
    listed: list[str] = []
    while True:
        case = listing.Case(query={"limit": 7, **({"next_token": token} if token else {})})
        response = case.call(base_url=local_server.url, session=http, headers=CALLER, timeout=30)
        case.validate_response(response, checks=CHECKS)
        page = response.json()
        listed += [job["execution_id"] for job in page["executions"]]
        token = page.get("next_token")
        if not token:
            break
    assert sorted(listed) == sorted(accepted)
    print(f"\naccepted {len(accepted)} drawn submissions: {dict(seen)}")
