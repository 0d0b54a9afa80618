"""Operations tools for a deployed stack (and the local one): `backtest replay`."""
