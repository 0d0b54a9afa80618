"""Who is calling: read from the API Gateway (REST, v1 proxy) request context, which API Gateway
fills after it authenticated the caller. The service trusts it and nothing the client sends.

- Cognito user pool authorizer: `requestContext.authorizer.claims.sub` → owner `cognito:<sub>`.
- IAM (SigV4) auth: `requestContext.identity.userArn` (or `caller`) → owner `iam:<arn>`.

The prefix keeps the two namespaces apart. No identity → `Unauthenticated` (401): behind a
correctly configured API this cannot happen, so it is refused rather than given a shared owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from backtest_service.errors import Unauthenticated


@dataclass(frozen=True)
class Caller:
    kind: Literal["cognito", "iam"]
    principal: str

    @property
    def owner(self) -> str:
        """The jobs table's `owner` value of this caller."""
        return f"{self.kind}:{self.principal}"


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def caller_from_request_context(request_context: Mapping[str, Any] | None) -> Caller:
    ctx = request_context or {}
    authorizer = ctx.get("authorizer") or {}
    claims = authorizer.get("claims") if isinstance(authorizer, Mapping) else None
    if isinstance(claims, Mapping) and (sub := _text(claims.get("sub"))):
        return Caller("cognito", sub)
    identity = ctx.get("identity") or {}
    if isinstance(identity, Mapping):
        principal = _text(identity.get("userArn")) or _text(identity.get("caller"))
        if principal:
            return Caller("iam", principal)
    raise Unauthenticated(
        "the request carries no authenticated caller; sign in (Cognito) or sign the request (IAM SigV4)"
    )


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    """The caller of a REST API (v1) proxy event."""
    return caller_from_request_context(event.get("requestContext"))
