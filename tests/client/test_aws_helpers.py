"""The client's helpers for deployed stacks, on in-process moto: the API URL from the stack's outputs, and
a Cognito sign-in by USER_PASSWORD_AUTH whose token the client sends as is."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import httpx
import pytest
from backtest_client import BacktestClient, CognitoAuth, IamAuth
from backtest_client.aws import SignInFailed, StackLookupFailed, api_url_from_stack, cognito_sign_in, stack_outputs
from moto import mock_aws

from local.cli import build_parser
from local.embedded_aws import FAKE_CREDENTIALS, REAL_AWS_VARIABLES
from local.remote.common import connect

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    for key in (*REAL_AWS_VARIABLES, "BACKTEST_API_URL", "BACKTEST_TOKEN", "BACKTEST_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def test_the_api_url_comes_from_the_stack_outputs(aws: boto3.session.Session) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "ApiUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"},
            "AuthMode": {"Value": "iam"},
        },
    }
    aws.client("cloudformation").create_stack(StackName="BacktestService-prod", TemplateBody=json.dumps(template))

    assert api_url_from_stack("BacktestService-prod", region=REGION) == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    )
    assert stack_outputs("BacktestService-prod", session=aws)["AuthMode"] == "iam"
    with pytest.raises(StackLookupFailed, match="cannot read stack 'nope'"):
        api_url_from_stack("nope", region=REGION)


def test_cognito_sign_in_gives_the_token_the_client_sends(aws: boto3.session.Session) -> None:
    idp = aws.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="frontend", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="alice", TemporaryPassword="Temp-Pass-123!")
    idp.admin_set_user_password(UserPoolId=pool, Username="alice", Password="Correct-Horse-42!", Permanent=True)

    auth = cognito_sign_in(client_id, "alice", "Correct-Horse-42!", region=REGION)

    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"status": "ok", "service": "s", "version": "1"})

    with BacktestClient("https://api.example.com/prod", auth=auth, transport=httpx.MockTransport(answer)) as client:
        client.health()
    assert sent[0].headers["Authorization"] == auth.token
    assert auth.token.count(".") == 2  # a JWT, as is (no Bearer prefix)

    with pytest.raises(SignInFailed, match="refused the sign-in of alice"):
        cognito_sign_in(client_id, "alice", "wrong-password", region=REGION)


def _stack(aws: boto3.session.Session, name: str, **outputs: str) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def _connect(*argv: str) -> BacktestClient:
    args = build_parser("status").parse_args(["status", "job-1", *argv])
    return connect(args)


def test_the_cli_finds_the_api_and_the_auth_from_the_stack(aws: boto3.session.Session) -> None:
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
    _stack(aws, "BacktestService-prod-iam", ApiUrl=url, AuthMode="iam")
    idp = aws.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="users")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="frontend", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="bob", TemporaryPassword="Temp-Pass-123!")
    idp.admin_set_user_password(UserPoolId=pool, Username="bob", Password="Correct-Horse-42!", Permanent=True)
    _stack(aws, "BacktestService-prod", ApiUrl=url, AuthMode="cognito", UserPoolClientId=client_id)

    # An IAM stack: SigV4 without being asked, in the region of the API's host
    with _connect("--stack-name", "BacktestService-prod-iam", "--region", REGION) as client:
        assert client.base_url == url.rstrip("/")
        assert isinstance(client.auth, IamAuth)
        assert client.auth.region_for(httpx.URL(url)) == REGION

    # A Cognito stack: the token given, or a sign-in with the stack's app client
    with _connect("--stack-name", "BacktestService-prod", "--region", REGION, "--token", "tok") as client:
        assert isinstance(client.auth, CognitoAuth) and client.auth.token == "tok"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BACKTEST_PASSWORD", "Correct-Horse-42!")
        with _connect("--stack-name", "BacktestService-prod", "--region", REGION, "--username", "bob") as client:
            assert isinstance(client.auth, CognitoAuth) and client.auth.token.count(".") == 2

    # Neither: backtest local's address, no auth
    with _connect() as client:
        assert client.base_url == "http://127.0.0.1:8007" and client.auth is None
