"""The functions' configuration: environment variables (names in `topology.Env`) read once, validated.

`get_settings()` is called at cold start by every handler module, so a missing or malformed variable
fails the first invocation with a message naming the variable, instead of a `KeyError` deep inside a
request. Nothing else in the service reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Annotated

from pydantic import ConfigDict, Field, ValidationError

from backtest_engine import __version__ as ENGINE_VERSION
from backtest_engine.base_model import Model
from backtest_engine.catalog import MAX_BARS
from backtest_service import topology
from backtest_service.jobs import STALE_AFTER_SECONDS
from backtest_service.topology import Env


class SettingsError(RuntimeError):
    """The environment does not configure the service; the message names each variable to fix."""


_NAME = Field(min_length=1, max_length=1024)
# Time the runner keeps for loading data, writing the result and the status after the strategy ends.
RUNNER_RESERVE_SECONDS = 60
MAX_STRATEGY_SECONDS = topology.RUN_BACKTEST.timeout_seconds - RUNNER_RESERVE_SECONDS


class Settings(Model):
    """Every setting of the four functions. Resource names are required; the rest default to topology."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    jobs_table: Annotated[str, _NAME, Field(validation_alias=Env.JOBS_TABLE)]
    idempotency_table: Annotated[str, _NAME, Field(validation_alias=Env.IDEMPOTENCY_TABLE)]
    jobs_queue_url: Annotated[str, Field(validation_alias=Env.JOBS_QUEUE_URL, pattern=r"^https?://\S+$")]
    results_bucket: Annotated[
        str, Field(validation_alias=Env.RESULTS_BUCKET, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    ]
    datasets_table: Annotated[str, _NAME, Field(validation_alias=Env.DATASETS_TABLE)]
    # Parameter optimizations (issue 14): the table of optimizations and their chunks, the chunks' queue, and
    # the target work of one chunk (the submit sizes chunks by the estimated cost of a combination).
    optimizations_table: Annotated[str, _NAME, Field(validation_alias=Env.OPTIMIZATIONS_TABLE)]
    optimization_queue_url: Annotated[
        str, Field(validation_alias=Env.OPTIMIZATION_QUEUE_URL, pattern=r"^https?://\S+$")
    ]
    optimization_chunk_seconds: Annotated[
        float, Field(validation_alias=Env.OPTIMIZATION_CHUNK_SECONDS, gt=0, le=MAX_STRATEGY_SECONDS)
    ] = topology.OPTIMIZATION_CHUNK_SECONDS
    job_ttl_days: Annotated[int, Field(validation_alias=Env.JOB_TTL_DAYS, ge=1, le=3650)] = topology.JOB_TTL_DAYS
    max_receive_count: Annotated[int, Field(validation_alias=Env.MAX_RECEIVE_COUNT, ge=1, le=1000)] = (
        topology.JOBS_QUEUE.max_receive_count
    )
    results_url_ttl_seconds: Annotated[
        int, Field(validation_alias=Env.RESULTS_URL_TTL_SECONDS, ge=1, le=7 * 24 * 3600)
    ] = topology.RESULTS_URL_TTL_SECONDS
    max_bars: Annotated[int, Field(validation_alias=Env.MAX_BARS, ge=2)] = MAX_BARS
    # A RUNNING job whose heartbeat is older than this has lost its runner (it must stay well under the queue's
    # visibility timeout, so a redelivery after a kill finds it stale; the runner beats three times as often).
    stale_after_seconds: Annotated[float, Field(validation_alias=Env.STALE_AFTER_SECONDS, gt=0, le=3600)] = (
        STALE_AFTER_SECONDS
    )
    max_active_jobs: Annotated[int, Field(validation_alias=Env.MAX_ACTIVE_JOBS, ge=1, le=100_000)] = (
        topology.MAX_ACTIVE_JOBS_PER_CALLER
    )
    # The strategy's CPU budget; its wall-clock budget is twice that, and both must end well inside
    # the runner's Lambda timeout, or a slow strategy would look like an infrastructure fault.
    strategy_cpu_seconds: Annotated[
        float, Field(validation_alias=Env.STRATEGY_CPU_SECONDS, gt=0, le=MAX_STRATEGY_SECONDS)
    ] = 60.0
    strategy_memory_mb: Annotated[int, Field(validation_alias=Env.STRATEGY_MEMORY_MB, ge=64, le=10240)] = 1536
    service_version: Annotated[str, Field(validation_alias=Env.SERVICE_VERSION, min_length=1)] = ENGINE_VERSION
    # The API's public root (a custom domain, e.g. https://api.example.com/backtest) when links must not be
    # built from the request (API Gateway's own domain and stage are the default).
    public_base_url: Annotated[
        str | None, Field(validation_alias=Env.PUBLIC_BASE_URL, pattern=r"^https?://[^\s/]+(/\S*)?$")
    ] = None
    service_name: Annotated[str, Field(validation_alias=Env.POWERTOOLS_SERVICE_NAME, min_length=1)] = (
        topology.SERVICE_NAME
    )

    @property
    def strategy_wall_seconds(self) -> float:
        return min(2 * self.strategy_cpu_seconds, float(MAX_STRATEGY_SECONDS))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; `SettingsError` names every variable that is missing or wrong."""
        env = os.environ if environ is None else environ
        # An empty variable is "not set": the default applies, or a required one is reported missing.
        data = {key: value for key, value in env.items() if value != ""}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else "?"
                if err["type"] == "missing":
                    problems.append(f"{name} is not set")
                else:
                    problems.append(f"{name}={err.get('input')!r} is invalid: {err['msg']}")
            raise SettingsError(
                "the backtest service is misconfigured: "
                + "; ".join(problems)
                + " (see backtest_service.topology: Env names them, function_environment gives their values)"
            ) from None


@cache
def get_settings() -> Settings:
    """The settings of this container, read from the environment on first use."""
    return Settings.from_env()
