"""`backtest run --report`, `backtest report` and `backtest compare` (files, and a running API on loopback)."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from local.cli import main
from tests.report_samples import report_data

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN = ["--symbol", "AAPL", "--timeframe", "1h", "--start", "2024-01-01", "--end", "2024-03-31", "--no-progress"]


@pytest.fixture(scope="module")
def stored_runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two stored results (what `backtest run --json` prints) and the report the first run wrote."""
    folder = tmp_path_factory.mktemp("runs")
    paths = []
    for k, example in enumerate(("sma_crossover_vectorized.py", "rsi_mean_reversion.py")):
        out = folder / f"{k}.json"
        report = folder / "first.html"
        args = ["run", str(EXAMPLES / example), *RUN, "--json"] + (["--report", str(report)] if k == 0 else [])
        with open(out, "wb") as sink, pytest.MonkeyPatch.context() as mp:
            mp.setattr("sys.stdout", _Binary(sink))
            assert main(args) == 0
        paths.append(out)
    return paths[0], paths[1], folder / "first.html"


class _Binary:
    """A stdout whose `buffer` writes to a binary file (what `backtest run --json` writes to)."""

    def __init__(self, sink: Any) -> None:
        self.buffer = sink

    def write(self, text: str) -> int:
        return int(self.buffer.write(text.encode()))

    def flush(self) -> None:
        self.buffer.flush()


def test_run_writes_the_report_beside_its_json(stored_runs):
    first, _, report = stored_runs
    page = report.read_text(encoding="utf-8")
    result = json.loads(first.read_bytes())
    assert 'id="chart-equity"' in page and 'id="chart-price"' in page
    assert report_data(page)["equity"]["bars"] == result["market_data_stats"]["data_points"]
    assert result["data_fingerprint"] in page


def test_report_rebuilds_a_stored_result_s_report_and_checks_the_bars(stored_runs, tmp_path, capsys):
    first, _, report = stored_runs
    out = tmp_path / "again.html"
    assert main(["report", str(first), "--out", str(out)]) == 0
    assert report_data(out.read_text(encoding="utf-8")) == report_data(report.read_text(encoding="utf-8"))
    # a result whose bars cannot be had again is refused, saying why
    tampered = json.loads(first.read_bytes())
    tampered["data_fingerprint"] = "blake2b:0"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    assert main(["report", str(bad)]) == 2
    assert "the bars differ" in capsys.readouterr().err


def test_compare_stored_result_files(stored_runs, tmp_path, capsys):
    first, second, _ = stored_runs
    out = tmp_path / "cmp.html"
    assert main(["compare", str(first), str(second), "--out", str(out), "--label", "A", "--label", "B"]) == 0
    assert str(out) in capsys.readouterr().out
    runs = report_data(out.read_text(encoding="utf-8"))["runs"]
    assert [r["label"].split(" · ")[0] for r in runs] == ["A", "B"]
    assert main(["compare", str(first), str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


class _FakeApi(http.server.BaseHTTPRequestHandler):
    """GET /api/backtest/status/{id} for the caller alice (404 for anyone else), and the result at the
    presigned link, gzip-encoded as S3 stores it."""

    results: ClassVar[dict[str, bytes]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("X-Local-User")))
        base = f"http://{self.headers['Host']}"
        if self.path.startswith("/api/backtest/status/"):
            job_id = self.path.rsplit("/", 1)[1]
            if self.headers.get("X-Local-User") != "alice" or (job_id not in self.results and job_id != "queued"):
                return self._send(404, b'{"success": false}', "application/json")
            status = {"status": "QUEUED"} if job_id == "queued" else {"status": "SUCCEEDED"}
            if job_id != "queued":
                status["results_url"] = f"{base}/results/{job_id}.json?X-Amz-Signature=abc"
            return self._send(200, json.dumps(status).encode(), "application/json")
        if self.path.startswith("/results/"):
            job_id = self.path.split("/")[2].split(".")[0]
            return self._send(200, gzip.compress(self.results[job_id]), "application/json", gzip_encoded=True)
        return self._send(404, b"{}", "application/json")

    def _send(self, code: int, body: bytes, kind: str, *, gzip_encoded: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        if gzip_encoded:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api(stored_runs) -> Iterator[str]:
    first, second, _ = stored_runs
    _FakeApi.results = {"job-a": first.read_bytes(), "job-b": second.read_bytes()}
    _FakeApi.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_compare_runs_of_a_running_api_by_execution_id(fake_api, tmp_path, capsys):
    out = tmp_path / "api.html"
    assert main(["compare", "job-a", "job-b", "--api-url", fake_api, "--user", "alice", "--out", str(out)]) == 0
    runs = report_data(out.read_text(encoding="utf-8"))["runs"]
    assert len(runs) == 2 and all(len(r["growth"]) > 10 for r in runs)
    # the caller's header goes to the API, never to the presigned link
    assert ("/api/backtest/status/job-a", "alice") in _FakeApi.seen
    assert all(user is None for path, user in _FakeApi.seen if path.startswith("/results/"))
    # another caller's (or an unknown) job, and a job without a result, are errors that say so
    assert main(["compare", "job-a", "--api-url", fake_api, "--user", "bob"]) == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert main(["compare", "queued", "--api-url", fake_api, "--user", "alice"]) == 2
    assert "is QUEUED" in capsys.readouterr().err
