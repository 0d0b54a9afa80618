"""The sandbox's process boundary: how a result crosses from the child to the parent.

The child writes a pickle (protocol 5) to the pipe with numpy buffers out of band: a small header (sizes),
the pickle body, then each array's memory as is. The parent checks the sizes against a cap before it
allocates anything, then reads each buffer straight into a writable bytearray the array wraps (no
extra copies).

The parent must not trust those bytes: a child whose sandbox was broken could send any pickle. So it
unpickles with an allow list: builtins containers, datetime, numpy dtypes/scalars and arrays (array
classes only through numpy's ``_reconstruct``, so a pickle cannot call ``ndarray(..., buffer=raw)``
or ``memmap(path)``), pandas data structures (index, series, frame, extension arrays and dtypes,
timestamps, offsets), and from `backtest_engine` only data classes (dataclasses, pydantic models,
NamedTuples, enums, `EngineError`s). Anything else is refused with an `UnpicklingError` naming it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import io
import os
import pickle
import struct
import sys
from typing import Any

from backtest_engine.errors import EngineError

_EXACT: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", name)
        for name in (
            "complex",
            "set",
            "frozenset",
            "slice",
            "range",
            "bytearray",
            "bytes",
            "object",
            "int",
            "float",
            "str",
            "list",
            "dict",
            "tuple",
            "bool",
        )
    }
    | {("datetime", name) for name in ("datetime", "date", "time", "timedelta", "timezone")}
    | {("collections", name) for name in ("OrderedDict", "deque")}
    | {("copyreg", "_reconstructor"), ("zoneinfo", "ZoneInfo"), ("backtest_engine.errors", "_rebuild")}
    | {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
    }
    | {
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"),
        ("pandas.core.indexes.period", "_new_PeriodIndex"),
        ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
        ("pandas._libs.tslibs.nattype", "_nat_unpickle"),
    }
)
_EXACT_CLASSES: frozenset[tuple[str, str]] = frozenset(
    {
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas.core.internals.managers", "SingleBlockManager"),
    }
)


@functools.cache
def _data_bases() -> tuple[type, ...]:
    """numpy/pandas classes whose subclasses are plain data containers (imported lazily: a parent that
    never received such data never imports them)."""
    import numpy as np
    import pandas as pd
    from pandas.api.extensions import ExtensionArray, ExtensionDtype
    from pandas.tseries.offsets import BaseOffset

    return (
        np.generic,
        np.dtype,
        pd.Index,
        pd.Series,
        pd.DataFrame,
        ExtensionArray,
        ExtensionDtype,
        pd.Timestamp,
        pd.Timedelta,
        pd.Period,
        pd.Interval,
        BaseOffset,
    )


class _ArrayClass:
    """Stands for an ndarray subclass inside a pickle. Only `_reconstruct` accepts it: a pickle cannot call
    ``ndarray(shape, dtype=object, buffer=raw)`` (object pointers from raw bytes) or ``memmap(path)``."""

    __slots__ = ("cls",)

    def __init__(self, cls: Any) -> None:
        self.cls = cls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError(f"the sandbox result tries to construct {self.cls.__name__} directly")


def _reconstruct_array(subtype: Any, shape: Any, dtype: Any) -> Any:
    from numpy._core.multiarray import _reconstruct

    if not isinstance(subtype, _ArrayClass):
        raise pickle.UnpicklingError("malformed array in the sandbox result")
    return _reconstruct(subtype.cls, shape, dtype)


def _is_engine_data_class(obj: Any) -> bool:
    if not isinstance(obj, type) or not obj.__module__.startswith("backtest_engine."):
        return False
    if dataclasses.is_dataclass(obj) or issubclass(obj, EngineError | enum.Enum):
        return True
    if issubclass(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple
        return True
    return any(base.__module__.startswith("pydantic") and base.__name__ == "BaseModel" for base in obj.__mro__)


class BoundaryUnpickler(pickle.Unpickler):
    """Unpickles only data types (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        refused = pickle.UnpicklingError(
            f"the sandbox result holds {module}.{name}, which may not cross the process boundary; return plain data "
            "(numbers, strings, lists, dicts, numpy arrays, pandas objects, backtest_engine dataclasses)"
        )
        if "." in name or (name.startswith("__") and (module, name) not in _EXACT):
            raise refused
        root = module.partition(".")[0]
        obj: Any
        if (module, name) in _EXACT:
            obj = super().find_class(module, name)
            if root == "numpy" and name == "_reconstruct":
                return _reconstruct_array
        elif module.startswith("backtest_engine."):
            obj = getattr(importlib.import_module(module), name, None)
            if not _is_engine_data_class(obj):
                raise refused
        elif root in ("numpy", "pandas") and not module.startswith(_EXCLUDED_MODULES):
            obj = getattr(importlib.import_module(module), name, None)
            import numpy as np

            if not isinstance(obj, type):
                raise refused
            if issubclass(obj, np.ndarray) and not issubclass(obj, np.memmap):
                return _ArrayClass(obj)
            if (module, name) not in _EXACT_CLASSES and not issubclass(obj, _data_bases()):
                raise refused
        else:
            raise refused
        if root == "numpy" and obj is getattr(sys.modules.get("numpy"), "ndarray", None):
            return _ArrayClass(obj)
        return obj


_EXCLUDED_MODULES = (
    "numpy.lib",
    "numpy.ctypeslib",
    "numpy.testing",
    "numpy.f2py",
    "pandas.io",
    "pandas.plotting",
    "pandas.util",
    "pandas.testing",
    "pandas._testing",
    "pandas.compat",
    "pandas.core.computation",
    "pandas._config",
)


def send(fd: int, payload: Any) -> None:
    """Child side: pickle `payload` and write it, with its out-of-band buffers, to the pipe `fd`."""
    buffers: list[pickle.PickleBuffer] = []
    body = pickle.dumps(payload, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    header = _FIXED.pack(len(body), len(raws)) + struct.pack(f"!{len(raws)}Q", *(r.nbytes for r in raws))
    for chunk in (header, body, *raws):
        _write_all(fd, chunk)


def receive(fd: int, max_bytes: int) -> Any:
    """Parent side: read what `send` wrote to the pipe `fd`, refusing more than `max_bytes` in total and
    any global that is not on the allow list. Raises EOFError when the child died before sending it all."""
    body_len, count = _FIXED.unpack(_read_exact(fd, bytearray(_FIXED.size)))
    if count > _MAX_BUFFERS:
        raise pickle.UnpicklingError(f"the sandbox result holds more than {_MAX_BUFFERS} arrays; return fewer")
    sizes = struct.unpack(f"!{count}Q", _read_exact(fd, bytearray(8 * count)))
    if body_len + sum(sizes) > max_bytes:
        raise pickle.UnpicklingError(f"the sandbox result is larger than {max_bytes >> 20} MiB; return less data")
    body = _read_exact(fd, bytearray(body_len))
    buffers = [_read_exact(fd, bytearray(size)) for size in sizes]
    return BoundaryUnpickler(io.BytesIO(body), buffers=buffers).load()


_FIXED = struct.Struct("!QI")  # body length, number of out-of-band buffers
_MAX_BUFFERS = 100_000


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, buf: bytearray) -> bytearray:
    view = memoryview(buf)
    while view:
        n = os.readv(fd, [view])
        if n == 0:
            raise EOFError("the sandbox process ended before sending its whole result")
        view = view[n:]
    return buf
