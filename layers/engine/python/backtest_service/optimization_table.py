"""The full table of an optimization (every combination's parameters and metrics, or its error), as JSON and
as CSV, produced a piece at a time for gzip (`optimization_results.put_table`). Pure: no AWS.

JSON: ``{optimization_id, target, direction, method, total, parameters: [names], metrics: [keys],
combinations: [{index, params, status, feasible, metrics, error}, ...]}`` in search order.
CSV: one row per combination, in search order: ``index, status, feasible``, one column per parameter, one
per metric (the definitions' order), ``error_type, error_message``; empty cells for nulls.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from backtest_engine.metric_definitions import METRIC_KEYS
from backtest_engine.optimization.models import CombinationOutcome

ROWS_PER_PIECE = 500


def metric_columns(outcomes: Sequence[CombinationOutcome]) -> list[str]:
    """Every metric key in the definitions' order, then any other one a combination has (sorted)."""
    seen = {key for o in outcomes for key in (o.metrics or {})}
    return [*METRIC_KEYS, *sorted(seen - set(METRIC_KEYS))]


def table_json(
    header: dict[str, Any], parameters: Sequence[str], outcomes: Sequence[CombinationOutcome]
) -> Iterator[bytes]:
    metrics = metric_columns(outcomes)
    head = {**header, "total": len(outcomes), "parameters": list(parameters), "metrics": metrics}
    text = json.dumps(head, separators=(",", ":"))
    yield (text[:-1] + ',"combinations":[').encode()
    for first in range(0, len(outcomes), ROWS_PER_PIECE):
        piece = outcomes[first : first + ROWS_PER_PIECE]
        rows = ",".join(json.dumps(o.model_dump(mode="json"), separators=(",", ":")) for o in piece)
        yield ((("," if first else "") + rows).encode())
    yield b"]}"


def table_csv(parameters: Sequence[str], outcomes: Sequence[CombinationOutcome]) -> Iterator[bytes]:
    metrics = metric_columns(outcomes)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "status", "feasible", *parameters, *metrics, "error_type", "error_message"])
    for n, o in enumerate(outcomes, start=1):
        values = o.metrics or {}
        error = o.error or {}
        writer.writerow(
            [
                o.index,
                o.status,
                "true" if o.feasible else "false",
                *(_cell(o.params.get(name)) for name in parameters),
                *(_cell(values.get(key)) for key in metrics),
                _cell(error.get("type")),
                _cell(error.get("message")),
            ]
        )
        if n % ROWS_PER_PIECE == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
