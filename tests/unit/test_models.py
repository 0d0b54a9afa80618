"""Request validation: every bad field gives a message that names it and says what to do."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from backtest_engine.catalog import MAX_BARS, estimate_bars
from backtest_engine.models import MAX_CODE_BYTES, BacktestRequest

CODE = "def generate_signals(data, params):\n    return np.zeros(len(data))\n"


def errors_of(**fields):
    with pytest.raises(ValidationError) as err:
        BacktestRequest.model_validate({"strategy_code": CODE, **fields})
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in err.value.errors()]


def test_defaults_give_a_sensible_run():
    r = BacktestRequest(strategy_code=CODE)
    assert (r.symbol, r.timeframe, r.initial_capital, r.commission) == ("AAPL", "1h", 10_000.0, 0.001)
    assert r.start_date == date(2024, 1, 1) and r.end_date == date(2024, 12, 31)


def test_symbol_is_case_insensitive_and_unknown_symbols_list_the_choices():
    assert BacktestRequest(strategy_code=CODE, symbol="btcusd").symbol == "BTCUSD"
    [(field, msg)] = errors_of(symbol="DOGE")
    assert field == "symbol" and "DOGE" in msg and "AAPL" in msg and "BTCUSD" in msg


@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({"timeframe": "2h"}, "timeframe", "1m"),
        ({"initial_capital": 0}, "initial_capital", "greater than 0"),
        ({"initial_capital": -5}, "initial_capital", "greater than 0"),
        ({"commission": 0.5}, "commission", "less than or equal to 0.1"),
        ({"slippage": -0.01}, "slippage", "greater than or equal to 0"),
        ({"strategy_code": "   "}, "strategy_code", "empty"),
        ({"strategy_code": "x" * (MAX_CODE_BYTES + 1)}, "strategy_code", "64 KiB"),
        ({"parameters": {"bad name": 1}}, "parameters", "identifier"),
        ({"parameters": {"x": [1, 2]}}, "parameters.x", ""),
        ({"name": "tab\there"}, "name", "control characters"),
        ({"unexpected": 1}, "unexpected", "Extra inputs"),
    ],
)
def test_bad_fields_are_named(fields, field, needle):
    errors = errors_of(**fields)
    assert any(f.startswith(field) and needle in msg for f, msg in errors), errors


def test_reversed_dates_and_dates_outside_the_history():
    [(_, msg)] = errors_of(start_date="2024-05-01", end_date="2024-04-01")
    assert "before start_date" in msg
    [(_, msg)] = errors_of(start_date="1990-01-01", end_date="1990-02-01")
    assert "available history" in msg


def test_bar_cap_names_the_size_and_the_fix():
    [(_, msg)] = errors_of(symbol="BTCUSD", timeframe="1m", start_date="2018-01-01", end_date="2025-12-31")
    assert f"{MAX_BARS:,}" in msg and "shorten the range" in msg
    # the CLI may lift the cap
    r = BacktestRequest.model_validate(
        {
            "strategy_code": CODE,
            "symbol": "BTCUSD",
            "timeframe": "1m",
            "start_date": "2018-01-01",
            "end_date": "2025-12-31",
        },
        context={"max_bars": None},
    )
    assert r.timeframe == "1m"


def test_custom_data_lifts_symbol_and_date_checks():
    r = BacktestRequest.model_validate(
        {"strategy_code": CODE, "symbol": "mydata", "start_date": "1990-01-01", "end_date": "1990-02-01"},
        context={"custom_data": True},
    )
    assert r.symbol == "MYDATA"


def test_code_size_counts_utf8_bytes():
    code = "# " + "é" * (MAX_CODE_BYTES // 2)  # 2 bytes per character
    [(_, msg)] = errors_of(strategy_code=code)
    assert "bytes" in msg


def test_estimate_bars_counts_sessions():
    # one week of equity 1m bars: 5 sessions × 390 minutes
    assert estimate_bars("AAPL", "1m", date(2024, 1, 1), date(2024, 1, 7)) == 5 * 390
    assert estimate_bars("AAPL", "1h", date(2024, 1, 1), date(2024, 1, 7)) == 5 * 7
    assert estimate_bars("BTCUSD", "1d", date(2024, 1, 1), date(2024, 12, 31)) == 366
    assert estimate_bars("ETHUSD", "4h", date(2024, 1, 1), date(2024, 1, 1)) == 6
