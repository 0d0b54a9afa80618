"""The CDK app: `python infra/app.py` (or `npx cdk synth`, which runs it) synthesizes the stack.

Context (`-c key=value`, see infra/config.py): stage=dev|prod, authMode=cognito|iam, userPoolId,
allowedOrigins, alarmEmail, layerDir, and the security options waf, wafRateLimit, mfa, threatProtection,
kms. Output directory: `--outdir`, else CDK_OUTDIR (set by the CDK CLI), else ./cdk.out. The feature
flags in cdk.json apply here too, so running this file directly gives the template `cdk synth` gives.
`infra` and the layer's packages come from the editable install (`pip install -e .`), so the file runs
from anywhere without touching `sys.path`; its folder holds no module that shadows a library (the
constructs live in `infra/parts/`, not `infra/constructs/`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import App, Environment

from infra.config import REPO_ROOT, StageConfig, stage_config
from infra.nag import add_checks
from infra.stack import BacktestServiceStack

CDK_JSON = REPO_ROOT / "cdk.json"
CONTEXT_KEYS = (
    "stage",
    "authMode",
    "userPoolId",
    "allowedOrigins",
    "alarmEmail",
    "layerDir",
    "datasetsLayerDir",
    "waf",
    "wafRateLimit",
    "mfa",
    "threatProtection",
    "kms",
)


def project_context() -> dict[str, Any]:
    """The `context` of cdk.json (feature flags): the CLI passes it, a direct run reads it here."""
    if not CDK_JSON.is_file():
        return {}
    context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return dict(context)


def new_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """An App with cdk.json's flags, `context` on top (the CLI's context, from CDK_CONTEXT_JSON, wins)."""
    return App(context={**project_context(), **(context or {})}, outdir=outdir)


def add_service_stack(app: App, config: StageConfig, *, stack_name: str | None = None) -> BacktestServiceStack:
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    name = stack_name or config.stack_name
    return BacktestServiceStack(app, name, config=config, env=env)


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, BacktestServiceStack]:
    """The app as `cdk synth` builds it: one stack for the context's stage, checked by cdk-nag."""
    app = new_app(context, outdir)
    config = stage_config({key: app.node.try_get_context(key) for key in CONTEXT_KEYS})
    stack = add_service_stack(app, config)
    add_checks(app)
    return app, stack


def _parse_context(pairs: Sequence[str]) -> dict[str, str]:
    context = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"-c expects key=value, got {pair!r}")
        context[key] = value
    return context


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesize the backtest service stack.")
    parser.add_argument("--outdir", help="cloud assembly directory (default: $CDK_OUTDIR or ./cdk.out)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    outdir = args.outdir or os.environ.get("CDK_OUTDIR") or str(REPO_ROOT / "cdk.out")
    app, stack = build_app(_parse_context(args.context), outdir)
    if not stack.config.layer.built:
        print(
            f"WARNING: layer asset is the unbuilt source tree {stack.config.layer.directory}; "
            "run `make layer` before deploying.",
            file=sys.stderr,
        )
    assembly = app.synth()
    config = stack.config
    security = f"waf {'on' if config.waf else 'off'}, kms {'on' if config.kms else 'off'}"
    if config.auth_mode == "cognito" and not config.user_pool_id:
        security += f", mfa {config.mfa}, threat protection {config.threat_protection}"
    print(
        f"synthesized {stack.stack_name} ({config.stage}, {config.auth_mode} auth; {security}) in {assembly.directory}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
