"""Cold start of each function, in a fresh interpreter: what it imports, what it costs, how it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from integration_harness import FUNCTIONS_DIR, REPO

from backtest_service.settings import Settings, SettingsError
from backtest_service.topology import Env

pytestmark = pytest.mark.xdist_group("integration")

_PROBE = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - t0
loaded = {"numpy": "numpy" in sys.modules, "pandas": "pandas" in sys.modules}
print(json.dumps({"ms": round(elapsed * 1000, 1), **loaded}))
"""

_FUNCTION_ENV = {
    Env.JOBS_TABLE: "jobs",
    Env.IDEMPOTENCY_TABLE: "idempotency",
    Env.JOBS_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    Env.RESULTS_BUCKET: "results-bucket",
}


_SERVICE_VARIABLES = {value for name, value in vars(Env).items() if not name.startswith("_")}


def _lambda_like_env(**overrides: str) -> dict[str, str]:
    """A clean environment as Lambda gives one: the function's variables, fake credentials."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_")) and k not in _SERVICE_VARIABLES
    }
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": "cold-start-probe",  # powertools behaves as in Lambda
            **_FUNCTION_ENV,
        }
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def _probe(function: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, str(FUNCTIONS_DIR / function / "handler.py")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("function", ["submit", "status", "symbols"])
def test_api_functions_import_neither_numpy_nor_pandas(function: str) -> None:
    out = _probe(function, _lambda_like_env())
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\ncold import of functions/{function}/handler.py: {result['ms']} ms")
    assert result["numpy"] is False, f"{function} imports numpy at cold start"
    assert result["pandas"] is False, f"{function} imports pandas at cold start"


def test_run_backtest_imports_the_engine_at_cold_start() -> None:
    out = _probe("run_backtest", _lambda_like_env())
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\ncold import of functions/run_backtest/handler.py: {result['ms']} ms")
    assert result["numpy"] is True  # paid at cold start, not in the first job


def test_missing_settings_fail_the_cold_start_naming_the_variables() -> None:
    out = _probe("submit", _lambda_like_env(**{Env.JOBS_TABLE: "", Env.RESULTS_BUCKET: ""}))
    assert out.returncode != 0
    assert "SettingsError" in out.stderr
    assert "JOBS_TABLE_NAME is not set" in out.stderr
    assert "RESULTS_BUCKET_NAME is not set" in out.stderr


def test_settings_name_every_invalid_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**_FUNCTION_ENV, Env.MAX_RECEIVE_COUNT: "zero", Env.JOBS_QUEUE_URL: "jobs"})
    message = str(caught.value)
    assert "MAX_RECEIVE_COUNT='zero' is invalid" in message
    assert "JOBS_QUEUE_URL='jobs' is invalid" in message


def test_settings_defaults_come_from_topology_and_the_catalog() -> None:
    settings = Settings.from_env(_FUNCTION_ENV)
    assert settings.max_receive_count == 3
    assert settings.max_bars == 2_000_000
    assert settings.results_url_ttl_seconds == 900
    assert settings.job_ttl_days == 30
    assert settings.strategy_wall_seconds == 2 * settings.strategy_cpu_seconds
