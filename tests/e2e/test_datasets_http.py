"""Datasets end to end over real HTTP against `backtest local`: a CSV uploaded through the presigned POST
(by `backtest datasets upload` and by a plain HTTP client), READY, a backtest that names it with the same
metrics as `backtest run --data` on the same file, an invalid file INVALID with its line, and another
caller who can neither see nor use it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from local.http_server import LocalServer
from tests.dataset_support import DATASETS, ohlcv_csv, upload
from tests.support import SMA_CROSS, Client

pytestmark = [
    pytest.mark.xdist_group("e2e"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]
REPO = Path(__file__).resolve().parents[2]
BACKTEST = [sys.executable, "-m", "local.cli"]
EXAMPLE = REPO / "examples" / "sma_crossover_vectorized.py"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BACKTEST, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def wait_dataset(client: Client, dataset_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.request("GET", f"{DATASETS}/{dataset_id}")
        assert response.status_code == 200, response.text
        dataset = dict(response.json())
        if dataset["status"] != "PENDING":
            return dataset
        assert time.monotonic() < deadline, f"dataset {dataset_id} still PENDING"
        time.sleep(0.2)


def test_upload_with_the_cli_then_backtest_it_over_http_like_backtest_run_data(
    local_server: LocalServer, client: Client, tmp_path: Path
) -> None:
    # Given a CSV file uploaded by `backtest datasets upload` (presigned POST over loopback)
    path = tmp_path / "my_bars.csv"
    path.write_bytes(ohlcv_csv(days=25, timeframe="15m"))
    user = client.session.headers["X-Local-User"]
    assert isinstance(user, str)
    uploaded = cli("datasets", "upload", str(path), "--api-url", local_server.url, "--user", user, "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    dataset = json.loads(uploaded.stdout)
    assert dataset["status"] == "READY"
    assert dataset["stats"]["rows"] == 25 * 96 and dataset["stats"]["timeframe"] == "15m"

    # When a backtest of the example strategy names it over HTTP
    code = EXAMPLE.read_text()
    response = client.request(
        "POST", "/api/backtest/run", json={"strategy_code": code, "dataset_id": dataset["dataset_id"]}
    )
    assert response.status_code == 202, response.text
    job = client.wait(response.json()["execution_id"])

    # Then its metrics are those of `backtest run --data` on the same file
    assert job["status"] == "SUCCEEDED", job
    local = cli("run", str(EXAMPLE), "--data", str(path), "--json")
    assert local.returncode == 0, local.stderr
    expected = json.loads(local.stdout)
    assert job["performance_metrics"] == pytest.approx(expected["performance_metrics"])
    assert job["market_data_stats"]["data_points"] == expected["market_data_stats"]["data_points"] == 25 * 96
    assert local_server.stack.job(job["execution_id"])["data_fingerprint"] == expected["data_fingerprint"]  # type: ignore[index]

    # And `backtest run --dataset` runs it on the service too
    remote = cli(
        "run", str(EXAMPLE), "--dataset", dataset["dataset_id"], "--api-url", local_server.url, "--user", user, "--json"
    )
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["performance_metrics"] == pytest.approx(expected["performance_metrics"])


def test_an_invalid_file_ends_invalid_with_its_line_and_another_caller_sees_nothing(
    local_server: LocalServer, make_client: Any
) -> None:
    alice, mallory = make_client("alice-e2e-datasets"), make_client("mallory-e2e-datasets")
    created = alice.request("POST", DATASETS, json={"name": "bad", "format": "csv"}).json()
    bad = b"time,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n2024-01-03,1,0.5,1,1,1\n"
    assert upload(created, bad).status_code == 204
    dataset = wait_dataset(alice, created["dataset_id"])
    assert dataset["status"] == "INVALID"
    assert dataset["error"]["line"] == 3
    assert "line 3, column 'high': high 0.5 is below max(open, close) = 1" in dataset["error"]["message"]

    good = alice.request("POST", DATASETS, json={"name": "good"}).json()
    assert upload(good, ohlcv_csv()).status_code == 204
    assert wait_dataset(alice, good["dataset_id"])["status"] == "READY"
    for dataset_id in (created["dataset_id"], good["dataset_id"]):
        assert mallory.request("GET", f"{DATASETS}/{dataset_id}").status_code == 404
        refused = mallory.request(
            "POST", "/api/backtest/run", json={"strategy_code": SMA_CROSS, "dataset_id": dataset_id}
        )
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "dataset_id"
    assert mallory.request("GET", DATASETS).json()["datasets"] == []
