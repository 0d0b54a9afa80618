"""Hostile and broken submissions through the real submit handler on moto.

Every one is refused with a 4xx whose JSON error names the field at fault (or the line of the
strategy), and NOTHING is stored: no job, no message on the jobs queue, no idempotency record (each
request carries an Idempotency-Key), no result object. The refusals share one deployment, so the
check after each also covers every refusal before it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from backtest_service.topology import API_PREFIX
from local.stack import LocalStack
from tests.support import SMA_CROSS, Api, in_jobs_queue

pytestmark = pytest.mark.xdist_group("hardening-input")

RUN = f"{API_PREFIX}/run"
# One month of daily bars: the smallest valid request.
VALID: dict[str, Any] = {
    "strategy_code": SMA_CROSS,
    "symbol": "AAPL",
    "timeframe": "1d",
    "start_date": "2024-01-01",
    "end_date": "2024-01-31",
}
MB = 1 << 20
EVENT_STYLE = "def on_bar(ctx, bar):\n    if ctx.i == 3:\n        ctx.buy()\n"


@dataclasses.dataclass(frozen=True)
class Bad:
    id: str
    status: int
    type: str
    says: tuple[str, ...]  # fragments the message must contain
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)  # merged into VALID
    raw: str | None = None  # or the raw body as sent
    field: str | None = None  # error.field, when the answer names one
    line: int | None = None  # error.line, for strategy code
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def body(self) -> str:
        return self.raw if self.raw is not None else json.dumps({**VALID, **self.fields})


def _invalid(id: str, fields: dict[str, Any], name: str | None, *says: str) -> Bad:
    return Bad(id, 422, "ValidationError", (*says,) if says else (name or "",), fields, field=name)


CASES = [
    # ---- malformed JSON and bodies of the wrong shape --------------------------------------------
    Bad("truncated_json", 400, "InvalidJSON", ("not valid JSON", "character 18"), raw='{"strategy_code": '),
    Bad("single_quotes", 400, "InvalidJSON", ("not valid JSON",), raw="{'strategy_code': 'x'}"),
    Bad("empty_body", 422, "ValidationError", ("body is missing", "strategy_code"), raw="", field="body"),
    Bad("json_null", 422, "ValidationError", ("body is missing",), raw="null", field="body"),
    Bad("json_array", 422, "ValidationError", ("valid dictionary or object",), raw="[1, 2]"),
    Bad("json_string", 422, "ValidationError", ("valid dictionary or object",), raw='"run it"'),
    Bad(
        "nan_literal",
        422,
        "ValidationError",
        ("initial_capital",),
        raw=json.dumps({**VALID, "initial_capital": "X"}).replace('"X"', "NaN"),
        field="initial_capital",
    ),
    Bad(
        "overflowing_number",
        422,
        "ValidationError",
        ("initial_capital",),
        raw=json.dumps({**VALID, "initial_capital": "X"}).replace('"X"', "1e400"),
        field="initial_capital",
    ),
    Bad(
        "multipart_without_boundary",
        415,
        "UnsupportedContentType",
        ("application/json",),
        headers={"Content-Type": "multipart/form-data"},
    ),
    Bad("text_plain", 415, "UnsupportedContentType", ("application/json",), headers={"Content-Type": "text/plain"}),
    # ---- wrong types and unknown fields ----------------------------------------------------------
    _invalid("code_is_a_number", {"strategy_code": 123}, "strategy_code", "valid string"),
    _invalid("symbol_is_a_number", {"symbol": 5}, "symbol", "valid string"),
    _invalid("unknown_timeframe", {"timeframe": "2h"}, "timeframe", "'1m', '5m', '15m', '1h', '4h' or '1d'"),
    _invalid("capital_is_text", {"initial_capital": "lots"}, "initial_capital", "valid number"),
    _invalid("parameters_is_a_list", {"parameters": [1, 2]}, "parameters", "valid dictionary"),
    _invalid("date_is_a_number", {"start_date": 20240101}, "start_date"),
    _invalid("impossible_date", {"start_date": "2024-02-30"}, "start_date", "day value is outside expected range"),
    _invalid("unknown_field", {"strategy": SMA_CROSS}, "strategy", "Extra inputs are not permitted"),
    # ---- huge bodies -----------------------------------------------------------------------------
    Bad(
        "code_just_over_64_kib",
        413,
        "PayloadTooLarge",
        ("65,537 bytes", "65,536 bytes (64 KiB)"),
        {"strategy_code": SMA_CROSS + "#" * (64 * 1024 - len(SMA_CROSS)) + "\n"},
        field="strategy_code",
    ),
    Bad(
        "multi_mb_code",
        413,
        "PayloadTooLarge",
        ("strategy_code is 5,242,880 bytes", "64 KiB"),
        {"strategy_code": "#" * (5 * MB)},
        field="strategy_code",
    ),
    _invalid("multi_mb_name", {"name": "n" * (3 * MB)}, "name", "at most 200 characters"),
    _invalid("multi_mb_parameter", {"parameters": {"blob": "p" * (3 * MB)}}, "parameters", "longer than 1000"),
    _invalid("thousands_of_parameters", {"parameters": {f"p{i}": i for i in range(5000)}}, "parameters", "at most 64"),
    # ---- unicode and control characters ----------------------------------------------------------
    _invalid("nul_in_name", {"name": "bad\x00name"}, "name", "control characters"),
    _invalid("newline_in_name", {"name": "two\nlines"}, "name", "control characters"),
    _invalid("escape_sequence_in_name", {"name": "\x1b[31mred"}, "name", "control characters"),
    _invalid("lone_surrogate_in_name", {"name": "\ud800"}, "name"),
    _invalid("lone_surrogate_in_code", {"strategy_code": SMA_CROSS + "# \udfff\n"}, "strategy_code", "surrogate"),
    _invalid("lone_surrogate_in_parameter", {"parameters": {"label": "\ud83d"}}, "parameters.label", "surrogate"),
    _invalid("non_ascii_parameter_name", {"parameters": {"α": 1}}, "parameters", "must be an identifier"),
    _invalid("fullwidth_symbol", {"symbol": "ＡＡＰＬ"}, "symbol", "unknown symbol", "available: AAPL"),
    Bad(
        "nul_in_code",
        400,
        "StrategyCompileError",
        ("null bytes",),
        {"strategy_code": SMA_CROSS + "\x00\n"},
    ),
    Bad(
        "byte_order_mark_in_code",
        400,
        "StrategyCompileError",
        ("line 1", "U+FEFF"),
        {"strategy_code": "\ufeff" + SMA_CROSS},
        line=1,
    ),
    # ---- money -----------------------------------------------------------------------------------
    _invalid("negative_capital", {"initial_capital": -1000}, "initial_capital", "greater than 0"),
    _invalid("zero_capital", {"initial_capital": 0}, "initial_capital", "greater than 0"),
    _invalid("absurd_capital", {"initial_capital": 1e15}, "initial_capital", "less than or equal to 1000000000000"),
    _invalid("negative_commission", {"commission": -0.001}, "commission", "greater than or equal to 0"),
    _invalid("commission_of_half", {"commission": 0.5}, "commission", "less than or equal to 0.1"),
    _invalid("negative_slippage", {"slippage": -0.01}, "slippage", "greater than or equal to 0"),
    _invalid("slippage_of_200_percent", {"slippage": 2}, "slippage", "less than or equal to 0.1"),
    # ---- dates and the bar cap (cross-field: the message names the values) -------------------------
    _invalid(
        "far_past",
        {"start_date": "1900-01-01"},
        "start_date",
        "available history 2018-01-01 .. 2025-12-31",
        "1900-01-01",
    ),
    _invalid("far_future", {"end_date": "2999-12-31"}, "end_date", "available history", "2999-12-31"),
    _invalid(
        "year_one_to_9999",
        {"start_date": "0001-01-01", "end_date": "9999-12-31"},
        "start_date",
        "available history",
        "start_date 0001-01-01 is outside",
    ),
    _invalid(
        "weekend_for_a_stock",
        {"symbol": "MSFT", "start_date": "2024-03-02", "end_date": "2024-03-03"},
        "start_date",
        "has 0 bar(s)",
        "weekdays",
    ),
    _invalid(
        "reversed_dates",
        {"start_date": "2024-03-01", "end_date": "2024-01-01"},
        "end_date",
        "end_date 2024-01-01 is before start_date 2024-03-01",
    ),
    _invalid(
        "minute_bars_of_crypto_over_8_years",
        {"symbol": "BTCUSD", "timeframe": "1m", "start_date": "2018-01-01", "end_date": "2025-12-31"},
        "end_date",
        "the limit is 2,000,000",
        "shorten the range or use a longer timeframe",
    ),
    _invalid(
        "minute_bars_of_crypto_over_4_years",
        {"symbol": "ETHUSD", "timeframe": "1m", "start_date": "2020-01-01", "end_date": "2023-12-31"},
        "end_date",
        "is 2,10",
        "the limit is 2,000,000",
    ),
    # ---- parameters of types the strategy cannot take --------------------------------------------
    _invalid("list_parameter", {"parameters": {"periods": [5, 20]}}, "parameters.periods.bool", "periods"),
    _invalid("dict_parameter", {"parameters": {"cfg": {"fast": 5}}}, "parameters.cfg.bool", "cfg"),
    _invalid("null_parameter", {"parameters": {"fast": None}}, "parameters.fast.bool", "fast"),
    _invalid("infinite_parameter", {"parameters": {"fast": 1e400}}, "parameters", "finite number"),
    # ---- strategy code that cannot run -----------------------------------------------------------
    _invalid("empty_code", {"strategy_code": ""}, "strategy_code", "strategy_code is empty"),
    _invalid("blank_code", {"strategy_code": " \n\t\n"}, "strategy_code", "strategy_code is empty"),
    Bad(
        "only_comments",
        400,
        "StrategyCompileError",
        ("defines no entry point", "generate_signals(data, params)", "on_bar(ctx, bar)"),
        {"strategy_code": "# TODO: write the strategy\n# nothing yet\n"},
    ),
    Bad(
        "neither_style",
        400,
        "StrategyCompileError",
        ("defines no entry point",),
        {"strategy_code": "import numpy as np\n\n\ndef signals(data):\n    return np.zeros(len(data))\n"},
    ),
    Bad(
        "both_styles",
        400,
        "StrategyCompileError",
        ("line 10", "both generate_signals and on_bar", "exactly one style"),
        {"strategy_code": SMA_CROSS + "\n" + EVENT_STYLE},
        line=10,
    ),
    Bad(
        "syntax_error",
        400,
        "StrategyCompileError",
        ("line 2", "SyntaxError"),
        {"strategy_code": "def generate_signals(data, params):\n    return [0.0 *\n"},
        line=2,
    ),
    Bad(
        "forbidden_import",
        400,
        "StrategyCompileError",
        ("line 1", "import of 'os' is not allowed", "allowed: numpy"),
        {"strategy_code": "import os\n" + SMA_CROSS},
        line=1,
    ),
]


@pytest.fixture(scope="module")
def nothing_stored(module_stack: LocalStack) -> Callable[[], None]:
    """Asserts the deployment holds no job, idempotency record, message or result (clients made once)."""
    names = module_stack.resources
    dynamodb, sqs, s3 = (module_stack.client(service) for service in ("dynamodb", "sqs", "s3"))

    def check() -> None:
        for table in (names.jobs_table, names.idempotency_table):
            assert dynamodb.scan(TableName=table, Select="COUNT")["Count"] == 0, table
        for url in (names.jobs_queue_url, names.dlq_url):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            assert attributes["ApproximateNumberOfMessages"] == "0", url
            assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", url
        assert s3.list_objects_v2(Bucket=names.results_bucket).get("KeyCount", 0) == 0

    return check


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_submission_is_refused_naming_the_field_or_line_and_nothing_is_stored(
    module_stack: LocalStack, nothing_stored: Callable[[], None], case: Bad
) -> None:
    # Given one deployment that receives every bad submission of this module, one after the other
    # When this one is submitted (with an Idempotency-Key, so a remembered answer would show)
    headers = {"Idempotency-Key": f"bad-{case.id}", **case.headers}
    response = Api(module_stack).call("POST", RUN, raw_body=case.body(), headers=headers)

    # Then it is refused with the documented 4xx and a JSON error a person can act on
    assert response.status == case.status, response.body
    error = response.error
    assert error["type"] == case.type
    for fragment in case.says:
        assert fragment in error["message"], error
    assert error.get("field") == case.field, error
    assert error.get("line") == case.line, error
    # And nothing at all was stored or queued, by it or by any bad submission before it
    nothing_stored()


# The tests below store jobs: they run after the refusals above, on the same deployment.


def test_after_every_refusal_a_good_submission_is_still_queued(module_stack: LocalStack) -> None:
    response = Api(module_stack).call("POST", RUN, body=VALID)
    assert response.status == 202, response.body
    assert module_stack.job(response.body["execution_id"])["status"] == "QUEUED"  # type: ignore[index]
    assert in_jobs_queue(module_stack) == 1


def test_unicode_names_are_accepted_and_kept_exactly(module_stack: LocalStack) -> None:
    # Given names in several scripts, with emoji, a combining accent and right-to-left text
    name = "📈 Stratégie 動量 — ΔSMA ⚡ مؤشر e\u0301"
    response = Api(module_stack).call("POST", RUN, body={**VALID, "name": name})
    assert response.status == 202, response.body
    execution_id = response.body["execution_id"]
    # Then the job keeps the name exactly, in the table and in the status answer
    assert module_stack.job(execution_id)["name"] == name  # type: ignore[index]
    assert Api(module_stack).status(execution_id).body["name"] == name


def test_parameters_of_each_allowed_type_are_accepted_with_their_types(module_stack: LocalStack) -> None:
    parameters = {"flag": True, "fast": 5, "ratio": 0.25, "label": "momentum ✓", "zero": 0, "off": False}
    response = Api(module_stack).call("POST", RUN, body={**VALID, "parameters": parameters})
    assert response.status == 202, response.body
    stored = module_stack.job(response.body["execution_id"])["request"]["parameters"]  # type: ignore[index]
    # Then each value comes back with its own type: a bool stays a bool, an int an int
    assert stored == parameters
    assert [type(stored[k]) for k in parameters] == [type(v) for v in parameters.values()]
