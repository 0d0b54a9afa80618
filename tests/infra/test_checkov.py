"""checkov 3.3.30 over every template the infra tests synthesize: each finding is accepted, with its reason,
in infra/checkov_acknowledgements.py, or this fails (and so does an acknowledgement no template needs).

checkov lives in its own venv (`make checkov-install`, part of `make test`). Without it the review is
skipped, unless REQUIRE_CHECKOV=1 (set by `make test`), so a missing install can never pass in CI.
"""

from __future__ import annotations

import os

import pytest

from infra.checkov_acknowledgements import ACCEPTED, Accepted
from infra.checkov_gate import CHECKOV, Finding, Review, acknowledgement, report_lines, review
from infra.config import stage_config
from tests.infra.infra_harness import VARIANTS, Synthesized

pytestmark = pytest.mark.xdist_group("infra")


@pytest.fixture(scope="module")
def checkov_review(synthesized: Synthesized) -> Review:
    if not CHECKOV.is_file():
        if os.environ.get("REQUIRE_CHECKOV") == "1":
            pytest.fail(f"{CHECKOV} is missing: `make checkov-install`")
        pytest.skip(f"{CHECKOV} is missing: `make checkov-install` (make test installs it)")
    templates = {name: (synthesized.template_path(name), synthesized.stacks[name].config) for name in VARIANTS}
    return review(templates)


def test_every_checkov_finding_is_accepted_with_its_reason(checkov_review: Review) -> None:
    lines = "\n".join(report_lines(checkov_review))
    print(lines)  # the counts, for the log (pytest -s, or a failure)
    assert checkov_review.ok, lines
    assert all(scan.passed > 100 for scan in checkov_review.scans.values()), lines


def test_no_acknowledgement_is_left_without_a_finding(checkov_review: Review) -> None:
    assert [entry.check for entry in checkov_review.stale] == []


def test_the_options_fix_what_they_promise(checkov_review: Review) -> None:
    # With kms=true, every "unless kms" finding is gone (not merely accepted): the key reaches them all.
    hardened = {finding.check for finding in checkov_review.scans["Hardened"].failed}
    assert hardened.isdisjoint({entry.check for entry in ACCEPTED if entry.unless == "kms"})
    prod = {finding.check for finding in checkov_review.scans["Prod"].failed}
    assert {"CKV_AWS_26", "CKV_AWS_27", "CKV_AWS_119", "CKV_AWS_158"} <= prod


def test_acknowledgements_have_reasons_and_precise_resources() -> None:
    checks = [entry.check for entry in ACCEPTED]
    assert len(checks) == len(set(checks)), "one entry per check"
    for entry in ACCEPTED:
        assert len(entry.reason) >= 100, entry.check
        assert all(pattern.startswith("AWS::") for pattern in entry.resources), entry.check
        assert entry.unless in (None, "kms"), entry.check


def test_the_review_refuses_what_is_not_listed() -> None:
    # Given a finding no entry covers, or one whose fix is on, Then it is not accepted.
    dev, hardened = (
        stage_config({}),
        stage_config({"stage": "prod", "allowedOrigins": "https://a.example.com", "kms": "true"}),
    )
    unknown = Finding("CKV_AWS_999", "something new", "AWS::Lambda::Function.FunctionsSubmit0CDE9E2E")
    assert acknowledgement(unknown, dev) is None
    sns = Finding("CKV_AWS_26", "topic not encrypted", "AWS::SNS::Topic.MonitoringAlarmTopicAF62D4F1")
    entry = acknowledgement(sns, dev)
    assert isinstance(entry, Accepted) and entry.unless == "kms"
    assert acknowledgement(sns, hardened) is None
    # A resource of the right type under another construct is reviewed afresh.
    other = Finding("CKV_AWS_18", "no access logging", "AWS::S3::Bucket.StorageResultsBucketF87BB70E")
    assert acknowledgement(other, dev) is None
