"""What the three owner-scoped tables (jobs, datasets, optimizations) share: opaque page tokens over their
owner index (`TableSpec.gsi_*`), the delete conditional on the owner, and the check for a conditional
write that did not hold.

A page token is base64url of the last item's id and creation time: short, URL-safe, and checked on the way
back (shape, id format, timestamp format) before it becomes an `ExclusiveStartKey`, whose owner is always the
caller's, so a token cannot page through anyone else's items.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from backtest_service.errors import InvalidNextToken
from backtest_service.topology import TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_TOKEN_CHARS = 1024
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")  # jobs.iso(): what created_at holds


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def delete_owned(dynamodb: DynamoDBClient, table_name: str, key: dict[str, Any], owner: str) -> dict[str, Any] | None:
    """Delete the item at `key` if `owner` owns it, in one conditional write: its attributes as they were, or
    None when it is missing or another caller's (which the API answers alike, 404)."""
    try:
        out = dynamodb.delete_item(
            TableName=table_name,
            Key=key,
            ConditionExpression="#o = :owner",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
            ReturnValues="ALL_OLD",
        )
    except ClientError as exc:
        if is_conditional_failure(exc):
            return None
        raise
    return out["Attributes"]


@dataclass(frozen=True)
class PageTokens:
    """Page tokens of `table`'s owner index. `what` names the list in an `InvalidNextToken` message;
    `fixed_key`: key attributes every listed item has the same value of (the optimizations' sort key)."""

    table: TableSpec
    is_valid_id: Callable[[str], bool]
    what: str
    fixed_key: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.table.gsi_partition_key and self.table.gsi_sort_key):
            raise ValueError(f"table {self.table.name} has no owner index")

    def encode(self, last_evaluated_key: dict[str, Any]) -> str:
        data = {
            "id": last_evaluated_key[self.table.partition_key]["S"],
            "at": last_evaluated_key[str(self.table.gsi_sort_key)]["S"],
        }
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, token: str, owner: str) -> dict[str, Any]:
        """The `ExclusiveStartKey` a token stands for, for `owner`; `InvalidNextToken` if it is not one."""
        try:
            if len(token) > MAX_TOKEN_CHARS:
                raise ValueError("too long")
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not isinstance(data, dict) or set(data) != {"id", "at"}:
                raise ValueError("wrong shape")
            if not (isinstance(data["id"], str) and self.is_valid_id(data["id"])):
                raise ValueError("bad id")
            if not (isinstance(data["at"], str) and _TIMESTAMP.match(data["at"])):
                raise ValueError("bad time")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidNextToken(self.what) from None
        return {
            self.table.partition_key: {"S": data["id"]},
            **{name: {"S": value} for name, value in self.fixed_key.items()},
            str(self.table.gsi_partition_key): {"S": owner},
            str(self.table.gsi_sort_key): {"S": data["at"]},
        }
