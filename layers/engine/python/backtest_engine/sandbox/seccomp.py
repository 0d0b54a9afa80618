"""The sandbox child's seccomp-BPF filter: an allow list of the system calls a warmed-up strategy needs.

Hand-written (about a hundred lines) rather than through libseccomp: the maintained Python bindings need
``libseccomp.so`` shipped in the Lambda layer and loaded with ``dlopen`` after start-up, and the program
below is small enough to review in one sitting. It is installed last, after every rlimit (see
`confinement`), so even the code that installs it runs before any strategy code.

What the filter does, in order:

1. An architecture other than x86-64 (a 32-bit ``int 0x80`` call, whose numbers differ) kills the process.
2. The system calls a strategy's Python needs once everything is imported are allowed: memory
   (``brk``/``mmap``/``munmap``/``mremap``/``madvise``), reading and writing the two pipes it already holds
   (``read``/``write``/``readv``/``writev``/``pread64``/``lseek``/``fstat``/``newfstatat``/``fcntl``), signals
   and the clock (``rt_sig*``, ``sigaltstack``, ``futex``, ``clock_*``, ``nanosleep``), identity and limits
   queries (``getpid``, ``getuid``, ``getrlimit``/``prlimit64``, ``getrusage``, ``sched_getaffinity``,
   ``uname``, ``sysinfo``), ``getrandom`` and the exits.
3. ``mmap``/``mprotect``/``pkey_mprotect`` are allowed only without ``PROT_EXEC``: no new executable memory.
4. ``kill``/``tkill``/``tgkill`` are allowed only towards the process itself (``abort()`` signals itself).
5. Everything else fails with ``EPERM``: ``open``/``openat``, ``socket``, ``connect``, ``clone``/``fork``/
   ``clone3``/``vfork``, ``execve``/``execveat``, ``ptrace``, ``process_vm_readv``/``writev``, ``prctl``,
   ``seccomp``, ``bpf``, ``io_uring_*``, ``userfaultfd``, ``perf_event_open``, ``memfd_create``, ``pipe``,
   ``dup*``, ``mount``, ``unshare``, ``setns``, ``keyctl``, ``ioctl`` and the rest. A failed call is an
   ``OSError`` in Python (so the strategy's error names its line) rather than a kill, which would look like
   a crash of the runtime.

``newfstatat`` takes a path, so a strategy that got past the language layer could learn whether a file
exists and its size (not its content): glibc implements ``fstat`` with it, so it stays allowed.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
from typing import Final

AUDIT_ARCH_X86_64: Final = 0xC000003E

# x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl; checked against <sys/syscall.h>).
ALLOWED_SYSCALLS: Final[dict[str, int]] = {
    "read": 0,
    "write": 1,
    "close": 3,
    "fstat": 5,
    "poll": 7,
    "lseek": 8,
    "munmap": 11,
    "brk": 12,
    "rt_sigaction": 13,
    "rt_sigprocmask": 14,
    "rt_sigreturn": 15,
    "pread64": 17,
    "readv": 19,
    "writev": 20,
    "select": 23,
    "sched_yield": 24,
    "mremap": 25,
    "madvise": 28,
    "nanosleep": 35,
    "getpid": 39,
    "exit": 60,
    "uname": 63,
    "fcntl": 72,
    "gettimeofday": 96,
    "getrlimit": 97,
    "getrusage": 98,
    "sysinfo": 99,
    "times": 100,
    "getuid": 102,
    "getgid": 104,
    "geteuid": 107,
    "getegid": 108,
    "getppid": 110,
    "sigaltstack": 131,
    "gettid": 186,
    "time": 201,
    "futex": 202,
    "sched_getaffinity": 204,
    "restart_syscall": 219,
    "clock_gettime": 228,
    "clock_getres": 229,
    "clock_nanosleep": 230,
    "exit_group": 231,
    "newfstatat": 262,
    "pselect6": 270,
    "ppoll": 271,
    "prlimit64": 302,
    "getcpu": 309,
    "getrandom": 318,
    "rseq": 334,
}
NO_EXEC_SYSCALLS: Final[dict[str, int]] = {"mmap": 9, "mprotect": 10, "pkey_mprotect": 329}
SELF_SIGNAL_SYSCALLS: Final[dict[str, int]] = {"kill": 62, "tkill": 200, "tgkill": 234}

_SYS_SECCOMP = 317
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_MODE_FILTER = 2
_PROT_EXEC = 0x4

# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_RET_K = 0x06
_RET_KILL_PROCESS = 0x80000000
_RET_ALLOW = 0x7FFF0000
_RET_EPERM = 0x00050000 | errno.EPERM

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian words).
_NR, _ARCH = 0, 4


def _arg_low(index: int) -> int:
    return 16 + 8 * index


def _arg_high(index: int) -> int:
    return 20 + 8 * index


class _Program:
    """A list of BPF instructions whose jumps name labels, resolved by `assemble`."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int | str, int | str, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        self.code.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(self.code):
            jumps = []
            for target in (jt, jf):
                offset = target if isinstance(target, int) else self.labels[target] - pc - 1
                if not 0 <= offset <= 255:
                    raise ValueError(f"BPF jump out of range at {pc}: {offset}")
                jumps.append(offset)
            out += struct.pack("<HBBI", code, jumps[0], jumps[1], k)
        return bytes(out)


def build_filter(own_pid: int) -> bytes:
    """The filter program (struct sock_filter[]) for a process whose pid is `own_pid`."""
    p = _Program()
    p.op(_LD_W_ABS, _ARCH)
    p.op(_JEQ_K, AUDIT_ARCH_X86_64, jt=0, jf="kill")
    p.op(_LD_W_ABS, _NR)
    for nr in ALLOWED_SYSCALLS.values():
        p.op(_JEQ_K, nr, jt="allow")
    for nr in NO_EXEC_SYSCALLS.values():
        p.op(_JEQ_K, nr, jt="prot")
    for nr in SELF_SIGNAL_SYSCALLS.values():
        p.op(_JEQ_K, nr, jt="self")
    p.op(_RET_K, _RET_EPERM)
    # mmap(addr, len, prot, ...), mprotect(addr, len, prot), pkey_mprotect(addr, len, prot, pkey): arg 2.
    p.label("prot")
    p.op(_LD_W_ABS, _arg_low(2))
    p.op(_JSET_K, _PROT_EXEC, jt="deny", jf="allow")
    # kill(pid, sig), tkill(tid, sig), tgkill(tgid, tid, sig): arg 0 must be this (single-threaded) process.
    p.label("self")
    p.op(_LD_W_ABS, _arg_high(0))
    p.op(_JEQ_K, 0, jt=0, jf="deny")
    p.op(_LD_W_ABS, _arg_low(0))
    p.op(_JEQ_K, own_pid & 0xFFFFFFFF, jt="allow", jf="deny")
    p.label("deny")
    p.op(_RET_K, _RET_EPERM)
    p.label("allow")
    p.op(_RET_K, _RET_ALLOW)
    p.label("kill")
    p.op(_RET_K, _RET_KILL_PROCESS)
    return p.assemble()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def supported() -> bool:
    """Whether this build of the filter fits the machine (x86-64 Linux)."""
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def set_no_new_privs(libc: ctypes.CDLL) -> str | None:
    """``prctl(PR_SET_NO_NEW_PRIVS)``; None on success, else why it failed (Lambda is reported to refuse
    ``prctl``)."""
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        return None
    return f"prctl(PR_SET_NO_NEW_PRIVS) failed: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}"


def install(libc: ctypes.CDLL, own_pid: int) -> str | None:
    """Install the filter on the calling (single-threaded) process; None on success, else the reason.

    Needs no-new-privileges (set by `set_no_new_privs` or inherited) or CAP_SYS_ADMIN. Tries the
    ``seccomp(2)`` system call, then ``prctl(PR_SET_SECCOMP)`` on kernels older than 3.17.
    """
    if not supported():
        return f"the seccomp filter is written for x86-64 Linux, not {platform.system()} {platform.machine()}"
    program = build_filter(own_pid)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    if libc.syscall(_SYS_SECCOMP, _SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(fprog)) == 0:
        return None
    first = ctypes.get_errno()
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0:
        return None
    return f"seccomp(SECCOMP_SET_MODE_FILTER) failed: {errno.errorcode.get(first, first)}"
