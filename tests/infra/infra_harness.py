"""The infra tests' shared synthesis: five variants of the stack in one CDK app, built once.

jsii starts a Node process and synthesis takes seconds, so every infra test shares this one cloud
assembly. The app is built exactly as `infra/app.py` builds it (cdk.json's feature flags, cdk-nag's
AwsSolutions pack registered), with the layer taken from its source tree so the test never depends on
`make layer`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def _silence_node_warnings() -> None:
    """jsii's end-of-life banner is silenced only by listing the Node major version (not by "1")."""
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    try:
        major = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return
    key = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
    versions = [v for v in os.environ.get(key, "").split(",") if v]
    os.environ[key] = ",".join([*versions, major.strip().lstrip("v").split(".")[0]])


_silence_node_warnings()

from aws_cdk import cx_api  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.app import add_service_stack, new_app  # noqa: E402
from infra.config import stage_config  # noqa: E402
from infra.nag import add_checks  # noqa: E402
from infra.stack import BacktestServiceStack  # noqa: E402

PROD_ORIGINS = "https://app.example.com,https://admin.example.com"
IMPORTED_POOL_ID = "eu-west-1_TestPool1"
# Stack id → context, as `-c key=value` would give it.
VARIANTS: dict[str, dict[str, str]] = {
    "Dev": {"layerDir": "layers/engine", "datasetsLayerDir": "layers/datasets"},
    "Prod": {
        "stage": "prod",
        "allowedOrigins": PROD_ORIGINS,
        "alarmEmail": "ops@example.com",
        "layerDir": "layers/engine",
        "datasetsLayerDir": "layers/datasets",
    },
    "Iam": {"authMode": "iam", "layerDir": "layers/engine", "datasetsLayerDir": "layers/datasets"},
    "ImportedPool": {
        "userPoolId": IMPORTED_POOL_ID,
        "layerDir": "layers/engine",
        "datasetsLayerDir": "layers/datasets",
    },
    # prod with every security option on: the customer-managed key, MFA required, threat protection enforced.
    "Hardened": {
        "stage": "prod",
        "allowedOrigins": "https://app.example.com",
        "kms": "true",
        "mfa": "required",
        "threatProtection": "enforced",
        "layerDir": "layers/engine",
        "datasetsLayerDir": "layers/datasets",
    },
}


@dataclass
class Synthesized:
    stacks: dict[str, BacktestServiceStack]
    templates: dict[str, Template]
    assembly: cx_api.CloudAssembly
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def template_path(self, variant: str) -> Path:
        """The variant's template file in the cloud assembly (what checkov reads)."""
        return self.outdir / self.stacks[variant].template_file

    def json(self, variant: str) -> dict[str, Any]:
        """The template as plain JSON (read across jsii once per variant)."""
        if variant not in self.documents:
            self.documents[variant] = dict(self.templates[variant].to_json())
        return self.documents[variant]

    def messages(self, variant: str, kind: str) -> list[str]:
        """The `kind` messages (e.g. ``aws:cdk:warning``) synthesis recorded for the stack, read from the cloud
        assembly's manifest.json. Not through jsii's `CloudFormationStackArtifact.messages`: aws-cdk-lib and
        the aws-cdk.cloud-assembly-schema distribution both install `aws_cdk/cloud_assembly_schema`, and
        with the latter's file (which of the two wins depends on install order) jsii cannot type the
        entries ("Unknown interface: aws-cdk-lib.cloud_assembly_schema.MetadataEntry")."""
        manifest = json.loads((self.outdir / "manifest.json").read_text())
        artifact = manifest["artifacts"][self.stacks[variant].artifact_id]
        metadata = dict(artifact.get("metadata", {}))
        if "additionalMetadataFile" in artifact:  # newer CDK writes the metadata beside the manifest
            metadata.update(json.loads((self.outdir / artifact["additionalMetadataFile"]).read_text()))
        entries = [entry for path_entries in metadata.values() for entry in path_entries]
        return [str(entry.get("data")) for entry in entries if entry.get("type") == kind]

    @property
    def outdir(self) -> Path:
        return Path(self.assembly.directory)


def synthesize(outdir: Path) -> Synthesized:
    app = new_app(outdir=str(outdir))
    stacks = {
        name: add_service_stack(app, stage_config(context), stack_name=name) for name, context in VARIANTS.items()
    }
    add_checks(app)
    # One synthesis; cdk-nag runs here and raises on any finding that is not acknowledged.
    assembly = app.synth()
    templates = {name: Template.from_stack(stack) for name, stack in stacks.items()}
    return Synthesized(stacks=stacks, templates=templates, assembly=assembly)
