"""A typed client for the backtest service's HTTP API (sync and async), with retries, typed errors and the
service's three ways to authenticate. Models: `backtest_client.models`, generated from openapi.json."""

from backtest_client import models
from backtest_client._core import PollPolicy, RetryPolicy
from backtest_client.auth import CognitoAuth, IamAuth, LocalUser
from backtest_client.client import AsyncBacktestClient, BacktestClient, RequestFields, __version__
from backtest_client.errors import (
    BacktestServiceError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    NoReport,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    StrategyCompileError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    WaitTimeout,
)

__all__ = [
    "AsyncBacktestClient",
    "BacktestClient",
    "BacktestServiceError",
    "BadRequest",
    "CognitoAuth",
    "Conflict",
    "ConnectionFailed",
    "IamAuth",
    "LocalUser",
    "NoReport",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "PollPolicy",
    "RateLimited",
    "RequestFields",
    "RetryPolicy",
    "ServerError",
    "StrategyCompileError",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "WaitTimeout",
    "__version__",
    "models",
]
