"""`backtest submit | status | results | list | cancel` against `backtest local` over HTTP (in-process
`main()`, the `local_server` fixture), as a person would use them: the output, the files, the exit status."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from local.cli import main
from local.http_server import LocalServer
from tests.support import SMA_CROSS

pytestmark = [
    pytest.mark.xdist_group("client-cli"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

INFINITE_LOOP = "def generate_signals(data, params):\n    while True:\n        pass\n"
Backtest = Callable[..., tuple[int, str, str]]


@pytest.fixture
def backtest(local_server: LocalServer, capsys: pytest.CaptureFixture[str], user: str) -> Backtest:
    """Run `backtest ARGS... --api-url <server> --user <test's user>`: (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main([*args, "--api-url", local_server.url, "--user", user])
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def strategy(tmp_path: Path) -> Path:
    path = tmp_path / "sma_cross.py"
    path.write_text(SMA_CROSS, encoding="utf-8")
    return path


def test_submit_wait_status_list_and_results(backtest: Backtest, strategy: Path, tmp_path: Path) -> None:
    # submit --wait follows the job, then prints what ran and the metrics table
    status, out, err = backtest(
        "submit", str(strategy), "--symbol", "MSFT", "--timeframe", "1d", "--start", "2024-01-01",
        "--end", "2024-06-30", "--param", "fast=5", "--param", "slow=20", "--wait",
    )  # fmt: skip
    assert status == 0, err
    assert out.startswith("sma_cross: MSFT 1d 2024-01-01 .. 2024-06-30 (")
    assert "SUCCEEDED" in out.splitlines()[0]
    assert "parameters fast=5, slow=20" in out
    assert "Performance" in out and "sharpe_ratio" in out and "final_capital" in out
    assert "Trades\n  total " in out
    assert "SUCCEEDED" in err.splitlines()[-1]  # the progress lines (stderr is no terminal here)
    first_id = out.strip().rsplit(" ", 1)[-1]

    # submit without --wait prints only the id, for scripts
    status, out, err = backtest("submit", str(strategy), "--timeframe", "1d", "--name", "second")
    assert status == 0, err
    second_id = out.strip()
    assert len(out.splitlines()) == 1 and f"backtest status {second_id}" in err

    status, out, _ = backtest("status", second_id, "--wait")
    assert status == 0
    assert out.startswith("second: AAPL 1d") and "Performance" in out

    status, out, _ = backtest("status", first_id, "--json")
    assert status == 0 and json.loads(out)["execution_id"] == first_id

    status, out, _ = backtest("list")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["EXECUTION", "ID", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == [second_id, first_id]  # newest first
    status, out, _ = backtest("list", "--symbol", "MSFT", "--json")
    assert [json.loads(line)["execution_id"] for line in out.splitlines()] == [first_id]

    saved = tmp_path / "result.json"
    report = tmp_path / "report.html"
    status, out, err = backtest("results", first_id, "--out", str(saved), "--report", str(report))
    assert status == 0, err
    document = json.loads(saved.read_text("utf-8"))
    assert document["request"]["symbol"] == "MSFT"
    assert f"wrote {saved}" in err and f"wrote {report}" in err
    assert report.read_bytes().lstrip().lower().startswith(b"<!doctype html")


def test_cancel_a_running_job(backtest: Backtest, tmp_path: Path) -> None:
    loop = tmp_path / "loop.py"
    loop.write_text(INFINITE_LOOP, encoding="utf-8")
    status, out, _ = backtest("submit", str(loop), "--timeframe", "1d")
    execution_id = out.strip()
    for _ in range(100):
        if "RUNNING" in backtest("status", execution_id)[1]:
            break
        time.sleep(0.1)

    status, out, _ = backtest("cancel", execution_id)

    assert status == 0
    assert out.strip() == f"{execution_id}  CANCELLED"
    status, out, _ = backtest("status", execution_id)
    assert status == 3  # the job did not succeed
    assert "CANCELLED" in out and "error: Cancelled" in out
    status, _, err = backtest("results", execution_id)
    assert status == 1 and "CANCELLED, so it has no results" in err


def test_errors_name_what_to_fix(backtest: Backtest, strategy: Path, tmp_path: Path) -> None:
    status, _, err = backtest("submit", str(strategy), "--timeframe", "2h", "--commission", "-1")
    assert status == 2
    assert "  timeframe: " in err and "  commission: " in err

    broken = tmp_path / "broken.py"
    broken.write_text("def generate_signals(data, params)\n    return 1\n", encoding="utf-8")
    status, _, err = backtest("submit", str(broken))
    assert status == 2 and "StrategyCompileError" in err and "line 1" in err

    status, _, err = backtest("submit", str(tmp_path / "missing.py"))
    assert status == 2 and "cannot read strategy" in err

    status, _, err = backtest("submit", str(strategy), "--param", "fast")
    assert status == 2 and "expected NAME=VALUE" in err

    status, _, err = backtest("status", "no-such-job")
    assert status == 1 and "404 NotFound" in err


def test_the_seed_flow_example(local_server: LocalServer, user: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "client" / "seed_flow.py"
    spec = importlib.util.spec_from_file_location("seed_flow", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    status = example.main(["--api-url", local_server.url, "--user", user])

    out = capsys.readouterr().out
    assert status == 0, out
    assert out.startswith("backtest-service ") and ": ok\n" in out
    assert "total_return_percent" in out and "final_capital" in out and "bars" in out
