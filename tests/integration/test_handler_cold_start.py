"""Cold start of each function, in a fresh interpreter: what it imports, what it costs, how it fails."""

from __future__ import annotations

import json

import pytest

from backtest_service.settings import Settings, SettingsError
from backtest_service.topology import Env
from local.cold_start import FUNCTION_ENV, lambda_like_env, run_probe

pytestmark = pytest.mark.xdist_group("integration")


@pytest.mark.parametrize("function", ["submit", "status", "symbols", "optimizations"])
def test_api_functions_import_neither_numpy_nor_pandas(function: str) -> None:
    out = run_probe(function, lambda_like_env())
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\ncold import of functions/{function}/handler.py: {result['ms']:.1f} ms")
    assert result["numpy"] is False, f"{function} imports numpy at cold start"
    assert result["pandas"] is False, f"{function} imports pandas at cold start"
    # Tracing is on in this environment, but the tracer is created by the first traced call.
    assert result["aws_xray_sdk"] is False, f"{function} imports the X-Ray SDK at cold start"
    if function == "symbols":  # reference data only: it never calls AWS
        assert result["boto3"] is False, "symbols imports boto3 at cold start"


def test_run_backtest_imports_the_engine_at_cold_start() -> None:
    out = run_probe("run_backtest", lambda_like_env())
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\ncold import of functions/run_backtest/handler.py: {result['ms']:.1f} ms")
    assert result["numpy"] is True  # paid at cold start, not in the first job
    assert result["aws_xray_sdk"] is False


def test_missing_settings_fail_the_cold_start_naming_the_variables() -> None:
    out = run_probe("submit", lambda_like_env(None, **{Env.JOBS_TABLE: "", Env.RESULTS_BUCKET: ""}))
    assert out.returncode != 0
    assert "SettingsError" in out.stderr
    assert "JOBS_TABLE_NAME is not set" in out.stderr
    assert "RESULTS_BUCKET_NAME is not set" in out.stderr


def test_settings_name_every_invalid_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**FUNCTION_ENV, Env.MAX_RECEIVE_COUNT: "zero", Env.JOBS_QUEUE_URL: "jobs"})
    message = str(caught.value)
    assert "MAX_RECEIVE_COUNT='zero' is invalid" in message
    assert "JOBS_QUEUE_URL='jobs' is invalid" in message


def test_settings_defaults_come_from_topology_and_the_catalog() -> None:
    settings = Settings.from_env(FUNCTION_ENV)
    assert settings.max_receive_count == 3
    assert settings.max_bars == 2_000_000
    assert settings.results_url_ttl_seconds == 900
    assert settings.job_ttl_days == 30
    assert settings.strategy_wall_seconds == 2 * settings.strategy_cpu_seconds


def test_every_model_of_the_layer_builds_at_first_use_not_at_import() -> None:
    """A function imports the route table and with it every model of the API: `base_model.Model` defers their
    build (about 40 ms of each API function's cold start); a model that forgets it fails here."""
    import importlib
    import inspect
    import pkgutil

    from pydantic import BaseModel

    import backtest_engine
    import backtest_service

    eager, checked = [], 0
    for package in (backtest_engine, backtest_service):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                    checked += 1
                    if obj.model_config.get("defer_build") is not True:
                        eager.append(f"{module.__name__}.{obj.__name__}")
    assert checked > 50 and eager == []


# What the runner does for a job, in its own process: data, the sandboxed strategy (both styles), fills,
# metrics, the stored records, JSON and report. pandas is the strategies' library, imported by the sandbox's
# zygote for its children; the runner itself must not need it (about 260 ms of its cold start).
RUNNER_WORK = """
import sys
from datetime import date
from backtest_engine.engine import run_backtest
from backtest_engine.market_data import load_bars
from backtest_engine.models import BacktestRequest
from backtest_engine.report import build_report
from backtest_engine.result import EQUITY_DTYPE, TRADE_DTYPE, iter_json, npy_chunks
from backtest_engine.sandbox.supervisor import default_supervisor

VECTORIZED = '''
def generate_signals(data, params):
    fast = data.close.rolling(5).mean()
    return (fast > data.close.rolling(20).mean()).astype(float).where(data.index.dayofweek < 5, 0.0)
'''
EVENT = open(sys.argv[1]).read()
default_supervisor().start()
for code, symbol in ((VECTORIZED, "BTCUSD"), (EVENT, "AAPL")):
    request = BacktestRequest(
        strategy_code=code, symbol=symbol, timeframe="1h", start_date=date(2024, 1, 1), end_date=date(2024, 3, 1)
    )
    bars = load_bars(request.symbol, request.timeframe, request.start_date, request.end_date)
    result = run_backtest(request, bars=bars)
    assert result.performance_metrics["total_trades"] > 0, result.performance_metrics
    b"".join(iter_json(result))
    list(npy_chunks(result.equity_curve, EQUITY_DTYPE)) and list(npy_chunks(result.trades, TRADE_DTYPE))
    build_report(result, bars)
print("pandas" in sys.modules)
"""


def test_the_runner_runs_a_job_without_importing_pandas_itself() -> None:
    import subprocess
    import sys
    from pathlib import Path

    event = Path(__file__).parents[2] / "examples" / "sma_crossover_event.py"
    command = [sys.executable, "-c", RUNNER_WORK, str(event)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
