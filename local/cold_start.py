"""A function's cold start, measured as Lambda pays it: its handler module imported in a fresh interpreter,
with the function's variables and fake credentials only. Used by the cold-start tests and the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from backtest_service.topology import HANDLER_MODULE, Env, resource_environment
from local.embedded_aws import FAKE_CREDENTIALS
from local.lambda_runtime import STAND_IN_RESOURCES
from local.stack import FUNCTIONS_DIR

# Run with `python -c PROBE path/to/handler.py`; prints {"ms", "numpy", "pandas", "aws_xray_sdk", "boto3"}
# (all but "ms": whether the import loaded that package) as its last line.
PROBE = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - t0
loaded = {name: name in sys.modules for name in ("numpy", "pandas", "aws_xray_sdk", "boto3")}
print(json.dumps({"ms": elapsed * 1000, **loaded}))
"""

# The variables every function needs at cold start (backtest_service.settings refuses to start without them).
FUNCTION_ENV = resource_environment(**STAND_IN_RESOURCES)
_SERVICE_VARIABLES = {value for name, value in vars(Env).items() if not name.startswith("_")}


def lambda_like_env(base: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """`base` (default: this process's environment) without any AWS_*, POWERTOOLS_* or service variable,
    plus the function's variables and fake credentials, as Lambda gives them, and LAMBDA_TASK_ROOT, which
    powertools and the X-Ray SDK read as "in Lambda": with no POWERTOOLS_*, tracing is on, as deployed.
    An override of "" removes that variable."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(("AWS_", "POWERTOOLS_")) and k not in _SERVICE_VARIABLES}
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **FAKE_CREDENTIALS,
            "AWS_LAMBDA_FUNCTION_NAME": "cold-start-probe",  # powertools behaves as in Lambda
            "LAMBDA_TASK_ROOT": "/var/task",  # where Lambda puts the function's code; tracing is on there
            **FUNCTION_ENV,
        }
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def probe_command(function: str, python: str = sys.executable) -> list[str]:
    """The command that imports `functions/<function>/handler.py` fresh and prints what it cost."""
    return [python, "-c", PROBE, str(FUNCTIONS_DIR / function / f"{HANDLER_MODULE}.py")]


def run_probe(function: str, env: Mapping[str, str], python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        probe_command(function, python),
        env=dict(env),
        cwd=FUNCTIONS_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
