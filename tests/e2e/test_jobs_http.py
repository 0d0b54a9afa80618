"""Jobs a frontend can follow and stop, over real HTTP against `backtest local` (2 workers, moto server):
progress while a long job runs, cancelling an infinite loop frees its worker, a 1M-bar curve downsampled
with its true maximum drawdown, the gzip download, a flip strategy's trades paged, and `?wait=`."""

from __future__ import annotations

import gzip
import time
from typing import Any

import pytest
import requests

from backtest_service import job_monitor
from backtest_service.result_store import result_key
from backtest_service.routes import CANCEL_EXECUTION, GET_EQUITY, GET_TRADES
from local.http_server import LocalServer
from tests.support import FLIP, FOREVER, SMA_CROSS, Client, job_path

pytestmark = [
    pytest.mark.xdist_group("e2e"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

# Event style, about 3,000 loop steps a bar: a year of hourly BTCUSD bars (8,784) takes a few seconds.
SLOW_EVENT = """\
def on_bar(ctx, bar):
    total = 0
    for i in range(3000):
        total += i
    if total < 0:
        ctx.buy()
"""


def test_progress_is_seen_while_a_long_job_runs(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's runners are this process's threads: written every 0.5 s instead of 2 s, so a job of a few
    # seconds shows progress however loaded the machine is (the 2 s rate has its own integration test).
    monkeypatch.setattr(job_monitor, "PROGRESS_INTERVAL_SECONDS", 0.5)
    execution_id = client.submit(
        code=SLOW_EVENT, symbol="BTCUSD", timeframe="1h", start_date="2024-01-01", end_date="2024-12-31"
    )
    submitted = time.monotonic()
    first_progress: float | None = None
    seen: list[float] = []
    while (job := client.status(execution_id))["status"] in ("QUEUED", "RUNNING"):
        progress = job["progress"]
        if job["status"] == "RUNNING" and progress["stage"] == "strategy" and progress["bars_done"] > 0:
            first_progress = first_progress or time.monotonic() - submitted
            if not seen or seen[-1] != progress["percent"]:
                seen.append(progress["percent"])
        time.sleep(0.2)
    assert job["status"] == "SUCCEEDED", job["error"]
    assert len(seen) >= 2, seen
    assert seen == sorted(seen) and all(5 < p <= 85 for p in seen)
    print(f"\nfirst strategy progress {first_progress:.2f} s after submit; percents seen {seen}")


def test_cancelling_an_infinite_loop_ends_it_within_seconds_and_frees_its_worker(
    client: Client, local_server: LocalServer
) -> None:
    execution_id = client.submit(code=FOREVER)
    client.wait(execution_id, until=("RUNNING",))
    time.sleep(0.5)  # in the strategy by now
    asked = time.monotonic()
    answer = client.request(CANCEL_EXECUTION.method, job_path(CANCEL_EXECUTION, execution_id))
    assert answer.status_code == 200 and answer.json()["cancel_requested"] is True
    job = client.wait(execution_id, until=("CANCELLED",), timeout=10)
    latency = time.monotonic() - asked
    assert latency < 3.0, latency
    assert job["error"]["type"] == "Cancelled"
    print(f"\ncancel to CANCELLED: {latency:.2f} s")
    # And the worker is free again: two ordinary jobs finish (both workers)
    ids = [client.submit(), client.submit()]
    assert [client.wait(i, timeout=30)["status"] for i in ids] == ["SUCCEEDED", "SUCCEEDED"]


@pytest.mark.slow
def test_a_million_bar_curve_is_downsampled_with_its_true_max_drawdown(
    client: Client, local_server: LocalServer
) -> None:
    # BTCUSD 1m over two years: 1,052,640 bars
    execution_id = client.submit(
        code=SMA_CROSS, symbol="BTCUSD", timeframe="1m", start_date="2022-01-01", end_date="2023-12-31"
    )
    job = client.wait(execution_id, timeout=180)
    assert job["status"] == "SUCCEEDED", job
    assert job["market_data_stats"]["data_points"] == 730 * 1440
    curve = client.request(GET_EQUITY.method, job_path(GET_EQUITY, execution_id), params={"points": 1000}).json()
    assert curve["points"] <= 1000 and curve["total_points"] == 730 * 1440
    assert curve["max_drawdown_pct"] == pytest.approx(job["performance_metrics"]["max_drawdown_percent"], abs=1e-9)
    assert min(curve["drawdown_pct"]) == curve["max_drawdown_pct"]
    # And the presigned download, decompressed by a plain HTTP client, is the stored result
    download = requests.get(job["results_url"], timeout=60)
    assert download.headers["Content-Encoding"] == "gzip"
    s3 = local_server.stack.client("s3")
    stored = s3.get_object(Bucket=local_server.stack.resources.results_bucket, Key=result_key(execution_id))
    compressed = stored["Body"].read()
    assert download.content == gzip.decompress(compressed)
    print(
        f"\n1M-bar result: {len(compressed) / 2**20:.1f} MiB on the wire, "
        f"{len(download.content) / 2**20:.1f} MiB of JSON; status answer {len(str(job))} bytes"
    )


def test_a_flip_strategy_runs_and_its_trades_come_in_pages(client: Client) -> None:
    execution_id = client.submit(
        code=FLIP, symbol="BTCUSD", timeframe="5m", start_date="2024-01-01", end_date="2024-01-31"
    )
    job = client.wait(execution_id, timeout=60)
    assert job["status"] == "SUCCEEDED", job
    total = job["trade_summary"]["total_trades"]
    assert total > 3000
    seen = 0
    params: dict[str, Any] = {"limit": 500}
    while True:
        page = client.request(GET_TRADES.method, job_path(GET_TRADES, execution_id), params=params).json()
        seen += len(page["trades"])
        if not page.get("next_token"):
            break
        params["next_token"] = page["next_token"]
    assert seen == total == page["total"]


def test_wait_gives_the_seed_answer(client: Client) -> None:
    response = client.request(
        "POST",
        "/api/backtest/run",
        params={"wait": 20},
        json={"strategy_code": SMA_CROSS, "symbol": "AAPL", "timeframe": "1d", "start_date": "2024-01-01"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["status"] == "SUCCEEDED"
    for key in ("execution_id", "performance_metrics", "trade_summary", "market_data_stats"):
        assert body[key], key
    assert body["status_url"].startswith(client.base_url)  # absolute, on the server the caller used
