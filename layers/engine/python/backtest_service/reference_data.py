"""Use cases of the symbols function: what can be backtested, how each metric is computed, health.
All from the engine's single declarations (`catalog`, `metric_definitions`); no numpy, no pandas."""

from __future__ import annotations

from functools import cache

from backtest_engine.catalog import HISTORY_END, HISTORY_START, SYMBOLS, TIMEFRAME_DESCRIPTIONS, TIMEFRAMES
from backtest_engine.metric_definitions import metric_definitions
from backtest_service.api_models import (
    DateRangeInfo,
    HealthResponse,
    MetricDefinition,
    MetricDefinitionsResponse,
    SymbolInfo,
    SymbolsResponse,
    TimeframeInfo,
)


def market_data(*, max_bars: int) -> SymbolsResponse:
    return SymbolsResponse(
        symbols=[
            SymbolInfo(
                symbol=s.symbol,
                name=s.name,
                asset_class=s.asset_class,
                calendar=s.calendar,
                session=s.session,
                lot_size=s.lot_size,
                periods_per_year=s.periods_per_year,
            )
            for s in SYMBOLS.values()
        ],
        timeframes=[
            TimeframeInfo(timeframe=tf, minutes=minutes, description=TIMEFRAME_DESCRIPTIONS[tf])
            for tf, minutes in TIMEFRAMES.items()
        ],
        date_range=DateRangeInfo(start=HISTORY_START, end=HISTORY_END),
        max_bars=max_bars,
    )


@cache
def metric_catalog() -> MetricDefinitionsResponse:
    return MetricDefinitionsResponse(metrics=[MetricDefinition.model_validate(d) for d in metric_definitions()])


def health(*, service: str, version: str) -> HealthResponse:
    return HealthResponse(status="ok", service=service, version=version)
