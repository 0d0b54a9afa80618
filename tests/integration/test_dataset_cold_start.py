"""Cold start of the dataset functions: the API one stays light, the validating one loads the engine."""

from __future__ import annotations

import json

import pytest

from local.cold_start import lambda_like_env, run_probe

pytestmark = pytest.mark.xdist_group("integration")


def test_the_datasets_api_function_imports_neither_numpy_nor_pandas() -> None:
    out = run_probe("datasets", lambda_like_env())
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["numpy"] is False and result["pandas"] is False
    assert result["aws_xray_sdk"] is False


def test_validate_dataset_starts_with_the_engine() -> None:
    out = run_probe("validate_dataset", lambda_like_env())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["numpy"] is True
