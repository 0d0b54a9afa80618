"""Run a command as Lambda runs a function's runtime, where it matters to the sandbox: with
no-new-privileges set and a seccomp filter that refuses every `prctl(2)` with EPERM (public reports say
Lambda's own filter does; docs/SANDBOX.md). The zygote and its children then get no parent-death signal
and the runner cannot make itself non-dumpable: what is left to end a killed runner's children is the
zygote noticing its closed channel.

    python tests/lambda_like.py COMMAND [ARG...]      # x86-64 Linux only

The filter is inherited across fork and exec by everything the command starts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
NR_PRCTL = 157  # x86-64
PR_SET_NO_NEW_PRIVS = 38
SYS_SECCOMP = 317
SECCOMP_SET_MODE_FILTER = 1
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
RET_ALLOW, RET_EPERM = 0x7FFF0000, 0x00050000 | errno.EPERM


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def refuse_prctl() -> None:
    program = [
        (LD_W_ABS, 0, 0, 4),  # the architecture
        (JEQ_K, 0, 3, AUDIT_ARCH_X86_64),  # another one: allow everything (the numbers below are x86-64's)
        (LD_W_ABS, 0, 0, 0),  # the system call number
        (JEQ_K, 0, 1, NR_PRCTL),
        (RET_K, 0, 0, RET_EPERM),
        (RET_K, 0, 0, RET_ALLOW),
    ]
    code = b"".join(struct.pack("<HBBI", op, jt, jf, k) for op, jt, jf, k in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    fprog = _Fprog(len(program), ctypes.addressof(buffer))
    if libc.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(fprog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER)")


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python tests/lambda_like.py COMMAND [ARG...]")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise SystemExit("tests/lambda_like.py: x86-64 Linux only")
    refuse_prctl()
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    main(sys.argv)
