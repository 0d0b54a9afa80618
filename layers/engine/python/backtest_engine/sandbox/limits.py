"""How much a strategy may use: CPU, wall-clock time, memory, output and recursion depth."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxLimits:
    """Limits applied to one strategy run (see `confinement.confine`, `Supervisor.run`, `StrategyLog`).

    - ``cpu_seconds``: CPU time of the child process (``RLIMIT_CPU``, rounded up to whole seconds;
      the kernel ends the child with SIGXCPU) → `StrategyTimeout`.
    - ``wall_seconds``: the parent kills the child after this much elapsed time → `StrategyTimeout`.
    - ``memory_mb``: address space the child may add to what it had when it confined itself (``RLIMIT_AS`` =
      VmSize then + this budget; numpy's BLAS reserves a lot of virtual memory, so an absolute cap would break
      it) → `StrategyMemoryError`.
    - ``max_log_lines`` / ``max_log_bytes``: what ``print`` and ``ctx.log`` may write in total
      → `StrategyOutputLimit`.
    - ``recursion_limit``: Python's recursion limit in the child → `StrategyError` naming recursion.
    """

    cpu_seconds: float = 60.0
    wall_seconds: float = 120.0
    memory_mb: int = 1536
    max_log_lines: int = 2000
    max_log_bytes: int = 256 * 1024
    recursion_limit: int = 2000

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_mb", "max_log_lines", "max_log_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")
        if self.recursion_limit < 100:
            raise ValueError(f"SandboxLimits.recursion_limit must be at least 100, got {self.recursion_limit}")
