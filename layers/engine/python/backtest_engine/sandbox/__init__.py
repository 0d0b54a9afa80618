"""The strategy sandbox. Two layers, neither trusting the other:

- the operating system (the boundary): a child forked from a secret-free zygote (`zygote`), confined by
  rlimits and a seccomp filter (`confinement`, `seccomp`), talking to the trusted side (`supervisor`) only
  through typed, size-checked frames (`wire`) that carry its decisions, never results;
- the language (the first layer, for clear early errors): RestrictedPython and safe module views
  (`compiler`, `policy`). ``compile_strategy`` checks and compiles (cheap, no numpy import);
  ``CompiledStrategy.load`` runs the module body in fresh restricted globals; ``translate_exception`` maps
  what strategy code raised to the typed errors of ``backtest_engine.errors``.
"""

from backtest_engine.sandbox.compiler import CompiledStrategy, compile_strategy
from backtest_engine.sandbox.faults import translate_exception
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
    "translate_exception",
]
