"""Helpers for scripts against a deployed stack (boto3 needed: `pip install 'backtest-client[aws]'`).

- `stack_outputs(stack_name)` / `api_url_from_stack(stack_name)`: the stack's CloudFormation outputs
  (`ApiUrl`, `AuthMode`, `UserPoolClientId`, ... the keys of `backtest_service.topology.Output`);
- `cognito_sign_in(client_id, username, password)`: a `CognitoAuth` with the user's ID token, by the user
  pool app client's USER_PASSWORD_AUTH flow (the stack's `UserPoolClientId`; docs/DEPLOY.md §6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from backtest_client.auth import CognitoAuth
from backtest_client.errors import BacktestServiceError

# The stack's output keys this module reads (backtest_service.topology.Output; a test compares).
API_URL_OUTPUT = "ApiUrl"
AUTH_MODE_OUTPUT = "AuthMode"
USER_POOL_CLIENT_ID_OUTPUT = "UserPoolClientId"


class StackLookupFailed(BacktestServiceError):
    def __init__(self, message: str) -> None:
        super().__init__(message, type="StackLookupFailed")


class SignInFailed(BacktestServiceError):
    """Cognito refused the sign-in, or asked for a challenge (new password, MFA) a script cannot answer."""

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message, type=challenge or "SignInFailed")
        self.challenge = challenge


def _session(session: Any, region: str | None, profile: str | None) -> Any:
    if session is not None:
        return session
    import boto3

    return boto3.session.Session(profile_name=profile, region_name=region)


def stack_outputs(
    stack_name: str, *, region: str | None = None, profile: str | None = None, session: Any = None
) -> dict[str, str]:
    """Output key → value of a CloudFormation stack."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cloudformation = _session(session, region, profile).client("cloudformation", region_name=region)
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:
        raise StackLookupFailed(f"cannot read stack {stack_name!r}: {exc}") from None
    if not stacks:
        raise StackLookupFailed(f"no stack {stack_name!r}")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", []) if "OutputValue" in o}


def api_url_from_stack(
    stack_name: str, *, region: str | None = None, profile: str | None = None, session: Any = None
) -> str:
    """The stack's `ApiUrl` output (the API root with its stage), without the trailing slash."""
    outputs = stack_outputs(stack_name, region=region, profile=profile, session=session)
    if API_URL_OUTPUT not in outputs:
        raise StackLookupFailed(
            f"stack {stack_name} has no output {API_URL_OUTPUT} (outputs: {', '.join(sorted(outputs)) or 'none'})"
        )
    return outputs[API_URL_OUTPUT].rstrip("/")


def secret_hash(client_id: str, client_secret: str, username: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def cognito_sign_in(
    client_id: str,
    username: str,
    password: str,
    *,
    region: str | None = None,
    profile: str | None = None,
    session: Any = None,
    client_secret: str | None = None,
    token: str = "IdToken",
) -> CognitoAuth:
    """Sign in with USER_PASSWORD_AUTH and return a CognitoAuth with the ID token (`token="AccessToken"`
    for the access token). The token is valid for an hour; sign in again after that."""
    from botocore.exceptions import BotoCoreError, ClientError

    parameters = {"USERNAME": username, "PASSWORD": password}
    if client_secret:
        parameters["SECRET_HASH"] = secret_hash(client_id, client_secret, username)
    try:
        idp = _session(session, region, profile).client("cognito-idp", region_name=region)
        answer = idp.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId=client_id, AuthParameters=parameters)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SignInFailed(f"Cognito refused the sign-in of {username}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise SignInFailed(f"cannot reach Cognito: {exc}") from None
    if "ChallengeName" in answer and "AuthenticationResult" not in answer:
        challenge = str(answer["ChallengeName"])
        raise SignInFailed(
            f"Cognito asks {username} for {challenge} (a new password or MFA): sign in once interactively",
            challenge=challenge,
        )
    return CognitoAuth(str(answer["AuthenticationResult"][token]))
