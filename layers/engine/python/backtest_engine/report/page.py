"""The HTML page around a report's charts: one file, complete by itself, that fetches nothing.

Everything reaches the page in one of three ways, each escaped for its place:

- text in markup (names, log lines, strategy code, parameters) through `esc` (html.escape, quotes too);
- the charts' numbers and labels as JSON inside ``<script type="application/json">`` (`json_block`), with
  ``<``, ``>`` and ``&`` written as JSON ``\\u`` escapes, so no string can close the script element;
- the code (uPlot, the report's own script) and the styles inlined from `assets/`.

A Content-Security-Policy in the page allows only those inline scripts, by their hashes, and no source
for anything else (no fetch, image, font or frame from anywhere): even text that slipped through could
neither run a script nor load a thing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import numpy as np
import orjson

UPLOT_VERSION = "1.6.32"  # npm uplot@1.6.32, dist/uPlot.iife.min.js and dist/uPlot.min.css (MIT, assets/uPlot.LICENSE)
# The vendored files' SHA-256 (npm pack uplot@1.6.32): the tests check the copies against them.
VENDORED_SHA256 = {
    "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
}
_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_JSON_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"))


def asset(name: str) -> str:
    """A file of `assets/` as text (read once per process)."""
    return _asset(name)


@functools.cache
def _asset(name: str) -> str:
    return resources.files("backtest_engine.report").joinpath("assets", name).read_text(encoding="utf-8")


@functools.cache
def _scripts() -> tuple[str, str]:
    """(the inline <script> elements, the CSP header value that allows exactly them)."""
    scripts = [asset("uPlot.iife.min.js"), asset("report.js")]
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)
    csp = (
        "default-src 'none'; "
        f"script-src {hashes}; "
        "style-src 'unsafe-inline'; "  # uPlot sizes its elements with inline styles; styles cannot run code
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    tags = "".join(f"<script>{s}</script>" for s in scripts)
    return tags, csp


def esc(value: Any) -> str:
    """Text for HTML markup or an attribute value."""
    return html.escape(str(value), quote=True)


def json_block(element_id: str, data: Any) -> str:
    """`data` as JSON in a non-executed script element that no string inside it can close."""
    raw = orjson.dumps(data, option=_JSON)
    for needle, escaped in _JSON_ESCAPES:
        raw = raw.replace(needle, escaped)
    return f'<script type="application/json" id="{esc(element_id)}">{raw.decode()}</script>'


def document(title: str, body: str, data: Mapping[str, Any]) -> str:
    """The whole page: head (CSP, styles), `body`, the data, then the scripts that draw the charts."""
    tags, csp = _scripts()
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(title)}</title>"
        f"<style>{asset('uPlot.min.css')}</style><style>{asset('report.css')}</style>"
        f"</head><body><main>{body}</main>"
        f"{json_block('report-data', data)}{tags}</body></html>\n"
    )


# ---- numbers as people read them ---------------------------------------------------------------------


def fmt_number(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if v != 0 and abs(v) < 10 ** (-digits):
        return f"{v:.3g}"
    return f"{v:,.{digits}f}"


def fmt_metric(value: Any, unit: str) -> str:
    """A metric's value in its unit (see `metric_definitions.Unit`)."""
    if value is None:
        return "–"
    if unit == "percent":
        return fmt_number(value) + "%"
    if unit == "days":
        return fmt_number(value) + " d"
    if unit in ("count", "bars") and float(value).is_integer():
        return fmt_number(int(value))
    if unit in ("ratio", "fraction"):
        return fmt_number(value, 3)
    return fmt_number(value)


def sign_class(value: Any) -> str:
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    return "gain" if value > 0 else "loss" if value < 0 else ""


def table(
    head: Iterable[str], rows: Iterable[Iterable[str]], *, cls: str = "", text_columns: Iterable[int] = ()
) -> str:
    """A table of already escaped cells; columns in `text_columns` are left-aligned."""
    left = set(text_columns)
    th = "".join(f'<th class="text">{h}</th>' if i in left else f"<th>{h}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="text">{c}</td>' if i in left else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def iso(seconds: int | float | None) -> str:
    """Seconds since the epoch as 'YYYY-MM-DD HH:MM' UTC."""
    if seconds is None:
        return "–"
    return str(np.datetime64(int(seconds), "s")).replace("T", " ")[:16]


def heat_color(value: float | None, scale: float) -> str:
    """Background for a return: green above 0, red below, stronger with the size against `scale`."""
    if value is None or not math.isfinite(value) or scale <= 0:
        return ""
    a = min(1.0, abs(value) / scale) * 0.75 + 0.05
    rgb = "22, 163, 74" if value > 0 else "220, 38, 38" if value < 0 else "148, 163, 184"
    return f"background: rgba({rgb}, {a:.2f})"
