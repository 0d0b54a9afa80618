"""A headless Chromium for the report tests: the system's (Debian's `chromium`), driven by Playwright.

Skipped, with the reason in `-ra`, where there is no browser or no Playwright. Every page is served by a
route from memory at a URL no network can answer (`http://report.invalid/`): any other request the page
makes is recorded and refused, so a report that fetched anything fails its test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tools.headless import CHROMIUM, LAUNCH_ARGS, PAGE_URL

REPORT_URL = PAGE_URL


@dataclass
class LoadedPage:
    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def chart_stats(self) -> dict[str, dict[str, Any]]:
        """Per chart: its data's length and how many pixels of the plot area carry one of its series'
        colours (a chart with no drawn series has none)."""
        result: dict[str, dict[str, Any]] = self.page.evaluate(CHART_STATS_JS)
        return result


# For each uPlot chart: points, finite values, and the pixels inside the plot area whose colour is one of
# its series' colours (within a small tolerance, for anti-aliasing).
CHART_STATS_JS = """
() => {
  const out = {};
  const parse = (c) => {
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1);
    return Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
  };
  for (const [id, u] of Object.entries(window.backtestReport.charts)) {
    const colors = (window.backtestReport.colors[id] || []).map(parse);
    const b = u.bbox;
    const img = u.ctx.getImageData(b.left, b.top, Math.max(1, b.width), Math.max(1, b.height)).data;
    let painted = 0;
    for (let i = 0; i < img.length; i += 4) {
      if (img[i + 3] < 128) continue;
      const near = (c) => [0, 1, 2].every((k) => Math.abs(img[i + k] - c[k]) < 40);
      if (colors.some(near)) painted++;
    }
    const finite = u.data.slice(1).reduce((n, s) => n + s.filter((v) => v != null && isFinite(v)).length, 0);
    out[id] = { points: u.data[0].length, finite, painted, width: u.width, height: u.height };
  }
  return out;
}
"""


def _counts(kind: str, text: str) -> bool:
    """A console message that fails a test: any error, any warning but the one our own pixel reads cause
    (`chart_stats` reads the charts' canvases back, which Chromium suggests doing otherwise)."""
    if kind == "error":
        return True
    return kind == "warning" and not text.startswith("Canvas2D: Multiple readback operations")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: the report's browser tests need one "
            "(apt-get install chromium; .ci/run installs it), so they did not run"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright is not installed (make install): the report's browser tests did not run",
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_report(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def load(html: str, *, width: int = 1280, height: int = 900) -> LoadedPage:
        context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
        contexts.append(context)
        page = context.new_page()
        loaded = LoadedPage(page)
        page.on("console", lambda m: loaded.console_errors.append(m.text) if _counts(m.type, m.text) else None)
        page.on("pageerror", lambda e: loaded.page_errors.append(str(e)))

        def dialog(d: Any) -> None:
            loaded.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

        def route(r: Any) -> None:
            if r.request.url == REPORT_URL:
                r.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
            else:
                loaded.requests.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page.on("request", lambda req: loaded.requests.append(req.url) if req.url != REPORT_URL else None)
        page.goto(REPORT_URL, wait_until="load")
        page.wait_for_function("window.backtestReport !== undefined", timeout=10_000)
        return loaded

    yield load
    for c in contexts:
        c.close()
