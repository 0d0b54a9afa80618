# corpus: data=eth1h
"""Typed event strategy: from __future__ import annotations, typing Optional/List/Dict, annotated
class attributes and a small value class for signals."""

from __future__ import annotations

from typing import Dict, List, Optional


class Signal:
    side: int
    strength: float

    def __init__(self, side: int, strength: float) -> None:
        self.side = side
        self.strength = strength

    def __repr__(self) -> str:
        return f"Signal(side={self.side}, strength={self.strength:.2f})"


def compute_signal(closes: List[float], fast: int, slow: int) -> Optional[Signal]:
    if len(closes) < slow:
        return None
    f = sum(closes[-fast:]) / fast
    s = sum(closes[-slow:]) / slow
    spread = (f - s) / s
    if abs(spread) < 0.002:
        return Signal(0, 0.0)
    return Signal(1 if spread > 0 else -1, min(1.0, abs(spread) * 50))


def initialize(ctx) -> None:
    cfg: Dict[str, int] = {"fast": 12, "slow": 48}
    ctx.cfg = cfg
    ctx.history: List[float] = []


def on_bar(ctx, bar) -> None:
    ctx.history.append(float(bar.close))
    sig = compute_signal(ctx.history, ctx.cfg["fast"], ctx.cfg["slow"])
    if sig is None:
        return
    if sig.side > 0:
        ctx.buy()
    elif sig.side < 0:
        ctx.sell()
    else:
        ctx.close()
