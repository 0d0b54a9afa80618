"""Stage configuration: what differs between dev and prod, and what the CDK context can set.

Context keys (`cdk synth -c key=value` or `python infra/app.py` with CDK_CONTEXT_JSON):
  stage            dev (default) | prod
  authMode         cognito (default) | iam — how API callers authenticate (see docs/DEPLOY.md)
  userPoolId       an existing Cognito user pool to authorize against instead of creating one
  allowedOrigins   comma-separated CORS origins (dev defaults to local frontends; prod requires it)
  alarmEmail       an address subscribed to the alarm topic
  layerDir         layer asset directory (default: build/layer when built, else layers/engine)
  datasetsLayerDir the datasets layer's (default: build/layer-datasets when built, else layers/datasets)
  waf              true | false — a WAF web ACL on the API stage (default: true in prod, false in dev)
  wafRateLimit     requests a client IP may send in 5 minutes before WAF blocks it (default: prod 2000, dev 500)
  mfa              off | optional (default) | required — Cognito MFA (TOTP)
  threatProtection off (default) | audit | enforced — Cognito threat protection (needs the Plus plan)
  kms              true | false (default) — customer-managed KMS key for the queues, tables, alarm topic
                   and log groups instead of AWS-managed keys
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from backtest_service.topology import JOBS_QUEUE, MAX_ACTIVE_JOBS_PER_CALLER, OPTIMIZATION_QUEUE, SERVICE_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILT_LAYER_DIR = REPO_ROOT / "build" / "layer"
SOURCE_LAYER_DIR = REPO_ROOT / "layers" / "engine"
# The datasets layer (pyarrow, for validate_dataset only): built by `make layer` too.
BUILT_DATASETS_LAYER_DIR = REPO_ROOT / "build" / "layer-datasets"
SOURCE_DATASETS_LAYER_DIR = REPO_ROOT / "layers" / "datasets"
FUNCTIONS_DIR = REPO_ROOT / "functions"

Stage = Literal["dev", "prod"]
AuthMode = Literal["cognito", "iam"]
MfaMode = Literal["off", "optional", "required"]
ThreatProtection = Literal["off", "audit", "enforced"]
STAGES: tuple[Stage, ...] = ("dev", "prod")
AUTH_MODES: tuple[AuthMode, ...] = ("cognito", "iam")
MFA_MODES: tuple[MfaMode, ...] = ("off", "optional", "required")
THREAT_PROTECTION_MODES: tuple[ThreatProtection, ...] = ("off", "audit", "enforced")
# AWS WAF's rate-based rules count over a 5-minute window per client IP; 100 is the smallest limit it takes.
MIN_WAF_RATE_LIMIT = 100
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
    # Fairness: jobs one caller may have QUEUED or RUNNING at once (submit answers 429 beyond it).
    max_active_jobs: int
    # The runner's reserved concurrency; None relies on the event source's maximum concurrency alone
    # (new accounts with a concurrency limit of 10 cannot reserve any).
    runner_reserved_concurrency: int | None
    # Security options (docs/DEPLOY.md, "Security options"): the edge, the sign-in, the keys.
    waf: bool
    waf_rate_limit: int  # requests per client IP per 5 minutes
    mfa: MfaMode
    threat_protection: ThreatProtection
    kms: bool  # a customer-managed key instead of the AWS-managed ones where a resource can use it
    # pyarrow, for validate_dataset (on top of `layer`).
    datasets_layer: LayerSource = LayerSource(SOURCE_DATASETS_LAYER_DIR, built=False)

    @property
    def stack_name(self) -> str:
        # An IAM-mode deployment can sit next to the Cognito one in the same account.
        return f"BacktestService-{self.stage}" + ("-iam" if self.auth_mode == "iam" else "")

    @property
    def resource_prefix(self) -> str:
        """Names of the API, user pool, dashboard: unique per stage and auth mode (metrics key on them)."""
        return f"{SERVICE_NAME}-{self.stage}" + ("-iam" if self.auth_mode == "iam" else "")


def resolve_layer(
    override: str | None = None, built: Path = BUILT_LAYER_DIR, source: Path = SOURCE_LAYER_DIR
) -> LayerSource:
    """build/layer when `make layer` has run, else the source tree (synth and tests still work)."""
    if override:
        directory = Path(override)
        directory = directory if directory.is_absolute() else REPO_ROOT / directory
        if not (directory / "python").is_dir():
            raise ConfigError(f"layerDir {directory} has no python/ folder; a Lambda layer needs one")
        return LayerSource(directory, built=directory.resolve() != source.resolve())
    if (built / "python").is_dir():
        return LayerSource(built, built=True)
    return LayerSource(source, built=False)


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


def _positive_int(raw: Any, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number; got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1; got {value}")
    return value


def _flag(context: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean context value: `-c key=true` arrives as the string "true", cdk.json may hold a real bool."""
    raw = context.get(key)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false; got {raw!r}")


def _choice(context: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = str(context.get(key) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {context.get(key)!r}")
    return value


def _rate_limit(raw: Any, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        limit = int(str(raw))
    except ValueError:
        raise ConfigError(f"wafRateLimit must be a whole number of requests per 5 minutes; got {raw!r}") from None
    if limit < MIN_WAF_RATE_LIMIT:
        raise ConfigError(f"wafRateLimit must be at least {MIN_WAF_RATE_LIMIT} (AWS WAF's minimum); got {limit}")
    return limit


def stage_config(context: Mapping[str, Any]) -> StageConfig:
    """Build the configuration from CDK context values (missing keys take the stage's defaults)."""
    stage = str(context.get("stage") or "dev")
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
    auth_mode = str(context.get("authMode") or "cognito")
    if auth_mode not in AUTH_MODES:
        raise ConfigError(f"authMode must be one of {', '.join(AUTH_MODES)}; got {auth_mode!r}")
    prod = stage == "prod"
    mfa: Any = _choice(context, "mfa", MFA_MODES, "optional")
    threat_protection: Any = _choice(context, "threatProtection", THREAT_PROTECTION_MODES, "off")
    return StageConfig(
        stage=stage,  # checked against STAGES above
        auth_mode=auth_mode,  # checked against AUTH_MODES above
        allowed_origins=_origins(context.get("allowedOrigins"), stage),
        user_pool_id=context.get("userPoolId") or None,
        alarm_email=context.get("alarmEmail") or None,
        layer=resolve_layer(context.get("layerDir")),
        datasets_layer=resolve_layer(
            context.get("datasetsLayerDir"), built=BUILT_DATASETS_LAYER_DIR, source=SOURCE_DATASETS_LAYER_DIR
        ),
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
        max_active_jobs=_positive_int(
            context.get("maxActiveJobs"),
            "maxActiveJobs",
            2 * MAX_ACTIVE_JOBS_PER_CALLER if prod else MAX_ACTIVE_JOBS_PER_CALLER,
        ),
        # prod: reserve what both event sources may use (the jobs queue's and the optimization chunks
        # queue's), so API traffic can never starve the runner and chunks never take the jobs' share.
        runner_reserved_concurrency=JOBS_QUEUE.max_concurrency + OPTIMIZATION_QUEUE.max_concurrency if prod else None,
        waf=_flag(context, "waf", default=prod),
        # A person clicking through the frontend sends a few requests a second at most; 2,000 in 5 minutes
        # (≈ 7/s sustained) from one address is a script, and it still gets API Gateway's own throttling first.
        waf_rate_limit=_rate_limit(context.get("wafRateLimit"), 2000 if prod else 500),
        mfa=mfa,  # checked against MFA_MODES
        threat_protection=threat_protection,  # checked against THREAT_PROTECTION_MODES
        kms=_flag(context, "kms", default=False),
    )
