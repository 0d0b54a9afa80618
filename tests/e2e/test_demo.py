"""`make demo`'s command end to end, in a fresh process: it must finish and print where its report is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_runs_one_job_end_to_end_and_writes_its_report() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from local.cli import main; sys.exit(main(['demo']))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "SUCCEEDED" in out.stdout and "report:" in out.stdout
