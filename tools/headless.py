"""The system's Chromium, headless, driven by Playwright: for the report's browser tests and screenshot.

Playwright's own browser downloads are never used (they cannot be fetched here, and CI installs Debian's
`chromium` instead: see .ci/run). `CHROMIUM_PATH` overrides where the browser is looked for.
"""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# No sandbox (CI runs as root, where Chromium's own sandbox refuses to start), no GPU, and nothing that
# would reach the network on its own (component updates, background requests, first-run pages).
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--mute-audio",
]
# Pages are served from memory by a route at this URL, which no network could answer.
PAGE_URL = "http://report.invalid/report.html"
