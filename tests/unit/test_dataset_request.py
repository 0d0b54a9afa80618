"""`BacktestRequest.dataset_id`: a dataset in place of a symbol, exactly one of the two."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backtest_engine.models import DATASET_SYMBOL, BacktestRequest

CODE = "def generate_signals(data, params):\n    return [0.0] * len(data.close)\n"


def test_a_dataset_request_has_the_dataset_symbol_and_no_history_range() -> None:
    request = BacktestRequest.model_validate(
        {"strategy_code": CODE, "dataset_id": "d-1", "start_date": "2010-01-01", "end_date": "2010-12-31"}
    )
    assert (request.symbol, request.dataset_id) == (DATASET_SYMBOL, "d-1")
    # stored and read back by the runner as it was
    again = BacktestRequest.model_validate(request.model_dump(mode="json"), context={"max_bars": None})
    assert again == request


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"dataset_id": "d-1", "symbol": "AAPL"}, ("dataset_id",), "not both"),
        ({"symbol": DATASET_SYMBOL}, (), "or give a dataset_id"),
        ({"dataset_id": "../etc"}, ("dataset_id",), "pattern"),
    ],
)
def test_symbol_and_dataset_are_exclusive(body: dict[str, str], field: tuple[str, ...], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        BacktestRequest.model_validate({"strategy_code": CODE, **body})
    (first,) = err.value.errors()
    assert first["loc"] == field and needle in first["msg"]


def test_the_cli_label_of_custom_data_still_works() -> None:
    request = BacktestRequest.model_validate(
        {"strategy_code": CODE, "symbol": DATASET_SYMBOL}, context={"custom_data": True}
    )
    assert request.symbol == DATASET_SYMBOL and request.dataset_id is None
