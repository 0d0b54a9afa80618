"""The strategy sandbox: RestrictedPython policy, safe module views, bounded output and a child process
with CPU, memory and environment limits.

``compile_strategy`` checks and compiles (cheap, no numpy import); ``CompiledStrategy.load`` runs the
module body in fresh restricted globals; ``run_isolated`` runs a callable in a forked, limited child;
``translate_exception`` maps what strategy code raised to the typed errors of ``backtest_engine.errors``.
"""

from backtest_engine.sandbox.compiler import CompiledStrategy, compile_strategy
from backtest_engine.sandbox.faults import translate_exception
from backtest_engine.sandbox.isolation import run_isolated
from backtest_engine.sandbox.limits import SandboxLimits
from backtest_engine.sandbox.log import StrategyLog
from backtest_engine.sandbox.policy import ALLOWED_MODULES, PolicyViolation, register_plain_type

__all__ = [
    "ALLOWED_MODULES",
    "CompiledStrategy",
    "PolicyViolation",
    "SandboxLimits",
    "StrategyLog",
    "compile_strategy",
    "register_plain_type",
    "run_isolated",
    "translate_exception",
]
