"""The operating-system policy of a sandbox child, in one place: what it keeps, what it loses, in order.

The child is forked from the zygote (`zygote.py`), a process exec'd with a minimal environment before the
runner created any AWS client, so it holds no secret to begin with. `confine` then takes away the means to
reach anything outside it, before the first line of strategy code runs. Layer by layer:

| layer | how | holds without `prctl`? |
|---|---|---|
| no secret | exec'd zygote, environment allow list (`zygote.child_environment`), no AWS client ever made | yes |
| no descriptors | 0/1/2 → /dev/null, every other fd closed but the job's two pipes (by the zygote) | yes |
| identity | root drops to ``nobody`` (65534) with no groups, so the limits below bind (root ignores some) | yes |
| no new file descriptor | ``RLIMIT_NOFILE`` 0: no file, socket, pipe or ``/proc`` read (the pipes stay open) | yes |
| no new process or thread | ``RLIMIT_NPROC`` 0 (binds a non-root user only, hence the identity layer) | yes |
| no file growth, no core | ``RLIMIT_FSIZE`` 0, ``RLIMIT_CORE`` 0, ``RLIMIT_MEMLOCK`` 0, ``RLIMIT_MSGQUEUE`` 0 | yes |
| CPU and memory | ``RLIMIT_CPU`` (SIGXCPU, SIGKILL 2 s later), ``RLIMIT_AS`` = size now + budget | yes |
| dies with its parent | ``PR_SET_PDEATHSIG`` SIGKILL where ``prctl`` works, else the zygote kills (*) | partly |
| not readable by its siblings | ``PR_SET_DUMPABLE`` 0 (a root that dropped to ``nobody`` is non-dumpable anyway) | no |
| system calls | seccomp allow list (`seccomp.py`) after ``PR_SET_NO_NEW_PRIVS``, or when it is already set | no |

The trusted side hardens itself too (`harden_trusted_process`): the runner, which holds the credentials,
makes itself non-dumpable where ``prctl`` works, so no process of its user can ``ptrace`` it, read its
``/proc/<pid>/mem`` or ``environ``, or ``process_vm_readv`` its memory.

(*) the zygote kills every child's process group when the runner's channel closes.

Hard limits are lowered with the soft ones, so the child cannot raise them again. The "core" is every
row but the last two: when any part of it cannot be applied the child refuses to run strategy code
(`Layers.core` is False and the trusted side fails the job as an infrastructure fault).
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import signal
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from backtest_engine.sandbox import seccomp

NOBODY = 65534
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_CPU_HARD_EXTRA_SECONDS = 2
AS_HEADROOM_BYTES = 64 << 20  # above the soft memory limit, for reporting a MemoryError after the run

# Limits set to zero: (name, resource).
ZERO_LIMITS: tuple[tuple[str, int], ...] = (
    ("NOFILE", resource.RLIMIT_NOFILE),
    ("NPROC", resource.RLIMIT_NPROC),
    ("FSIZE", resource.RLIMIT_FSIZE),
    ("CORE", resource.RLIMIT_CORE),
    ("MEMLOCK", resource.RLIMIT_MEMLOCK),
    ("MSGQUEUE", resource.RLIMIT_MSGQUEUE),
)


@dataclass
class Layers:
    """Which layers a child runs under (sent to the trusted side before any strategy code runs)."""

    core: bool = False
    uid: int = -1
    dropped_root: bool = False
    rlimits: dict[str, int] = field(default_factory=dict)
    parent_death_signal: bool = False
    non_dumpable: bool = False
    no_new_privs: bool = False
    seccomp: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)  # the already-mapped C library: no file is opened


def _status_fields() -> dict[str, str]:
    """/proc/self/status as a dict (read before the descriptor limit makes it unreadable)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def _set(which: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def confine(*, cpu_seconds: float, memory_bytes: int, use_seccomp: bool, recursion_limit: int) -> Layers:
    """Apply every layer to the calling process (a freshly forked, single-threaded child) and report them.

    Never raises: a layer that fails is reported (`Layers.notes`) and, for the core, `Layers.core` stays
    False so the caller refuses to run the strategy.
    """
    layers = Layers()
    # The zygote, while this child still dies with it (armed at fork; dropping root below disarms it).
    parent = os.getppid()
    status = _status_fields()
    libc = _libc()
    try:
        vm_size = int(status.get("VmSize", "0 kB").split()[0]) * 1024
    except (ValueError, IndexError):
        vm_size = 0
    core_ok = vm_size > 0
    if not core_ok:
        layers.notes.append("could not read the process size from /proc/self/status")

    # Limits first: set before the identity change, RLIMIT_NPROC 0 also makes a later execve fail (EAGAIN).
    try:
        cpu = max(1, math.ceil(cpu_seconds))
        _set(resource.RLIMIT_CPU, cpu, cpu + _CPU_HARD_EXTRA_SECONDS)
        layers.rlimits["CPU"] = cpu
        if vm_size:
            budget = vm_size + memory_bytes
            _set(resource.RLIMIT_AS, budget, budget + AS_HEADROOM_BYTES)
            layers.rlimits["AS"] = budget
        for name, which in ZERO_LIMITS:
            _set(which, 0, 0)
            layers.rlimits[name] = resource.getrlimit(which)[1]
    except (OSError, ValueError) as exc:
        core_ok = False
        layers.notes.append(f"could not set a resource limit: {exc}")
    if any(layers.rlimits.get(name, -1) != 0 for name, _ in ZERO_LIMITS):
        core_ok = False
    # Identity: root ignores RLIMIT_NPROC and could raise hard limits again.
    if os.getuid() == 0 or os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            layers.dropped_root = True
        except OSError as exc:
            core_ok = False
            layers.notes.append(f"could not drop root: {exc}")
    layers.uid = os.getuid()

    # Dies with its parent (armed again after the identity change, which clears it). Reported, not required.
    layers.parent_death_signal = set_parent_death_signal(libc)
    if not layers.parent_death_signal:
        layers.notes.append(f"prctl(PR_SET_PDEATHSIG) refused (errno {ctypes.get_errno()})")
    if os.getppid() != parent:  # the parent died while the signal was not armed
        os._exit(1)
    layers.non_dumpable = libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 or layers.dropped_root

    no_new_privs_inherited = status.get("NoNewPrivs", "0") == "1"
    seccomp_reason: str | None = None
    if use_seccomp and not seccomp.supported():
        seccomp_reason = "seccomp filter not built for this machine"
    if use_seccomp and seccomp_reason is None and not no_new_privs_inherited:
        seccomp_reason = seccomp.set_no_new_privs(libc)
    layers.no_new_privs = no_new_privs_inherited or (use_seccomp and seccomp_reason is None)

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past FSIZE fails with OSError, not a kill
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    sys.setrecursionlimit(recursion_limit)

    if use_seccomp and seccomp_reason is None:
        seccomp_reason = seccomp.install(libc, os.getpid())
    layers.seccomp = use_seccomp and seccomp_reason is None
    if use_seccomp and seccomp_reason is not None:
        layers.notes.append(seccomp_reason)
    layers.core = core_ok
    return layers


def allow_reporting() -> None:
    """After the strategy: raise the memory limit into its headroom so the result (or a MemoryError) can
    still be encoded and sent."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def set_parent_death_signal(libc: ctypes.CDLL | None = None) -> bool:
    """``PR_SET_PDEATHSIG`` SIGKILL for the calling process; False where ``prctl`` is refused (Lambda)."""
    try:
        return bool((libc or _libc()).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def harden_trusted_process() -> bool:
    """Make the calling (trusted, credential-holding) process non-dumpable; True when that worked."""
    try:
        return bool(_libc().prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
