"""`exp` and `log` built only from IEEE-754 basic operations, so they give the same bits everywhere.

numpy's own `np.exp`/`np.log`/`np.power` dispatch to CPU-specific SIMD kernels (AVX2, AVX-512, SVML)
or to the platform's libm, which may differ in the last bit from one machine to another; the synthetic
market data compounds such differences over thousands of days. These versions use only `+ - * /`,
`rint`, `frexp` and `ldexp`, which IEEE-754 defines exactly, one numpy ufunc per operation (no fused
multiply-add), so the result depends on nothing but the input. The accuracy is a few units in the last
place (relative error < 1e-15), which is all a simulation needs.
"""

from __future__ import annotations

import math

import numpy as np

# ln 2 split so that n * _LN2_HI is exact for |n| < 2**20 (the low bits of _LN2_HI are zero).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SQRT_HALF = 0.70710678118654752440

# Taylor coefficients of exp on |r| <= ln2/2, highest degree first (error term r**13/13! < 3e-16).
_EXP_COEFFS = tuple(1.0 / math.factorial(k) for k in range(12, -1, -1))
# log(m) = 2 s (1 + z/3 + z**2/5 + ...), s = (m-1)/(m+1), z = s*s <= 0.0295 (error term z**11/23 < 1e-17).
_LOG_COEFFS = tuple(1.0 / (2 * k + 1) for k in range(10, -1, -1))


def exp(x: np.ndarray | float) -> np.ndarray:
    """e**x for float64 input (any shape), bit-reproducible on every platform."""
    x = np.asarray(x, dtype=np.float64)
    n = np.rint(x * _INV_LN2)
    r = x - n * _LN2_HI
    r -= n * _LN2_LO
    p = np.full_like(r, _EXP_COEFFS[0])
    for c in _EXP_COEFFS[1:]:
        p *= r
        p += c
    return np.ldexp(p, n.astype(np.int32))


def log(x: np.ndarray | float) -> np.ndarray:
    """Natural log of positive float64 input (any shape), bit-reproducible on every platform."""
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(x)  # x = m * 2**e, m in [0.5, 1)
    small = m < _SQRT_HALF
    m = np.where(small, m + m, m)  # m in [sqrt(1/2), sqrt(2)), doubling is exact
    ef = e.astype(np.float64)
    ef -= small
    s = m - 1.0  # exact (Sterbenz)
    s /= m + 1.0
    z = s * s
    p = np.full_like(z, _LOG_COEFFS[0])
    for c in _LOG_COEFFS[1:]:
        p *= z
        p += c
    p *= s + s
    lo = ef * _LN2_LO
    lo += p
    out = ef * _LN2_HI
    out += lo
    return out


def power(x: np.ndarray | float, y: float) -> np.ndarray:
    """x**y for positive x, bit-reproducible (as exp(y * log x))."""
    return exp(log(x) * y)
