"""Who the client calls as: one httpx `Auth` per way the service authenticates its callers.

- `CognitoAuth(token)`: a deployment with the Cognito authorizer (the default): `Authorization: <token>`,
  the user pool's ID token as is, no `Bearer` prefix (docs/DEPLOY.md). `token` may be a callable that
  returns the current token (to refresh it). `backtest_client.aws.cognito_sign_in` gets one for scripts.
- `IamAuth(session, region=...)`: a deployment with `authMode=iam`: every request is signed with SigV4 for
  the service `execute-api` by botocore's own signer, with the session's (refreshable) credentials.
- `LocalUser(name)`: `backtest local`, where the `X-Local-User` header plays the Cognito authorizer.

Presigned links (results_url, report_url) are fetched without any of these: their signature is in the URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from typing import Any

import httpx

LOCAL_USER_HEADER = "X-Local-User"
# Signed besides what SigV4 adds itself (X-Amz-Date, X-Amz-Security-Token): nothing a proxy may rewrite
# (Connection, Accept-Encoding, User-Agent stay out), everything the service reads.
SIGNED_HEADERS = ("host", "content-type", "idempotency-key")
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class LocalUser(httpx.Auth):
    """Call `backtest local` as `name` (its stand-in for a signed-in user)."""

    def __init__(self, name: str) -> None:
        if not name.strip():
            raise ValueError("a local user needs a name")
        self.name = name

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[LOCAL_USER_HEADER] = self.name
        yield request

    def __repr__(self) -> str:
        return f"LocalUser({self.name!r})"


class CognitoAuth(httpx.Auth):
    """A Cognito user pool token (ID token, or an access token where the authorizer takes one)."""

    def __init__(self, token: str | Callable[[], str]) -> None:
        if isinstance(token, str) and not token.strip():
            raise ValueError("the Cognito token is empty")
        self._token = token

    @property
    def token(self) -> str:
        return self._token() if callable(self._token) else self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.token
        yield request

    def __repr__(self) -> str:
        return "CognitoAuth(<token>)"


def region_of_url(url: httpx.URL | str) -> str | None:
    """The region of an API Gateway URL (`https://<id>.execute-api.<region>.amazonaws.com/...`), else None."""
    found = _EXECUTE_API_HOST.match(httpx.URL(str(url)).host)
    return found.group(1) if found else None


class IamAuth(httpx.Auth):
    """SigV4 (service `execute-api`) with botocore's signer.

    `session`: a boto3 or botocore session (default: botocore's default session, i.e. the usual
    environment, profile and instance-role credentials); or `credentials` (botocore Credentials) given
    directly. The region is `region`, else the one in an `execute-api` host name, else the session's.
    """

    requires_request_body = True  # the signature covers the body

    def __init__(
        self,
        session: Any = None,
        *,
        region: str | None = None,
        credentials: Any = None,
        service: str = "execute-api",
    ) -> None:
        try:
            from botocore.auth import SigV4Auth  # noqa: F401  (fail here, not on the first request)
        except ImportError as exc:  # pragma: no cover - the `iam` extra installs it
            raise ImportError("IamAuth needs botocore: pip install 'backtest-client[iam]'") from exc
        if session is None and credentials is None:
            import botocore.session

            session = botocore.session.get_session()
        self.session = session
        self.region = region
        self.service = service
        self._credentials = credentials

    def _session_region(self) -> str | None:
        if self.session is None:
            return None
        name = getattr(self.session, "region_name", None)  # boto3.Session
        if name is None and hasattr(self.session, "get_config_variable"):  # botocore Session
            name = self.session.get_config_variable("region")
        return name if isinstance(name, str) and name else None

    def region_for(self, url: httpx.URL) -> str:
        region = self.region or region_of_url(url) or self._session_region()
        if not region:
            raise ValueError("IamAuth needs a region: pass region=, or configure one for the AWS session")
        return region

    def frozen_credentials(self) -> Any:
        credentials = self._credentials if self._credentials is not None else self.session.get_credentials()
        if credentials is None:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
        return credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials

    def sign(self, request: httpx.Request) -> None:
        """Add Authorization, X-Amz-Date (and X-Amz-Security-Token) to `request`, signed by botocore."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        headers = {name: request.headers[name] for name in SIGNED_HEADERS if name in request.headers}
        aws = AWSRequest(method=request.method, url=str(request.url), data=request.content, headers=headers)
        SigV4Auth(self.frozen_credentials(), self.service, self.region_for(request.url)).add_auth(aws)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws.headers:
                request.headers[name] = aws.headers[name]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def __repr__(self) -> str:
        return f"IamAuth(region={self.region!r}, service={self.service!r})"
