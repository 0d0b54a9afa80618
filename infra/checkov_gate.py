"""Run checkov over synthesized templates and hold its findings against `infra/checkov_acknowledgements.py`.

    python -m infra.checkov_gate -c stage=prod -c allowedOrigins=https://app.example.com   # (make checkov)

synthesizes the app for that context, runs checkov (from `.venv-checkov`, `make checkov-install`; its
dependency tree stays out of the main venv), prints the counts and every finding with its verdict, and
exits 1 if one is not accepted. tests/infra/test_checkov.py does the same over every variant the infra
tests synthesize and also fails on acknowledgements nothing needs any more.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.checkov_acknowledgements import ACCEPTED, Accepted
from infra.config import REPO_ROOT, StageConfig

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_VERSION = "3.3.30"


@dataclass(frozen=True)
class Finding:
    check: str
    name: str
    resource: str  # "AWS::Lambda::Function.FunctionsSubmit0CDE9E2E", as checkov names it

    def __str__(self) -> str:
        return f"{self.check} {self.resource}: {self.name}"


@dataclass
class Scan:
    """One template's checkov result."""

    passed: int
    failed: list[Finding]


@dataclass
class Review:
    scans: dict[str, Scan]
    accepted: dict[str, list[tuple[Finding, Accepted]]] = field(default_factory=dict)
    unaccepted: dict[str, list[Finding]] = field(default_factory=dict)
    used: set[Accepted] = field(default_factory=set)

    @property
    def stale(self) -> list[Accepted]:
        """Acknowledgements no scanned template needed."""
        return [entry for entry in ACCEPTED if entry not in self.used]

    @property
    def ok(self) -> bool:
        return not any(self.unaccepted.values())


def covers(entry: Accepted, finding: Finding) -> bool:
    return finding.check == entry.check and any(
        finding.resource == pattern or finding.resource.startswith(pattern if "." in pattern else f"{pattern}.")
        for pattern in entry.resources
    )


def acknowledgement(finding: Finding, config: StageConfig) -> Accepted | None:
    """The entry that accepts `finding` in a template synthesized with `config` (None: not accepted)."""
    for entry in ACCEPTED:
        if covers(entry, finding) and not (entry.unless and getattr(config, entry.unless)):
            return entry
    return None


def run_checkov(template: Path, checkov: Path = CHECKOV) -> Scan:
    """checkov's CloudFormation checks on one template (nothing skipped: the review decides)."""
    if not checkov.is_file():
        raise FileNotFoundError(f"{checkov} is missing: run `make checkov-install`")
    done = subprocess.run(
        [str(checkov), "-f", str(template), "--framework", "cloudformation", "-o", "json", "--quiet", "--compact"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov failed ({done.returncode}): {done.stderr[-2000:]}")
    report: Any = json.loads(done.stdout)
    if isinstance(report, list):  # one entry per framework
        (report,) = [r for r in report if r.get("check_type") == "cloudformation"]
    summary = report["summary"]
    if summary.get("checkov_version") != CHECKOV_VERSION:
        raise RuntimeError(f"checkov {summary.get('checkov_version')} ran, the gate expects {CHECKOV_VERSION}")
    if summary.get("parsing_errors"):
        raise RuntimeError(f"checkov could not parse {template}")
    failed = [
        Finding(check=f["check_id"], name=f["check_name"], resource=f["resource"])
        for f in report.get("results", {}).get("failed_checks", [])
    ]
    return Scan(passed=int(summary["passed"]), failed=failed)


def review(templates: Mapping[str, tuple[Path, StageConfig]], checkov: Path = CHECKOV) -> Review:
    """Scan each template (name → file, the configuration it was synthesized with) and judge its findings."""
    result = Review(scans={})
    for name, (template, config) in templates.items():
        scan = run_checkov(template, checkov)
        result.scans[name] = scan
        result.accepted[name], result.unaccepted[name] = [], []
        for finding in scan.failed:
            entry = acknowledgement(finding, config)
            if entry is None:
                result.unaccepted[name].append(finding)
            else:
                result.accepted[name].append((finding, entry))
                result.used.add(entry)
    return result


def report_lines(result: Review) -> Iterable[str]:
    for name, scan in result.scans.items():
        accepted, unaccepted = result.accepted[name], result.unaccepted[name]
        yield (
            f"{name}: checkov {CHECKOV_VERSION}: {scan.passed} passed, {len(scan.failed)} failed "
            f"({len(accepted)} accepted, {len(unaccepted)} not)"
        )
        for finding in unaccepted:
            yield f"  NOT ACCEPTED  {finding}"
        for finding, _ in accepted:
            yield f"  accepted      {finding}"


def main(argv: Sequence[str] | None = None) -> int:
    from infra.app import _parse_context, build_app

    parser = argparse.ArgumentParser(description="checkov over the synthesized stack, against its acknowledgements")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--checkov", type=Path, default=CHECKOV)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="checkov-synth-") as outdir:
        app, stack = build_app(_parse_context(args.context), outdir)
        assembly = app.synth()
        template = Path(assembly.directory) / stack.template_file
        result = review({stack.stack_name: (template, stack.config)}, args.checkov)
    for line in report_lines(result):
        print(line)
    if not result.ok:
        print(
            "checkov: findings above are not accepted; fix them or add them, with a reason, to "
            "infra/checkov_acknowledgements.py",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
