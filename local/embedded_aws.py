"""The embedded AWS: moto in this process (`mock_aws`) or as a threaded server on a loopback port, with
fake credentials, so nothing local can ever reach a real account.

    aws = EmbeddedAws(server=True, region="us-east-1")
    aws.start(env)            # env: an EnvironmentPatch, undone by env.restore()
    aws.endpoint_url          # http://127.0.0.1:PORT (server mode; None in process)
    aws.stop()

    aws = EmbeddedAws(endpoint_url="http://127.0.0.1:4566")   # a moto server another process runs
                                                             # (`backtest local-aws`): its state outlives us

The fake credentials live here and only here (`FAKE_CREDENTIALS`): the local stack, the cold-start probe
and `backtest replay --local-endpoint` all take them from this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Environment variables that could point boto3 at a real account or endpoint: unset while moto runs.
REAL_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def fake_session(region: str = DEFAULT_REGION) -> Any:
    """A boto3 session with the fake credentials (for a client of a moto endpoint)."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )


class EnvironmentPatch:
    """Sets process environment variables and puts every one back as it was on `restore()`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, values: Mapping[str, str | None]) -> None:
        """Set each variable (None: unset it), remembering its first value."""
        for key, value in values.items():
            if key not in self._saved:
                self._saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()


class EmbeddedAws:
    """moto, in this process (`server=False`: `mock_aws`, one thread's tests and the demo) or as moto's
    threaded server on 127.0.0.1 (`server=True`: shared by every thread, presigned links fetchable)."""

    def __init__(
        self, *, server: bool = False, region: str = DEFAULT_REGION, port: int = 0, endpoint_url: str | None = None
    ) -> None:
        self.external = check_local_endpoint(endpoint_url) if endpoint_url else None
        self.server = server or self.external is not None
        self.region = region
        self.port = port
        self.endpoint_url: str | None = None
        self._mock: Any = None
        self._moto_server: Any = None

    def start(self, env: EnvironmentPatch) -> None:
        """Fake credentials and region, no variable that points at real AWS, then moto (or its endpoint)."""
        env.set({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region})
        env.set(dict.fromkeys(REAL_AWS_VARIABLES))
        if self.external is not None:
            # Another process's moto server: not ours to reset or stop, its state outlives this process.
            self.endpoint_url = self.external
            env.set({"AWS_ENDPOINT_URL": self.endpoint_url})
        elif self.server:
            from moto.server import ThreadedMotoServer

            # Werkzeug logs every request (and moto's tracebacks for unimplemented calls) otherwise.
            logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
            self._moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self._moto_server.start()
            host, port = self._moto_server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
            env.set({"AWS_ENDPOINT_URL": self.endpoint_url})
            self.reset()  # moto's state outlives a server: start from nothing
        else:
            from moto import mock_aws

            self._mock = mock_aws()
            self._mock.start()

    def stop(self) -> None:
        if self._moto_server is not None:
            self.reset()
            self._moto_server.stop()
            self._moto_server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def reset(self) -> None:
        """Drop every resource and item of the moto server (its state is global to this process)."""
        if self.endpoint_url is None:
            return
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=10):
            pass


def check_local_endpoint(url: str) -> str:
    """`url` without a trailing slash if it is an http endpoint on this machine (the local stack never
    talks to anything else, whatever credentials it holds), else ValueError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1") or not parts.port:
        raise ValueError(f"the embedded AWS must be http://127.0.0.1:PORT (a moto server on this machine), got {url!r}")
    return url.rstrip("/")


def wait_for_endpoint(url: str, timeout_seconds: float = 30.0) -> None:
    """Until moto's server at `url` answers (it was just started by another process)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/config", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no moto server answered at {url} within {timeout_seconds:.0f} s") from None
            time.sleep(0.1)


def forget_model_instances() -> None:
    """Drop moto's list of every model object it ever created (kept only for its dashboard).

    Moto appends each instance of its models to a class-level list, including the copy of every item a
    DynamoDB query returns: a long-running `backtest local` polled by a frontend would grow by about
    0.5 MB per job list. Moto's state (tables, items, queues, objects) is held elsewhere and kept.
    """
    from moto.core.model_instances import reset_model_data

    reset_model_data()
