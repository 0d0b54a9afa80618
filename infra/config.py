"""Stage configuration: what differs between dev and prod, and what the CDK context can set.

Context keys (`cdk synth -c key=value` or `python infra/app.py` with CDK_CONTEXT_JSON):
  stage            dev (default) | prod
  authMode         cognito (default) | iam — how API callers authenticate (see docs/DEPLOY.md)
  userPoolId       an existing Cognito user pool to authorize against instead of creating one
  allowedOrigins   comma-separated CORS origins (dev defaults to local frontends; prod requires it)
  alarmEmail       an address subscribed to the alarm topic
  layerDir         layer asset directory (default: build/layer when built, else layers/engine)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from backtest_service.topology import JOBS_QUEUE, OPTIMIZATION_QUEUE, SERVICE_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILT_LAYER_DIR = REPO_ROOT / "build" / "layer"
SOURCE_LAYER_DIR = REPO_ROOT / "layers" / "engine"
FUNCTIONS_DIR = REPO_ROOT / "functions"

Stage = Literal["dev", "prod"]
AuthMode = Literal["cognito", "iam"]
STAGES: tuple[Stage, ...] = ("dev", "prod")
AUTH_MODES: tuple[AuthMode, ...] = ("cognito", "iam")
DEV_ORIGINS = ("http://localhost:3000", "http://localhost:5173")


class ConfigError(ValueError):
    """The CDK context asks for something this app cannot build; the message says what to pass."""


@dataclass(frozen=True)
class LayerSource:
    directory: Path
    built: bool  # False: the unbuilt source tree (no third-party packages, no byte-code)


@dataclass(frozen=True)
class StageConfig:
    stage: Stage
    auth_mode: AuthMode
    allowed_origins: tuple[str, ...]
    user_pool_id: str | None
    alarm_email: str | None
    layer: LayerSource
    # What differs by stage.
    removal_policy: RemovalPolicy
    auto_delete_objects: bool
    deletion_protection: bool
    log_retention: logs.RetentionDays
    access_log_expiry_days: int
    log_level: str
    # Throttling: the whole stage, and the one expensive route (submit queues compute).
    throttle_rate: float
    throttle_burst: int
    submit_throttle_rate: float
    submit_throttle_burst: int
    monthly_quota: int
    # The runner's reserved concurrency; None relies on the event source's maximum concurrency alone
    # (new accounts with a concurrency limit of 10 cannot reserve any).
    runner_reserved_concurrency: int | None

    @property
    def stack_name(self) -> str:
        # An IAM-mode deployment can sit next to the Cognito one in the same account.
        return f"BacktestService-{self.stage}" + ("-iam" if self.auth_mode == "iam" else "")

    @property
    def resource_prefix(self) -> str:
        """Names of the API, user pool, dashboard: unique per stage and auth mode (metrics key on them)."""
        return f"{SERVICE_NAME}-{self.stage}" + ("-iam" if self.auth_mode == "iam" else "")


def resolve_layer(override: str | None = None, built: Path = BUILT_LAYER_DIR) -> LayerSource:
    """build/layer when `make layer` has run, else the source tree (synth and tests still work)."""
    if override:
        directory = Path(override)
        directory = directory if directory.is_absolute() else REPO_ROOT / directory
        if not (directory / "python").is_dir():
            raise ConfigError(f"layerDir {directory} has no python/ folder; a Lambda layer needs one")
        return LayerSource(directory, built=directory.resolve() != SOURCE_LAYER_DIR.resolve())
    if (built / "python").is_dir():
        return LayerSource(built, built=True)
    return LayerSource(SOURCE_LAYER_DIR, built=False)


def _origins(raw: Any, stage: Stage) -> tuple[str, ...]:
    if raw is None or raw == "":
        if stage == "prod":
            raise ConfigError("prod needs the frontend's origin: -c allowedOrigins=https://app.example.com")
        return DEV_ORIGINS
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    origins = tuple(str(item).strip().rstrip("/") for item in items if str(item).strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("https://", "http://")):
            raise ConfigError(
                f"allowedOrigins entry {origin!r} must be a scheme and host, e.g. https://app.example.com"
            )
    if "*" in origins and stage == "prod":
        raise ConfigError("allowedOrigins='*' is refused in prod; list the frontend's origins")
    return origins


def stage_config(context: Mapping[str, Any]) -> StageConfig:
    """Build the configuration from CDK context values (missing keys take the stage's defaults)."""
    stage = str(context.get("stage") or "dev")
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
    auth_mode = str(context.get("authMode") or "cognito")
    if auth_mode not in AUTH_MODES:
        raise ConfigError(f"authMode must be one of {', '.join(AUTH_MODES)}; got {auth_mode!r}")
    prod = stage == "prod"
    return StageConfig(
        stage=stage,  # checked against STAGES above
        auth_mode=auth_mode,  # checked against AUTH_MODES above
        allowed_origins=_origins(context.get("allowedOrigins"), stage),
        user_pool_id=context.get("userPoolId") or None,
        alarm_email=context.get("alarmEmail") or None,
        layer=resolve_layer(context.get("layerDir")),
        removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
        auto_delete_objects=not prod,
        deletion_protection=prod,
        log_retention=logs.RetentionDays.THREE_MONTHS if prod else logs.RetentionDays.ONE_WEEK,
        access_log_expiry_days=90 if prod else 7,
        log_level="INFO",
        throttle_rate=50 if prod else 10,
        throttle_burst=100 if prod else 20,
        submit_throttle_rate=10 if prod else 2,
        submit_throttle_burst=20 if prod else 5,
        monthly_quota=500_000 if prod else 50_000,
        # prod: reserve what both event sources may use (the jobs queue's and the optimization chunks
        # queue's), so API traffic can never starve the runner and chunks never take the jobs' share.
        runner_reserved_concurrency=JOBS_QUEUE.max_concurrency + OPTIMIZATION_QUEUE.max_concurrency if prod else None,
    )
