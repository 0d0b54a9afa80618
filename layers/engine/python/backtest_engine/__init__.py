"""The pure backtesting engine: market data, sandboxed strategies, fills, metrics. No AWS in here."""

__version__ = "0.1.0"
