"""The integration suite runs the real handlers on the local stack (`stack`, `worker`, `inject_fault`,
`log_records` come from local/pytest_plugin.py); `api` calls them as API Gateway would."""

from __future__ import annotations

import pytest

from local.stack import LocalStack
from tests.support import Api


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)
