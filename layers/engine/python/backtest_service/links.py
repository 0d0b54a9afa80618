"""Absolute links in answers (`status_url`, `equity_url`, the `Location` header), built from the request.

A REST API's own domain puts the stage in the path (`https://abc.execute-api.../prod/api/backtest/...`) and a
custom domain may put a base path there (`https://api.example.com/v1/...`): a relative `status_url` resolved
against either loses that prefix. API Gateway gives both halves in the proxy event: `requestContext.domainName`
and `requestContext.path` (the path as called, prefix included) beside the resource path `path`; the prefix
is what `requestContext.path` has before `path`. `PUBLIC_BASE_URL` (settings) overrides it for a domain the
request does not show (a CDN in front). The scheme is `X-Forwarded-Proto`'s (API Gateway sends https; the
local server http).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def api_base_url(event: Mapping[str, Any], public_base_url: str | None = None) -> str:
    """The API's root URL as the caller reached it, without a trailing slash."""
    if public_base_url:
        return public_base_url.rstrip("/")
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items() if isinstance(v, str)}
    context = event.get("requestContext") or {}
    host = context.get("domainName") or headers.get("host") or "localhost"
    scheme = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip() or "https"
    path = event.get("path") or ""
    called = context.get("path") or path
    prefix = called[: len(called) - len(path)] if path and called.endswith(path) else ""
    return f"{scheme}://{host}{prefix.rstrip('/')}"
