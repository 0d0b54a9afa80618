"""What restricted strategy code may touch: the guards RestrictedPython calls, safe module views and the
restricted globals a strategy runs in.

The operating system is the trust boundary (DESIGN.md): this layer gives clear, early refusals of the
classic escapes and lets ordinary Python run. RestrictedPython (see `compiler.py`) rewrites ``a.b`` into
``_getattr_(a, "b")``, ``a.b = v`` / ``a[k] = v`` into ``_write_(a).b = v`` (``_write_private_(a, "_b")``
for a private name), ``print`` into ``_print._call_print``, ``x += y`` into ``x = _inplacevar_("+=", x, y)``.
This module supplies those guards.

Attribute reads (``_getattr_``, also behind ``getattr`` / ``hasattr``):

- the strategy's own classes (made by a class statement, see `build_class`) and their instances: every
  public and private name; special methods (``__init__``, ``__len__``, ...) and ``super()``;
- everything: ``__name__``, ``__qualname__``, ``__doc__``, ``__module__`` and ``__class__`` (what the safe
  ``type()`` gives); every other special attribute (``__globals__``, ``__code__``, ``__subclasses__``,
  ``__mro__``, ``__dict__``, ``__self__``, ``__reduce__``...) is refused, and so are frame/code attributes
  (``gi_frame``, ``tb_frame``, ``f_back``...);
- library objects (numpy, pandas, talib, builtins such as ``str``): public names, except what reaches files,
  serialization, plotting or dynamic code (``ndarray.tofile``, ``DataFrame.to_csv``, ``.plot``, ``.style``,
  ``df.eval``, pandas methods given a method name as a string such as ``s.apply("to_csv")``); private
  names are refused. These deny lists apply to library objects only, never to names the strategy chose on
  its own objects, on dicts, on ``ctx`` or ``bar``.
- ``str.format`` / ``format_map``: allowed, with the format string checked first (a field that walks
  attributes or items, ``{0.__class__}`` / ``{0[x]}``, is refused);
- an attribute whose value is a module becomes that module's view, or is refused when the module is not
  allowed;
- pandas objects never answer a special name from a label (a Series labelled ``__array_interface__``), for
  anyone: see `_pandas_labels_are_not_special_names`.

Objects whose exact type is "plain" (numbers, lists, dicts, numpy scalars, the runtime's ``ctx``, ``bar``
and series views registered with `register_plain_type`, and the strategy's own classes) take a fast path
that the compiler inlines (``StrategyTransformer``).

Modules are reached only through `ModuleView`s, each with a deny list (numpy/pandas file I/O, internals,
options) or an allow list (talib, ``numpy.lib``, the standard library modules). ``import`` goes through a
guarded ``__import__`` that hands out the same views; a C-level import made by a library while strategy
code is on the stack (numpy's ``arr.mean()`` imports ``numpy._core._methods``) is told apart by its list
``fromlist`` and imported for real (see `guarded_import`).

Writes (``_write_``): ordinary objects, the strategy's own classes and instances (private names only on
those), numpy arrays through a proxy that refuses re-pointing ``strides``/``data``-like attributes,
``talib.abstract.Function`` objects through a proxy that allows only ``parameters``, ``input_arrays`` and
``input_names``; modules, views, library classes, functions, builtins and the engine's own errors are
read-only. Special attributes are never written. numpy memory footguns stay closed: object arrays over raw
buffers, ``ndarray.resize(refcheck=False)`` (dangling views), ``ndarray.base`` (the whole series).

Classes: a class statement may define ordinary special methods (see `DEFINABLE_DUNDERS`); it may not
define the hooks that turn objects into raw memory for numpy or buffers (``__array_interface__``,
``__buffer__``, ``__dlpack__``...), change class creation (``__init_subclass__``, ``__set_name__``,
``__class_getitem__``), intercept every attribute read (``__getattribute__``), pickle (``__reduce__``) or
run at unpredictable times (``__del__``); a ``__getattr__`` it defines never sees private or special names.
No metaclass, no class keywords.

``type(x)`` returns the class of a value (not for classes, modules, functions, frames...; the engine's
own error classes come back as a guard that can be named and tested but not constructed); 3-argument
``type`` is refused. ``open``, ``eval``, ``exec``, ``compile``, ``globals``, ``locals``, ``vars``, ``dir``,
``input``, ``help``, ``breakpoint``, ``memoryview``, ``exit`` are stubs that refuse.

A run-time refusal raises `PolicyViolation`; `translate_exception` turns it into
``errors.StrategyPolicyViolation`` naming the line. Nothing here imports numpy, pandas or talib at import
time (`compile_strategy` must stay cheap); they are imported when the first globals are built.
"""

from __future__ import annotations

import builtins
import collections
import collections.abc
import dataclasses
import functools
import importlib
import itertools
import math
import operator
import string
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from RestrictedPython.Guards import safe_builtins
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from backtest_engine.errors import EngineError
from backtest_engine.sandbox.log import StrategyLog

STRATEGY_FILENAME = "<strategy>"  # the code object filename of strategy code (compiler.FILENAME)
STRATEGY_MODULE = "strategy"  # ``__name__`` in a strategy's globals, so ``__module__`` of its classes


class PolicyViolation(Exception):
    """Strategy code tried, at run time, something the sandbox refuses. The message says what and why."""


class ImportRefused(PolicyViolation, ImportError):
    """An ``import`` of a module a strategy may not use."""


# ---- the policy, as data ----------------------------------------------------------------------------

ALLOWED_MODULES: tuple[str, ...] = (
    "numpy",
    "numpy.random",
    "numpy.linalg",
    "numpy.fft",
    "numpy.lib",
    "numpy.lib.stride_tricks",
    "numpy.lib.scimath",
    "pandas",
    "talib",
    "talib.abstract",
    "talib.stream",
    "math",
    "statistics",
    "datetime",
    "collections",
    "collections.abc",
    "itertools",
    "functools",
    "typing",
    "dataclasses",
    "__future__",
)
ALLOWED_MODULES_TEXT = (
    "numpy (with numpy.random, numpy.linalg, numpy.fft, numpy.lib.stride_tricks), pandas, talib (with "
    "talib.abstract, talib.stream), math, statistics, datetime, collections, itertools, functools, typing, "
    "dataclasses and __future__"
)

_FILES = "it reads or writes files, and a strategy has no file access"
_SERIALIZE = "it writes files or serializes objects, and a strategy has no file access"
_INTERNAL = "it is internal machinery, not part of what a strategy may use"
_NO_MODULE = f"that module is not available to strategies (allowed: {ALLOWED_MODULES_TEXT})"
_EVAL = "it evaluates code given as a string; write the expression in Python instead"
_OPTIONS = "library options are fixed for strategies"
_PLOT = "plotting is not available in a backtest; use print() or ctx.log() for output"
_PRIVATE = "names starting with '_' are private"

# Names refused on every object, the strategy's own included: frame, code and generator internals.
INTERNAL_ATTRIBUTES: frozenset[str] = frozenset(INSPECT_ATTRIBUTES)
_INTERNAL_REASON = "it exposes interpreter internals (frames, code, globals)"

# Names refused on library objects (numpy, pandas, talib, builtins such as str), never on the strategy's
# own objects, dicts, ctx or bar. Checked on the fast path for numpy scalars too.
LIBRARY_DENY: dict[str, str] = {
    # Cython / Python 2 spellings of function internals
    "func_globals": "it exposes a function's globals",
    "func_code": "it exposes a function's code",
    "func_closure": "it exposes a function's closure",
    "func_defaults": "it exposes a function's internals",
    "func_dict": "it exposes a function's internals",
    "im_func": "it exposes a method's internals",
    "im_self": "it exposes a method's internals",
    "mro": "class internals are not available to strategies; use isinstance() to test types",
    # raw memory and pickling on numpy objects
    "tofile": _FILES,
    "dump": _SERIALIZE,
    "dumps": _SERIALIZE,
    "ctypes": "raw memory access is not allowed",
    "cffi": "raw memory access is not allowed",
    "capsule": "raw memory access is not allowed",
    # pandas writers and serializers (pandas objects also refuse any other `to_*` not in PANDAS_TO_ALLOWED)
    **{
        f"to_{kind}": _SERIALIZE
        for kind in [
            "csv",
            "pickle",
            "parquet",
            "excel",
            "hdf",
            "sql",
            "json",
            "html",
            "latex",
            "feather",
            "stata",
            "clipboard",
            "markdown",
            "xml",
            "orc",
            "gbq",
            "xarray",
        ]
    },
    "to_string": "it can write files; use str(x) or print(x) instead",
    "plot": _PLOT,
    "hist": _PLOT,
    "boxplot": _PLOT,
    "style": "styled output renders files and HTML; use print() or ctx.log()",
    "eval": _EVAL,
    "query": _EVAL + " (boolean indexing: df[df.close > df.open])",
}
_LIBRARY_DENY_NAMES = frozenset(LIBRARY_DENY)

# In-memory `to_*` conversions of pandas objects. Every other `to_*` (present or future) is refused.
PANDAS_TO_ALLOWED = frozenset(
    [
        "to_numpy",
        "to_list",
        "to_dict",
        "to_frame",
        "to_series",
        "to_records",
        "to_period",
        "to_timestamp",
        "to_pydatetime",
        "to_datetime64",
        "to_flat_index",
        "to_offset",
        "to_timedelta64",
        "to_pytimedelta",
        "to_julian_date",
        "to_tuples",
        "to_dense",
        "to_coo",
    ]
)

# Pandas methods that accept a function *name* as a string and look it up with a plain getattr
# (``s.apply("to_csv", path)``): their string arguments are checked against the policy first.
_PANDAS_STRING_DISPATCH = frozenset({"agg", "aggregate", "apply", "transform", "map", "applymap", "pipe"})

# ---- special ("dunder") names ------------------------------------------------------------------------

# Readable on anything (``__class__`` gives what the safe ``type()`` gives).
READABLE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__", "__module__", "__class__"})
# Readable on module views.
MODULE_DUNDERS = frozenset({"__name__", "__doc__", "__version__"})

# Special methods a strategy class may define (and read on its own objects, or through ``super()``).
_OPERATORS = [
    "add",
    "sub",
    "mul",
    "matmul",
    "truediv",
    "floordiv",
    "mod",
    "divmod",
    "pow",
    "lshift",
    "rshift",
    "and",
    "xor",
    "or",
]
PROTOCOL_DUNDERS = frozenset(
    {
        "__init__",
        "__new__",
        "__repr__",
        "__str__",
        "__format__",
        "__bytes__",
        "__hash__",
        "__bool__",
        "__eq__",
        "__ne__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__getattr__",
        "__setattr__",
        "__delattr__",
        "__len__",
        "__length_hint__",
        "__getitem__",
        "__setitem__",
        "__delitem__",
        "__missing__",
        "__iter__",
        "__next__",
        "__reversed__",
        "__contains__",
        "__call__",
        "__enter__",
        "__exit__",
        "__get__",
        "__set__",
        "__delete__",
        "__neg__",
        "__pos__",
        "__abs__",
        "__invert__",
        "__complex__",
        "__int__",
        "__float__",
        "__index__",
        "__round__",
        "__trunc__",
        "__floor__",
        "__ceil__",
        "__post_init__",
        "__copy__",
        "__deepcopy__",
        *(f"__{op}__" for op in _OPERATORS),
        *(f"__r{op}__" for op in _OPERATORS),
        *(f"__i{op}__" for op in _OPERATORS if op != "divmod"),
    }
)
DEFINABLE_DUNDERS = PROTOCOL_DUNDERS | {"__slots__", "__doc__", "__match_args__"}
# What Python itself puts in a class namespace.
_AUTO_CLASS_KEYS = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__annotations__",
        "__classcell__",
        "__orig_bases__",
        "__static_attributes__",
        "__firstlineno__",
        "__type_params__",
    }
)
# Single-underscore names that pandas reads to decide what an object is (``_typ`` makes any object pass
# for a DataFrame inside pandas): refused as attribute names a strategy writes.
RESERVED_PRIVATE_ATTRIBUTES = frozenset({"_typ", "_subtyp"})

_RAW_MEMORY_PREFIXES = ("__array", "__arrow", "__dlpack", "__cuda", "__buffer", "__release_buffer")
_CLASS_MACHINERY = frozenset(
    {
        "__init_subclass__",
        "__set_name__",
        "__class_getitem__",
        "__prepare__",
        "__mro_entries__",
        "__instancecheck__",
        "__subclasscheck__",
        "__subclasshook__",
        "__class__",
        "__dict__",
        "__bases__",
        "__mro__",
        "__module__",
        "__qualname__",
        "__name__",
        "__annotations__",
        "__weakref__",
    }
)


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name[:2] == "__" and name[-2:] == "__"


def dunder_definition_refusal(name: str) -> str | None:
    """Why a class may not define `name`, or None (for a dunder name only)."""
    if name in DEFINABLE_DUNDERS:
        return None
    if name.startswith(_RAW_MEMORY_PREFIXES) or name == "__dataframe__":
        why = "it would let numpy or pandas read raw memory"
    elif name in _CLASS_MACHINERY:
        why = "it changes what the class is or how classes are made"
    elif name == "__del__":
        why = "it runs at unpredictable times; give the class an explicit close() method instead"
    elif name == "__getattribute__":
        why = "it intercepts every attribute read; define __getattr__ instead (called for missing names)"
    elif name.startswith(("__reduce", "__getstate", "__setstate", "__getnewargs")):
        why = "pickling is not available to strategies"
    else:
        why = "it is not one of the ordinary special methods"
    return (
        f"{why} (a class may define __init__, __repr__, __str__, __eq__, __lt__, __hash__, __len__, "
        "__getitem__, __iter__, __call__, __enter__/__exit__, arithmetic operators and other ordinary special "
        "methods)"
    )


def dunder_read_refusal(name: str) -> str:
    if name.startswith(_RAW_MEMORY_PREFIXES):
        return "it exposes raw memory"
    return (
        "it reaches interpreter internals (globals, code, the class hierarchy, namespaces); "
        "use type(x).__name__ for a class name and isinstance() to test types"
    )


_DUNDER_WRITE = (
    "special attributes cannot be assigned in a strategy; keep your data in ordinary attributes "
    "(self.name = value) or a dict"
)
_LIBRARY_PRIVATE = (
    "private attributes of library objects are internal; use the public API (private names are fine on "
    "your own classes)"
)
_LIBRARY_SPECIAL = (
    "special methods of library objects are not available; use the operation itself (len(x), x[k], x + y, "
    "str(x), ...), or super() inside your own class"
)

MODULE_DENY: dict[str, dict[str, str]] = {
    "numpy": {
        **{
            n: _FILES
            for n in [
                "load",
                "save",
                "savez",
                "savez_compressed",
                "loadtxt",
                "savetxt",
                "genfromtxt",
                "fromfile",
                "fromregex",
                "memmap",
                "DataSource",
            ]
        },
        **{
            n: _NO_MODULE
            for n in [
                "ctypeslib",
                "testing",
                "f2py",
                "distutils",
                "core",
                "char",
                "rec",
                "ma",
                "matlib",
                "polynomial",
                "exceptions",
                "dtypes",
                "strings",
                "typing",
                "version",
            ]
        },
        "show_config": _INTERNAL,
        "show_runtime": _INTERNAL,
        "get_include": _INTERNAL,
        "info": _INTERNAL,
        "test": _INTERNAL,
        "add_newdoc": _INTERNAL,
        "add_docstring": _INTERNAL,
    },
    "pandas": {
        "to_pickle": _SERIALIZE,
        "ExcelWriter": _FILES,
        "ExcelFile": _FILES,
        "HDFStore": _FILES,
        **{
            n: _NO_MODULE
            for n in [
                "io",
                "api",
                "core",
                "util",
                "compat",
                "plotting",
                "testing",
                "arrays",
                "errors",
                "offsets",
                "tseries",
            ]
        },
        "eval": _EVAL,
        "set_option": _OPTIONS,
        "get_option": _OPTIONS,
        "reset_option": _OPTIONS,
        "describe_option": _OPTIONS,
        "option_context": _OPTIONS,
        "options": _OPTIONS,
        "show_versions": _INTERNAL,
        "test": _INTERNAL,
    },
}
MODULE_DENY_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "pandas": (("read_", "it reads files; the market data reaches your strategy as `data` / `ctx.data`"),),
}

_TYPING_NAMES = [
    "Any",
    "AnyStr",
    "Annotated",
    "Callable",
    "ClassVar",
    "Concatenate",
    "Final",
    "Generic",
    "Literal",
    "LiteralString",
    "NamedTuple",
    "NewType",
    "NoReturn",
    "Never",
    "NotRequired",
    "Optional",
    "ParamSpec",
    "Protocol",
    "Required",
    "Self",
    "Text",
    "Tuple",
    "Type",
    "TypeAlias",
    "TypeGuard",
    "TypeVar",
    "TypeVarTuple",
    "TypedDict",
    "Union",
    "Unpack",
    "AbstractSet",
    "ByteString",
    "ChainMap",
    "Collection",
    "Container",
    "Counter",
    "DefaultDict",
    "Deque",
    "Dict",
    "FrozenSet",
    "Generator",
    "Hashable",
    "ItemsView",
    "Iterable",
    "Iterator",
    "KeysView",
    "List",
    "Mapping",
    "MappingView",
    "MutableMapping",
    "MutableSequence",
    "MutableSet",
    "OrderedDict",
    "Reversible",
    "Sequence",
    "Set",
    "Sized",
    "SupportsAbs",
    "SupportsBytes",
    "SupportsComplex",
    "SupportsFloat",
    "SupportsIndex",
    "SupportsInt",
    "SupportsRound",
    "ValuesView",
    "TYPE_CHECKING",
    "cast",
    "overload",
    "assert_never",
    "assert_type",
]

# Modules offered through an allow list (anything else they hold is refused). talib's is computed from
# talib itself when its view is made; these are known without importing anything heavy.
STATIC_ALLOW: dict[str, frozenset[str]] = {
    "numpy.lib": frozenset({"stride_tricks", "scimath", "NumpyVersion"}),
    "numpy.lib.stride_tricks": frozenset({"sliding_window_view"}),
    "math": frozenset(n for n in dir(math) if not n.startswith("_")),
    "datetime": frozenset({"date", "datetime", "time", "timedelta", "timezone", "tzinfo", "MINYEAR", "MAXYEAR", "UTC"}),
    "collections": frozenset(
        {"deque", "defaultdict", "namedtuple", "OrderedDict", "Counter", "ChainMap", "UserDict", "UserList", "abc"}
    ),
    "collections.abc": frozenset(collections.abc.__all__),
    "itertools": frozenset(n for n in dir(itertools) if not n.startswith("_")),
    "functools": frozenset(
        {"reduce", "partial", "partialmethod", "lru_cache", "cache", "cached_property", "wraps", "total_ordering"}
        | {"cmp_to_key"}
    ),
    "typing": frozenset(n for n in _TYPING_NAMES if hasattr(typing, n)),
    "dataclasses": frozenset(
        {"dataclass", "field", "fields", "asdict", "astuple", "replace", "is_dataclass", "FrozenInstanceError"}
        | {"InitVar", "KW_ONLY", "MISSING"}
    ),
    "__future__": frozenset(
        {
            "annotations",
            "division",
            "absolute_import",
            "print_function",
            "unicode_literals",
            "generator_stop",
            "nested_scopes",
            "generators",
            "with_statement",
        }
    ),
}
_ALLOW_TEXT: dict[str, str] = {
    "talib": "talib offers its indicator functions (talib.SMA, talib.EMA, talib.RSI, ...), talib.MA_Type, "
    "talib.abstract, talib.stream, talib.get_functions() and talib.get_function_groups()",
    "talib.abstract": "talib.abstract offers its indicator functions (talib.abstract.SMA(df, timeperiod=10), ...) "
    "and talib.abstract.Function('RSI')",
    "talib.stream": "talib.stream offers its indicator functions (talib.stream.SMA(close, timeperiod=10), ...)",
    "numpy.lib": "numpy.lib offers numpy.lib.stride_tricks.sliding_window_view and numpy.lib.scimath",
    "numpy.lib.stride_tricks": "numpy.lib.stride_tricks offers sliding_window_view "
    "(np.lib.stride_tricks.sliding_window_view(x, window))",
    "functools": "functools offers reduce, partial, partialmethod, lru_cache, cache, cached_property, wraps, "
    "total_ordering and cmp_to_key",
    "typing": "typing offers the type-hint names (Optional, List, Dict, Union, Callable, TypeVar, Generic, "
    "NamedTuple, TypedDict, ...), cast and overload",
}


def _allow_list_text(module: str) -> str:
    if module in _ALLOW_TEXT:
        return _ALLOW_TEXT[module]
    allowed = STATIC_ALLOW.get(module)
    if allowed is not None and len(allowed) <= 16:
        return f"{module} offers {', '.join(sorted(allowed))}"
    return f"{module} offers only its public functions and constants"


def module_refusal(module: str, name: str) -> str | None:
    """Why ``module.name`` is refused, or None. Covers the deny lists and the allow lists known without
    importing anything (talib's and statistics' are checked at run time by the view)."""
    if name.startswith("_"):
        return None if name in MODULE_DUNDERS else _PRIVATE
    reason = MODULE_DENY.get(module, {}).get(name)
    if reason is not None:
        return reason
    for prefix, why in MODULE_DENY_PREFIXES.get(module, ()):
        if name.startswith(prefix):
            return why
    allowed = STATIC_ALLOW.get(module)
    if allowed is not None and name not in allowed:
        return _allow_list_text(module)
    return None


def name_refusal(name: str) -> str | None:
    """Why a method *name* given as a string to a pandas method (``s.apply("to_csv")``) is refused, or None."""
    if name.startswith("_"):
        return _PRIVATE
    if name in ("format", "format_map"):
        return "format strings can reach object internals; pass a function instead"
    if name in LIBRARY_DENY:
        return LIBRARY_DENY[name]
    if name.startswith("to_") and name not in PANDAS_TO_ALLOWED:
        return _SERIALIZE
    return None


def _attr_message(owner: str, name: str, reason: str) -> str:
    return f"{owner}.{name} is not allowed in a strategy: {reason}"


def _owner_name(obj: Any) -> str:
    if isinstance(obj, ModuleView):
        return obj._mv_name
    if isinstance(obj, ClassGuard):
        return obj._cg_cls.__name__
    if isinstance(obj, type):
        return obj.__name__
    return type(obj).__name__


# ---- module views ------------------------------------------------------------------------------------


class ModuleView:
    """A read-only, policy-checked stand-in for an allowed module.

    It has no public attributes of its own: every public name is resolved by `__getattr__` through the
    policy (so ``from numpy import load`` — a plain getattr in CPython — is refused too), and a refusal
    raises `PolicyViolation`, never AttributeError, so CPython's ``from package import sub`` fallback
    to ``sys.modules`` cannot hand out a refused submodule.
    """

    __slots__ = ("_mv_allow", "_mv_cache", "_mv_module", "_mv_name", "_mv_overrides")

    _mv_name: str
    _mv_module: types.ModuleType
    _mv_cache: dict[str, Any]
    _mv_allow: frozenset[str] | None
    _mv_overrides: dict[str, Any]

    def __init__(
        self, module: types.ModuleType, allow: frozenset[str] | None, overrides: dict[str, Any] | None = None
    ) -> None:
        object.__setattr__(self, "_mv_name", module.__name__)
        object.__setattr__(self, "_mv_module", module)
        object.__setattr__(self, "_mv_cache", {})
        object.__setattr__(self, "_mv_allow", allow)
        object.__setattr__(self, "_mv_overrides", overrides or {})

    def _mv_get(self, name: str) -> Any:
        try:
            return self._mv_cache[name]
        except KeyError:
            pass
        except TypeError:  # unhashable name
            raise PolicyViolation(f"attribute names are strings, not {type(name).__name__}") from None
        mod = self._mv_name
        if type(name) is not str:
            raise PolicyViolation(f"attribute names are strings, not {type(name).__name__}")
        if name in MODULE_DUNDERS:
            value = getattr(self._mv_module, name, None)
            if not isinstance(value, str):
                raise AttributeError(f"module '{mod}' has no attribute '{name}'")
            return value
        reason = module_refusal(mod, name)
        if reason is None and self._mv_allow is not None and name not in self._mv_allow:
            reason = _allow_list_text(mod)
        if reason is not None:
            raise PolicyViolation(_attr_message(mod, name, reason))
        if name in self._mv_overrides:
            value = self._mv_overrides[name]
        else:
            try:
                value = getattr(self._mv_module, name)
            except AttributeError:
                if f"{mod}.{name}" not in ALLOWED_MODULES:  # an allowed submodule not imported yet
                    raise AttributeError(f"module '{mod}' has no attribute '{name}'") from None
                value = importlib.import_module(f"{mod}.{name}")
            value = _vet_value(value, mod, name)
        self._mv_cache[name] = value
        return value

    def __getattr__(self, name: str) -> Any:
        # Reached by native lookups: ``from numpy import x`` (IMPORT_FROM) and trusted code. Private names
        # answer AttributeError so library probes (``hasattr(view, "__array__")``) behave normally; strategy
        # code reads them through `_getattr_`, which asks `_mv_get`.
        if name.startswith("_"):
            raise AttributeError(name)
        return self._mv_get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise PolicyViolation(f"cannot set {self._mv_name}.{name}: modules are read-only in a strategy")

    def __delattr__(self, name: str) -> None:
        raise PolicyViolation(f"cannot delete {self._mv_name}.{name}: modules are read-only in a strategy")

    def __repr__(self) -> str:
        return f"<module '{self._mv_name}' (strategy view)>"

    def __reduce__(self) -> Any:
        raise PolicyViolation("modules cannot be copied or pickled in a strategy")


_VIEWS: dict[str, ModuleView] = {}


def _allow_list(name: str, module: types.ModuleType) -> frozenset[str] | None:
    if name == "talib":
        return frozenset(module.get_functions()) | {
            "MA_Type",
            "abstract",
            "stream",
            "get_functions",
            "get_function_groups",
        }
    if name == "talib.abstract":
        return frozenset(sys.modules["talib"].get_functions()) | {"Function"}
    if name == "talib.stream":
        return frozenset(sys.modules["talib"].get_functions())
    if name == "statistics":
        return frozenset(module.__all__)
    if name in STATIC_ALLOW:
        return frozenset(n for n in STATIC_ALLOW[name] if hasattr(module, n))
    return None


def module_view(module: types.ModuleType) -> ModuleView:
    """The view of an allowed module; `PolicyViolation` (an ImportError) for any other module."""
    name = getattr(module, "__name__", "?")
    view = _VIEWS.get(name)
    if view is not None and view._mv_module is module:
        return view
    if name not in ALLOWED_MODULES:
        raise ImportRefused(f"module '{name}' is not available to strategies; allowed: {ALLOWED_MODULES_TEXT}")
    if name.startswith(("numpy", "pandas", "talib")):
        _prepare_numpy()
    view = ModuleView(module, _allow_list(name, module), _OVERRIDES.get(name))
    _VIEWS[name] = view
    return view


def view_of(name: str) -> ModuleView:
    """Import an allowed module by name and return its view."""
    if name not in ALLOWED_MODULES:
        raise ImportRefused(f"import of '{name}' is not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}")
    return module_view(importlib.import_module(name))


def guarded_import(
    name: str,
    globals: Any = None,
    locals: Any = None,
    fromlist: Any = (),
    level: int = 0,
) -> Any:
    """``__import__`` for strategies: allowed modules only, always as views.

    C code that imports lazily while strategy code is on the stack (numpy's ``arr.mean()`` imports
    ``numpy._core._methods``, ``str(arr)`` ``numpy._core.arrayprint``, pandas' ``strftime`` ``time``) goes
    through CPython's ``PyImport_Import``, which takes ``__import__`` from the *calling frame's* builtins —
    this function — and calls it as ``__import__(name, globals, globals, [], 0)``: an empty *list*
    fromlist, then ignores the result and reads ``sys.modules[name]``. A strategy's own ``import``
    statement (IMPORT_NAME) passes None or a tuple, and strategy code cannot call ``__import__`` itself (the
    name is reserved, the builtins are not reachable), so a list fromlist is a library's import: it is done
    for real, exactly as with the real builtins (verified on CPython 3.11, 3.12 and 3.13).
    """
    if type(fromlist) is list and not fromlist and level == 0 and globals is locals and type(name) is str:
        module = sys.modules.get(name)
        return module if module is not None else importlib.import_module(name)
    if level != 0:
        raise ImportRefused(
            f"relative imports are not allowed in a strategy; import by the full name (allowed: {ALLOWED_MODULES_TEXT})"
        )
    if type(name) is not str or name not in ALLOWED_MODULES:
        raise ImportRefused(f"import of '{name}' is not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}")
    if fromlist:
        return view_of(name)
    view_of(name)  # import the submodule itself, as Python's import statement does
    return view_of(name.partition(".")[0])


# ---- class guards: classes a strategy may use but not construct freely ---------------------------------


class ClassGuard:
    """Stands in for a class whose constructor is unsafe with some arguments (``np.ndarray(shape,
    dtype=object, buffer=raw_bytes)`` would turn raw bytes into object pointers). ``isinstance`` /
    ``issubclass`` and attribute reads behave like the class; calls are checked; subclassing is refused."""

    __slots__ = ("_cg_check", "_cg_cls")

    _cg_cls: type
    _cg_check: Callable[[Any], None]

    def __init__(self, cls: type, check: Callable[[Any], None]) -> None:
        object.__setattr__(self, "_cg_cls", cls)
        object.__setattr__(self, "_cg_check", check)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self._cg_cls(*args, **kwargs)
        self._cg_check(result)
        return result

    def __instancecheck__(self, instance: Any) -> bool:
        return isinstance(instance, self._cg_cls)

    def __subclasscheck__(self, subclass: Any) -> bool:
        if isinstance(subclass, ClassGuard):
            subclass = subclass._cg_cls
        return issubclass(subclass, self._cg_cls)

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        raise PolicyViolation(
            f"subclassing {self._cg_cls.__name__} is not allowed in a strategy; keep the array in an attribute of "
            "your own class instead"
        )

    @property
    def __bases__(self) -> tuple[type, ...]:  # for issubclass(guard, cls) (strategy code cannot read it)
        return (self._cg_cls,)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _getattr_slow(self._cg_cls, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise PolicyViolation(f"cannot set {self._cg_cls.__name__}.{name}: classes are read-only in a strategy")

    def __repr__(self) -> str:
        return repr(self._cg_cls)

    def __reduce__(self) -> Any:
        raise PolicyViolation("classes cannot be copied or pickled in a strategy")


class ErrorClassGuard(ClassGuard):
    """What ``type(e)`` gives for the engine's own errors (``StrategyOutputLimit``, ``InvalidSignals``, the
    sandbox's ``PolicyViolation``): it can be named (``type(e).__name__``) and tested (``isinstance``), not
    constructed or subclassed, so a strategy cannot raise the engine's errors with fields of its choosing."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise PolicyViolation(
            f"creating a {self._cg_cls.__name__} is not allowed in a strategy: it is the engine's own error; "
            "raise your own exception class or a builtin one (ValueError, RuntimeError, ...)"
        )

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        raise PolicyViolation(
            f"subclassing {self._cg_cls.__name__} is not allowed in a strategy: it is the engine's own error; "
            "subclass Exception instead"
        )


def _checked_resize(method: Callable[..., Any]) -> Callable[..., Any]:
    """``ndarray.resize`` without ``refcheck=False``: that reallocates the data under the array's views,
    which then read freed memory (object pointers included)."""

    def resize(*args: Any, **kwargs: Any) -> Any:
        if "refcheck" in kwargs and kwargs["refcheck"] is not True:
            raise PolicyViolation(
                "ndarray.resize(refcheck=False) is not allowed in a strategy: it can leave views of the array "
                "pointing at freed memory; use np.resize(a, shape) or a.copy() and resize the copy"
            )
        return method(*args, **kwargs)

    return resize


def _no_object_view_of_foreign_memory(array: Any) -> None:
    if array.dtype.hasobject and not array.flags.owndata:
        raise PolicyViolation(
            "an array of Python objects over a raw buffer is not allowed in a strategy (it would read raw memory "
            "as object pointers); build object arrays from values, e.g. np.array([...], dtype=object)"
        )


def _refuse_construction(result: Any) -> None:  # unused check of ErrorClassGuard (its __call__ refuses)
    raise AssertionError("unreachable")


_CLASS_GUARDS: dict[type, ClassGuard] = {}
_ENGINE_ERRORS: tuple[type, ...] = (EngineError, PolicyViolation)
# Names refused on instances of a type (checked on the guarded path only: these types are not "plain").
_TYPE_DENY: list[tuple[type, dict[str, str]]] = []
# Methods of a type (and of its instances) handed out wrapped: (type, name, wrapper factory).
_TYPE_WRAP: list[tuple[type, str, Callable[[Any], Any]]] = []


def _error_class_guard(cls: type) -> ClassGuard:
    guard = _CLASS_GUARDS.get(cls)
    if guard is None:
        guard = ErrorClassGuard(cls, _refuse_construction)
        _CLASS_GUARDS[cls] = guard
    return guard


# ---- the strategy's own classes --------------------------------------------------------------------------

# Classes made by the strategy's class statements (and its dataclass/namedtuple calls): their special
# methods are readable on their instances and through super().
_OWN_CLASSES: set[type] = set()
# Own classes whose every base is own or one of `_SAFE_BASES` (no library state inherited): private
# names are readable and writable on them and their instances.
_PURE_OWN: set[type] = set()


def _safe_bases() -> set[type]:
    out: set[type] = {object, int, float, complex, str, bytes, tuple, list, dict, set, frozenset}
    out.update(v for v in vars(builtins).values() if isinstance(v, type) and issubclass(v, BaseException))
    out.update({typing.Generic, typing.Protocol})
    out.update(
        {
            collections.OrderedDict,
            collections.defaultdict,
            collections.deque,
            collections.Counter,
            collections.ChainMap,
            collections.UserDict,
            collections.UserList,
        }
    )
    out.update(v for v in vars(collections.abc).values() if isinstance(v, type))
    return out


_SAFE_BASES = _safe_bases()


def is_strategy_class(cls: Any) -> bool:
    """Whether `cls` was made by strategy code (a class statement, ``dataclass``, ``namedtuple``)."""
    return cls in _OWN_CLASSES


def _register_own(cls: type) -> None:
    _OWN_CLASSES.add(cls)
    if all(base in _PURE_OWN or base in _SAFE_BASES for base in cls.__mro__[1:]):
        _PURE_OWN.add(cls)
        if not issubclass(cls, str):  # str.format walks attributes: keep it on the checked path
            _PLAIN_READ.add(cls)
            _FREE_READ.add(cls)
            _PLAIN_WRITE.add(cls)


def _is_own(obj: Any) -> bool:
    return type(obj) in _OWN_CLASSES or (isinstance(obj, type) and obj in _OWN_CLASSES)


def _is_pure_own(obj: Any) -> bool:
    return type(obj) in _PURE_OWN or (isinstance(obj, type) and obj in _PURE_OWN)


_NAMEDTUPLE_API = frozenset({"_asdict", "_replace", "_make", "_fields", "_field_defaults"})


def _is_namedtuple(obj: Any) -> bool:
    cls = obj if isinstance(obj, type) else type(obj)
    return issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple)


# ---- attribute access ----------------------------------------------------------------------------------

# Types whose public attributes are read with just the library deny-set check (exact types only): numbers,
# containers, numpy scalars; plus everything in `_FREE_READ`.
_PLAIN_READ: set[type] = {int, float, complex, bool, list, dict, tuple, set, frozenset, range, slice, type(None)}
# Types whose public attributes are all fine to read (no library deny list applies): builtins containers and
# numbers, the runtime's registered classes, the strategy's own classes.
_FREE_READ: set[type] = set(_PLAIN_READ)
# Types whose items and attributes may be written without further checks.
_PLAIN_WRITE: set[type] = {list, dict}

_ModuleType = types.ModuleType


def register_plain_type(cls: type) -> None:
    """Let strategies read and write attributes of `cls`'s instances on the fast path.

    For the runtime's own classes (context, bar, series views): trusted classes whose public attributes
    hold no modules, files or interpreter internals. Exact type only; subclasses take the checked path.
    No library deny list applies to them (``ctx.hist = ...`` is the strategy's own name).
    """
    if not isinstance(cls, type) or issubclass(cls, type | _ModuleType | ModuleView | str):
        raise TypeError(f"register_plain_type needs an ordinary class (not a str: str.format), got {cls!r}")
    _PLAIN_READ.add(cls)
    _FREE_READ.add(cls)
    _PLAIN_WRITE.add(cls)


def guarded_getattr(obj: Any, name: str) -> Any:
    """``_getattr_``: what ``obj.name`` compiles to in a strategy."""
    tp = type(obj)
    if tp in _FREE_READ:
        if name[0] != "_" and name not in INTERNAL_ATTRIBUTES:
            return getattr(obj, name)
    elif tp in _PLAIN_READ and name[0] != "_" and name not in _LIBRARY_DENY_NAMES:
        return getattr(obj, name)
    return _getattr_slow(obj, name)


def _getattr_slow(obj: Any, name: str) -> Any:
    if type(name) is not str:
        raise PolicyViolation(f"attribute names are strings, not {type(name).__name__}")
    tp = type(obj)
    if tp is ModuleView:
        return obj._mv_get(name)
    if name[:1] == "_":
        return _private_or_special(obj, name)
    if name in INTERNAL_ATTRIBUTES:
        raise PolicyViolation(_attr_message(_owner_name(obj), name, _INTERNAL_REASON))
    if tp is super:
        return _super_public(obj, name)
    if name in ("format", "format_map") and (isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))):
        return _SafeFormat(obj, name)
    pure_own = _is_pure_own(obj)
    if not pure_own:
        reason = LIBRARY_DENY.get(name)
        if reason is not None:
            raise PolicyViolation(_attr_message(_owner_name(obj), name, reason))
        for cls, denied in _TYPE_DENY:
            if name in denied and isinstance(obj, cls):
                raise PolicyViolation(_attr_message(_owner_name(obj), name, denied[name]))
    if isinstance(obj, ClassGuard):
        return _vet_value(_getattr_slow(obj._cg_cls, name), obj._cg_cls.__name__, name)
    if isinstance(obj, _ModuleType):  # a real module should never reach strategy code; view it or refuse
        return module_view(obj)._mv_get(name)
    from_pandas = not pure_own and _is_pandas(obj if isinstance(obj, type) else tp)
    if from_pandas and name.startswith("to_") and name not in PANDAS_TO_ALLOWED:
        raise PolicyViolation(
            _attr_message(
                _owner_name(obj),
                name,
                f"{_SERIALIZE}; in-memory conversions such as to_numpy, to_list, to_dict are allowed",
            )
        )
    value = getattr(obj, name)
    if from_pandas and name in _PANDAS_STRING_DISPATCH and callable(value):
        return _StringDispatchGuard(value, f"{_owner_name(obj)}.{name}")
    for cls, method, wrap in _TYPE_WRAP:
        if name == method and (isinstance(obj, cls) or (isinstance(obj, type) and issubclass(obj, cls))):
            return wrap(value)
    return _vet_value(value, _owner_name(obj), name)


_PANDAS_TYPES: dict[type, bool] = {}


def _is_pandas(cls: type) -> bool:
    """Whether `cls` is, or derives from, a pandas class (its string-dispatch and `to_*` rules apply)."""
    try:
        return _PANDAS_TYPES[cls]
    except KeyError:
        pass
    except TypeError:
        return False
    found = False
    for klass in getattr(cls, "__mro__", (cls,)):
        module = klass.__dict__.get("__module__", "") if isinstance(klass, type) else ""
        if isinstance(module, str) and module.startswith("pandas"):
            found = True
            break
    _PANDAS_TYPES[cls] = found
    return found


def _private_or_special(obj: Any, name: str) -> Any:
    """A name starting with '_' read by strategy code."""
    if is_dunder(name):
        return _special(obj, name)
    tp = type(obj)
    if tp is super:
        if obj.__thisclass__ in _PURE_OWN and (obj.__self_class__ or obj.__thisclass__) in _PURE_OWN:
            return getattr(obj, name)
    elif _is_pure_own(obj) or (name in _NAMEDTUPLE_API and _is_namedtuple(obj)):
        return getattr(obj, name)
    raise PolicyViolation(
        f"access to '{name}' is not allowed in a strategy: {_LIBRARY_PRIVATE} ({_owner_name(obj)} is not a class "
        "of your strategy)"
    )


def _special(obj: Any, name: str) -> Any:
    """A special (dunder) name read by strategy code."""
    if name == "__class__":
        return safe_type(obj)
    if name in READABLE_DUNDERS:
        target = obj._cg_cls if isinstance(obj, ClassGuard) else obj
        value = getattr(target, name)
        if value is None or isinstance(value, str):
            return value
        raise AttributeError(f"'{_owner_name(obj)}' object has no attribute '{name}'")
    if name in PROTOCOL_DUNDERS:
        tp = type(obj)
        if tp is super:
            if obj.__thisclass__ in _OWN_CLASSES:
                return _wrap_special(getattr(obj, name), name, obj.__self__)
        elif _is_own(obj):
            return _wrap_special(getattr(obj, name), name, obj)
        raise PolicyViolation(f"access to '{name}' is not allowed in a strategy: {_LIBRARY_SPECIAL}")
    raise PolicyViolation(f"access to '{name}' is not allowed in a strategy: {dunder_read_refusal(name)}")


def _wrap_special(value: Any, name: str, owner: Any) -> Any:
    """``__setattr__`` / ``__delattr__`` / ``__new__`` of the strategy's own objects, with their arguments
    checked like the strategy's own writes and class creation."""
    if name in ("__setattr__", "__delattr__"):
        method = value

        def checked(attr: Any, *rest: Any) -> Any:
            _check_write_name(owner, attr)
            return method(attr, *rest)

        return checked
    if name == "__new__":
        new = value

        def checked_new(cls: Any, *args: Any, **kwargs: Any) -> Any:
            if not (isinstance(cls, type) and cls in _OWN_CLASSES):
                raise PolicyViolation(
                    f"__new__({_owner_name(cls)}) is not allowed in a strategy: __new__ makes instances of your "
                    "own classes only"
                )
            return new(cls, *args, **kwargs)

        return checked_new
    return value


def _super_public(obj: Any, name: str) -> Any:
    """``super().name`` for a public name: as for the instance's own class."""
    if name in ("format", "format_map") and issubclass(obj.__thisclass__, str):
        return _SafeFormat(obj.__self__, name)
    self_class = obj.__self_class__ or obj.__thisclass__
    library = self_class not in _PURE_OWN
    if library:
        reason = LIBRARY_DENY.get(name)
        if reason is None and _is_pandas(self_class) and name.startswith("to_") and name not in PANDAS_TO_ALLOWED:
            reason = _SERIALIZE
        for cls, denied in _TYPE_DENY:
            if reason is None and name in denied and issubclass(self_class, cls):
                reason = denied[name]
        if reason is not None:
            raise PolicyViolation(_attr_message(f"super({self_class.__name__})", name, reason))
    value = getattr(obj, name)
    if library and _is_pandas(self_class) and name in _PANDAS_STRING_DISPATCH and callable(value):
        return _StringDispatchGuard(value, f"{self_class.__name__}.{name}")
    for cls, method, wrap in _TYPE_WRAP:
        if library and name == method and issubclass(self_class, cls):
            return wrap(value)
    return _vet_value(value, self_class.__name__, name)


def _vet_value(value: Any, owner: str, name: str) -> Any:
    """Final check on an attribute's value: modules become views (or are refused), guarded classes
    become their guards."""
    if isinstance(value, _ModuleType):
        try:
            return module_view(value)
        except ImportRefused:
            raise ImportRefused(
                _attr_message(
                    owner,
                    name,
                    f"module '{value.__name__}' is not available to strategies (allowed: {ALLOWED_MODULES_TEXT})",
                )
            ) from None
    if isinstance(value, type):
        guard = _CLASS_GUARDS.get(value)
        if guard is not None:
            return guard
        if issubclass(value, _ENGINE_ERRORS):
            return _error_class_guard(value)
    return value


class _StringDispatchGuard:
    """Wraps a pandas method that resolves string arguments with getattr (``apply("to_csv")``)."""

    __slots__ = ("_sd_label", "_sd_method")

    def __init__(self, method: Callable[..., Any], label: str) -> None:
        self._sd_method = method
        self._sd_label = label

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Method names arrive as positional strings, as dict *values* ({"close": "mean"}) and in lists or
        # tuples; dict keys and keyword names are column labels and output names, not methods.
        for text in _strings_in((args, tuple(kwargs.values())), depth=0):
            reason = name_refusal(text)
            if reason is not None:
                raise PolicyViolation(f"{self._sd_label}({text!r}) is not allowed in a strategy: {reason}")
        return self._sd_method(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<method {self._sd_label} (strategy view)>"


def _strings_in(value: Any, depth: int) -> Iterable[str]:
    if type(value) is str:
        yield value
    elif depth < 4 and type(value) in (list, tuple, dict, set, frozenset):
        items = list(value.values()) if type(value) is dict else list(value)
        for item in items:
            yield from _strings_in(item, depth + 1)


# ---- format strings ------------------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def check_format_string(fmt: str) -> str | None:
    """Why format string `fmt` is refused, or None. Plain positional and named fields with conversions
    and format specs are fine (``"{}"``, ``"{0:.1%}"``, ``"{name!r:>8}"``, ``"{:{width}}"``); a field that
    walks attributes or items (``{0.__class__}``, ``{0[x]}``, ``{x.y}``) is refused. Malformed strings are
    left to ``str.format`` to report."""
    try:
        return _check_format(fmt, 0)
    except ValueError:
        return None


def _check_format(fmt: str, depth: int) -> str | None:
    if depth > 3:
        return None  # deeper nesting is an error of str.format itself ("Max string recursion exceeded")
    for _literal, field, spec, _conversion in _FORMATTER.parse(fmt):
        if field is None:
            continue
        if field and not (field.isdigit() or field.isidentifier()):
            return (
                f"the format field {{{field}}} reads attributes or items, which can reach object internals; "
                "pass the value itself: '{}'.format(x.attr) or an f-string"
            )
        if spec:
            reason = _check_format(spec, depth + 1)
            if reason is not None:
                return reason
    return None


class _SafeFormat:
    """``s.format`` / ``s.format_map`` (bound, or unbound through ``str``) with the format string checked."""

    __slots__ = ("_sf_name", "_sf_obj")

    def __init__(self, obj: Any, name: str) -> None:
        self._sf_obj = obj
        self._sf_name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        obj, name = self._sf_obj, self._sf_name
        if isinstance(obj, type):  # str.format(fmt, ...)
            if not args or not isinstance(args[0], str):
                return getattr(obj, name)(*args, **kwargs)  # let str report the bad call
            fmt, rest = args[0], args[1:]
            _refuse_format(str.__str__(fmt), name)
            return getattr(str, name)(fmt, *rest, **kwargs)
        _refuse_format(str.__str__(obj), name)
        return getattr(str, name)(obj, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<method str.{self._sf_name} (strategy view)>"


def _refuse_format(fmt: str, name: str) -> None:
    reason = check_format_string(fmt)
    if reason is not None:
        raise PolicyViolation(f"str.{name}({fmt[:60]!r}) is not allowed in a strategy: {reason}")


# ---- the getattr family of builtins ---------------------------------------------------------------------


def _check_name_type(name: Any) -> str:
    if type(name) is not str or not name:
        raise PolicyViolation(f"attribute names are non-empty strings, not {name!r:.40}")
    return name


_MISSING = object()


def safe_getattr(obj: Any, name: str, default: Any = _MISSING) -> Any:
    """The ``getattr`` builtin for strategies. A refusal is raised even when a default is given."""
    name = _check_name_type(name)
    if default is _MISSING:
        return guarded_getattr(obj, name)
    try:
        return guarded_getattr(obj, name)
    except AttributeError:
        return default


def safe_hasattr(obj: Any, name: str) -> bool:
    """The ``hasattr`` builtin for strategies. Answers for refused names too (a bool reveals nothing):
    ``hasattr(x, "__len__")`` is a common test on any object."""
    name = _check_name_type(name)
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
    except PolicyViolation:
        if isinstance(obj, ModuleView | ClassGuard):
            return True
        try:
            return builtins.hasattr(obj, name)
        except Exception:
            return True
    return True


# ---- writes ------------------------------------------------------------------------------------------

_READ_ONLY_KINDS: tuple[type, ...] = (
    type,
    _ModuleType,
    ModuleView,
    ClassGuard,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.CodeType,
    types.FrameType,
    types.TracebackType,
    types.GeneratorType,
)  # (the policy's own wrappers are added below, once defined)


def guarded_write(obj: Any) -> Any:
    """``_write_``: what ``obj.x = v`` / ``obj[k] = v`` / ``del obj.x`` write through (public names)."""
    if type(obj) in _PLAIN_WRITE:
        return obj
    if isinstance(obj, type) and obj in _OWN_CLASSES:
        return obj
    if isinstance(obj, _ENGINE_ERRORS):
        raise PolicyViolation(
            f"cannot assign to attributes of {type(obj).__name__}: the engine's errors are read-only in a strategy"
        )
    if isinstance(obj, _READ_ONLY_KINDS):
        raise PolicyViolation(
            f"cannot assign to attributes or items of {_describe_read_only(obj)}: modules, library classes, "
            "functions and builtins are read-only in a strategy; keep your own values in your own variables, "
            "objects or a dict"
        )
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return _ArrayWriter(obj)
    if _TALIB_FUNCTION and isinstance(obj, _TALIB_FUNCTION):
        return _TalibFunctionWriter(obj)
    return obj


def write_private(obj: Any, name: str) -> Any:
    """``_write_private_``: what ``obj._x = v`` / ``del obj._x`` write through: the strategy's own objects
    and classes only."""
    if name in RESERVED_PRIVATE_ATTRIBUTES:
        raise PolicyViolation(
            f"assigning '{name}' is not allowed in a strategy: pandas reads it to decide what an object is; "
            "choose another name"
        )
    if type(obj) in _PURE_OWN or (isinstance(obj, type) and obj in _PURE_OWN):
        return obj
    raise PolicyViolation(
        f"assigning {_owner_name(obj)}.{name} is not allowed in a strategy: {_LIBRARY_PRIVATE} "
        f"({_owner_name(obj)} is not a class of your strategy)"
    )


def _check_write_name(obj: Any, name: Any) -> str:
    """The name rules of a write by ``setattr`` / ``delattr`` (and ``super().__setattr__``)."""
    name = _check_name_type(name)
    if name[0] == "_":
        if is_dunder(name):
            raise PolicyViolation(f"assigning '{name}' is not allowed in a strategy: {_DUNDER_WRITE}")
        write_private(obj, name)
    return name


def _describe_read_only(obj: Any) -> str:
    if isinstance(obj, ModuleView | _ModuleType):
        return f"module {getattr(obj, '_mv_name', None) or getattr(obj, '__name__', '?')}"
    if isinstance(obj, ClassGuard):
        return f"class {obj._cg_cls.__name__}"
    if isinstance(obj, type):
        return f"class {obj.__name__}"
    if isinstance(obj, types.BuiltinFunctionType):
        return f"builtin {getattr(obj, '__name__', '?')}"
    if isinstance(obj, types.FunctionType | types.MethodType):
        return f"function {getattr(obj, '__name__', '?')}"
    return type(obj).__name__


_ARRAY_WRITABLE_ATTRS = frozenset({"shape", "real", "imag", "flat"})


class _ArrayWriter:
    """Write proxy for numpy arrays: items freely; attributes only those that cannot re-point memory."""

    __slots__ = ("_aw_array",)

    _aw_array: Any

    def __init__(self, array: Any) -> None:
        object.__setattr__(self, "_aw_array", array)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._aw_array[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._aw_array[key]

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _ARRAY_WRITABLE_ATTRS:
            raise PolicyViolation(
                f"assigning ndarray.{name} is not allowed in a strategy (allowed: "
                f"{', '.join(sorted(_ARRAY_WRITABLE_ATTRS))}); make a new array instead, "
                "e.g. with .astype() or .reshape()"
            )
        setattr(self._aw_array, name, value)

    def __delattr__(self, name: str) -> None:
        raise PolicyViolation(f"deleting ndarray.{name} is not allowed in a strategy")


_TALIB_FUNCTION_WRITABLE = frozenset({"parameters", "input_arrays", "input_names"})
_TALIB_FUNCTION: tuple[type, ...] = ()  # talib.abstract.Function, once talib is in play


class _TalibFunctionWriter:
    """Write proxy for ``talib.abstract.Function`` objects: their documented settable attributes only. The
    others (``func_object``, the function the object calls) would make the object run strategy code while it
    still reports talib as its module, which the runtime trusts not to look ahead."""

    __slots__ = ("_tw_function",)

    _tw_function: Any

    def __init__(self, function: Any) -> None:
        object.__setattr__(self, "_tw_function", function)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _TALIB_FUNCTION_WRITABLE:
            raise PolicyViolation(
                f"assigning Function.{name} is not allowed in a strategy (allowed: "
                f"{', '.join(sorted(_TALIB_FUNCTION_WRITABLE))}); use set_parameters() / set_input_arrays()"
            )
        setattr(self._tw_function, name, value)

    def __delattr__(self, name: str) -> None:
        raise PolicyViolation(f"deleting Function.{name} is not allowed in a strategy")

    def __setitem__(self, key: Any, value: Any) -> None:
        self._tw_function[key] = value


_READ_ONLY_KINDS += (_StringDispatchGuard, _ArrayWriter, _TalibFunctionWriter, _SafeFormat)  # and, below,
# StrategyCachedProperty


def safe_setattr(obj: Any, name: str, value: Any) -> None:
    """The ``setattr`` builtin for strategies."""
    name = _check_write_name(obj, name)
    if name[:1] == "_":
        setattr(obj, name, value)  # `_check_write_name` allowed it: the strategy's own object
    else:
        setattr(guarded_write(obj), name, value)


def safe_delattr(obj: Any, name: str) -> None:
    """The ``delattr`` builtin for strategies."""
    name = _check_write_name(obj, name)
    if name[:1] == "_":
        delattr(obj, name)
    else:
        delattr(guarded_write(obj), name)


# ---- the other guards ----------------------------------------------------------------------------------

_INPLACE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def inplacevar(op: str, x: Any, y: Any) -> Any:
    """``_inplacevar_``: ``x += y`` on a plain name."""
    return _INPLACE_OPS[op](x, y)


def apply_call(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``_apply_``: calls with ``*args`` / ``**kwargs``."""
    return f(*args, **kwargs)


def unpack_sequence(it: Any, spec: Any, _getiter_: Any) -> Any:
    """``_unpack_sequence_``: iteration is not restricted here (``_getiter_`` is ``iter``), so Python's own
    unpacking of `it` is exactly equivalent, and much faster than RestrictedPython's list copies."""
    return it


def iter_unpack_sequence(it: Any, spec: Any, _getiter_: Any) -> Any:
    """``_iter_unpack_sequence_`` (``for a, b in it``): see `unpack_sequence`."""
    return it


_HIDDEN_TYPES: frozenset[type] = frozenset(
    t
    for t in vars(types).values()
    if isinstance(t, type)
    and t not in (types.NoneType, types.EllipsisType, types.NotImplementedType, types.SimpleNamespace)
) | {ModuleView, ClassGuard, ErrorClassGuard, _StringDispatchGuard, _ArrayWriter, _TalibFunctionWriter, _SafeFormat}


def safe_type(*args: Any) -> Any:
    """``type(x)``: the class of a value. Dynamic class creation and interpreter-internal types are refused;
    the engine's own error classes come back as an `ErrorClassGuard`."""
    if len(args) != 1:
        raise PolicyViolation(
            "type() with 3 arguments (creating a class dynamically) is not allowed in a strategy; use a class statement"
        )
    cls = type(args[0])
    if cls in _HIDDEN_TYPES or issubclass(cls, type):
        raise PolicyViolation(
            f"type() of a {'class' if issubclass(cls, type) else cls.__name__} is not available in a strategy; "
            "use isinstance() to test types, and x.__name__ for a class's name"
        )
    guard = _CLASS_GUARDS.get(cls)
    if guard is not None:
        return guard
    if issubclass(cls, _ENGINE_ERRORS):
        return _error_class_guard(cls)
    return cls


def _public_getattr(hook: Any) -> Callable[[Any, str], Any]:
    """A strategy class's ``__getattr__``, called for public names only: numpy and pandas probe special
    names (``__array_interface__``) and private ones (``_typ``) on objects, and must not get an answer the
    strategy made up."""

    def __getattr__(self: Any, name: str) -> Any:
        if type(name) is not str or name[:1] == "_":
            raise AttributeError(name)
        return hook(self, name)

    __getattr__.__qualname__ = getattr(hook, "__qualname__", "__getattr__")
    return __getattr__


def _plain_str(value: Any) -> Any:
    """A str subclass as a plain str (its own methods could answer the checks differently)."""
    return str.__str__(value) if isinstance(value, str) else value


def _check_class_namespace(name: str, namespace: dict[str, Any]) -> None:
    for key in namespace:
        if type(key) is not str:
            raise PolicyViolation(f"class {name}: attribute names are strings")
        if is_dunder(key) and key not in _AUTO_CLASS_KEYS:
            reason = dunder_definition_refusal(key)
            if reason is not None:
                raise PolicyViolation(f"class {name}: defining {key} is not allowed in a strategy: {reason}")
        if key in RESERVED_PRIVATE_ATTRIBUTES:
            raise PolicyViolation(f"class {name}: '{key}' is reserved (pandas reads it); choose another name")
    slots: Any = namespace.get("__slots__", ())
    if isinstance(slots, str):
        slots = namespace["__slots__"] = str.__str__(slots)
    elif "__slots__" in namespace and type(slots) is not dict:
        # iterated here and again by type(): take the names once, as plain strings
        slots = namespace["__slots__"] = tuple(_plain_str(slot) for slot in slots)
    for slot in (slots,) if isinstance(slots, str) else slots:
        if type(slot) is not str:
            raise PolicyViolation(f"class {name}: __slots__ holds names (strings)")
        if (is_dunder(slot) and slot not in ("__dict__", "__weakref__")) or slot in RESERVED_PRIVATE_ATTRIBUTES:
            raise PolicyViolation(f"class {name}: '{slot}' is not allowed in __slots__; use an ordinary name")
    metadata = namespace.get("_metadata")
    if isinstance(metadata, list | tuple):  # pandas copies these attributes between frames (__finalize__)
        metadata = namespace["_metadata"] = [_plain_str(m) for m in metadata]
        if any(type(m) is not str or is_dunder(m) for m in metadata):
            raise PolicyViolation(f"class {name}: _metadata holds ordinary attribute names only")
    match_args = namespace.get("__match_args__", ())
    if type(match_args) is tuple:
        match_args = namespace["__match_args__"] = tuple(_plain_str(entry) for entry in match_args)
    for entry in match_args if isinstance(match_args, tuple | list) else ():
        # `case C(x)` reads these names from the subject natively
        if type(entry) is not str or entry[:1] == "_" or entry in INTERNAL_ATTRIBUTES or entry in LIBRARY_DENY:
            raise PolicyViolation(f"class {name}: __match_args__ may hold public attribute names only, not {entry!r}")
    annotations = namespace.get("__annotations__", {})
    if isinstance(annotations, dict):
        for field_name in annotations:
            if type(field_name) is str and (is_dunder(field_name) or field_name in RESERVED_PRIVATE_ATTRIBUTES):
                raise PolicyViolation(f"class {name}: '{field_name}' cannot be a field; use an ordinary name")


def build_class(name: str, bases: tuple[Any, ...], namespace: dict[str, Any], **kwargs: Any) -> type:
    """``__metaclass__`` for class statements: plain classes (library bases allowed, no metaclass, no class
    keywords, no special method outside `DEFINABLE_DUNDERS`)."""
    if kwargs:
        raise PolicyViolation(
            f"class {name}: class keywords ({', '.join(kwargs)}) are not allowed in a strategy; "
            "set class attributes in the class body instead"
        )
    for base in bases:
        if not isinstance(base, type) or issubclass(base, type) or base in _HIDDEN_TYPES:
            raise PolicyViolation(
                f"class {name}: {base!r} cannot be a base class in a strategy; subclass object, a builtin type, an "
                "exception or one of your own classes"
            )
        if issubclass(base, _ENGINE_ERRORS):
            raise PolicyViolation(f"class {name}: {base.__name__} is the engine's own error; subclass Exception")
    _check_class_namespace(name, namespace)
    namespace["__module__"] = STRATEGY_MODULE
    hook = namespace.get("__getattr__")
    if hook is not None:
        namespace["__getattr__"] = _public_getattr(hook)
    cls = type(name, bases, namespace)
    _register_own(cls)
    return cls


# ---- standard library helpers that would otherwise set attributes of the strategy's choosing -------------


class StrategyCachedProperty:
    """``functools.cached_property`` for strategies: the cache key is the class attribute's name, fixed when
    the class is made (``functools.cached_property.attrname`` is a writable public attribute, and it names
    the instance attribute the value is stored under)."""

    __slots__ = ("_cp_func", "_cp_name")

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self._cp_func = func
        self._cp_name: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        if is_dunder(name) or name in RESERVED_PRIVATE_ATTRIBUTES:
            raise PolicyViolation(f"cached_property cannot be named {name!r} in a strategy")
        if self._cp_name is None:
            self._cp_name = name
        elif name != self._cp_name:
            raise TypeError(f"cannot assign the same cached_property to two names ({self._cp_name!r} and {name!r})")

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        name = self._cp_name
        if name is None:
            raise TypeError("a cached_property must be defined in a class body")
        cache = instance.__dict__
        try:
            return cache[name]
        except KeyError:
            value = self._cp_func(instance)
            cache[name] = value
            return value


def _is_strategy_function(fn: Any) -> bool:
    return isinstance(fn, types.FunctionType) and fn.__code__.co_filename == STRATEGY_FILENAME


def strategy_wraps(wrapped: Any, assigned: Any = None, updated: Any = None) -> Callable[[Any], Any]:
    """``functools.wraps`` for strategies: copies the name, qualified name and docstring onto a function of
    the strategy (the real one also copies ``__module__`` and ``__dict__`` of any object, and takes any
    attribute names)."""
    if assigned is not None or updated is not None:
        raise PolicyViolation("functools.wraps(assigned=..., updated=...) is not available; use functools.wraps(f)")

    def decorate(wrapper: Any) -> Any:
        if not _is_strategy_function(wrapper):
            raise PolicyViolation("functools.wraps(...) decorates functions defined in the strategy")
        for attr in ("__name__", "__qualname__", "__doc__"):
            try:
                value = getattr(wrapped, attr)
            except Exception:
                continue
            if isinstance(value, str) or (attr == "__doc__" and value is None):
                setattr(wrapper, attr, str.__str__(value) if isinstance(value, str) else None)
        return wrapper

    return decorate


def strategy_total_ordering(cls: Any) -> Any:
    """``functools.total_ordering`` for the strategy's own classes (it sets methods on the class)."""
    if not (isinstance(cls, type) and cls in _OWN_CLASSES):
        raise PolicyViolation("functools.total_ordering(...) decorates classes defined in the strategy")
    return functools.total_ordering(cls)


def strategy_dataclass(cls: Any = None, /, **kwargs: Any) -> Any:
    """``dataclasses.dataclass`` for the strategy's own classes (it sets attributes on the class)."""

    def wrap(klass: Any) -> Any:
        if not (isinstance(klass, type) and klass in _OWN_CLASSES):
            raise PolicyViolation("@dataclass decorates classes defined in the strategy")
        with _strategy_module_for(klass):
            result: Any = dataclasses.dataclass(klass, **kwargs)
        if result is not klass:  # slots=True makes a new class from the strategy's namespace
            _register_own(result)
        return result

    return wrap if cls is None else wrap(cls)


def _dataclass_markers(scope: dict[str, Any]) -> dict[str, Any]:
    """The names dataclasses looks up in a class's module: ``ClassVar``, ``InitVar``, ``KW_ONLY`` (as the
    strategy imported them) and the ``typing`` / ``dataclasses`` modules (for ``typing.ClassVar``)."""
    markers: dict[str, Any] = {}
    for key, value in scope.items():
        if type(key) is not str:
            continue
        if isinstance(value, ModuleView) and value._mv_module in (typing, dataclasses):
            markers[key] = value._mv_module
        elif any(value is marker for marker in (typing.ClassVar, dataclasses.InitVar, dataclasses.KW_ONLY)):
            markers[key] = value
    return markers


class _strategy_module_for:
    """While `dataclasses` processes a strategy class: a stand-in ``sys.modules["strategy"]`` holding the
    strategy's global names. With string annotations (``from __future__ import annotations``, and the
    compiler's default) dataclasses looks ``ClassVar`` / ``InitVar`` up in the class's module and fails
    when the module is missing. The stand-in holds only those names (code dataclasses generates gets the real
    builtins, as it does for a class of an unknown module), and is removed after."""

    def __init__(self, cls: type) -> None:
        self._cls = cls
        self._previous: Any = None

    def __enter__(self) -> None:
        names: dict[str, Any] = {}
        frame = sys._getframe(1)
        for _ in range(4):  # the strategy frame that applied the decorator
            frame = frame.f_back  # type: ignore[assignment]
            if frame is None:
                break
            if frame.f_code.co_filename == STRATEGY_FILENAME:
                names = _dataclass_markers(frame.f_globals)
                break
        module = types.ModuleType(STRATEGY_MODULE)
        module.__dict__.update(names)
        self._previous = sys.modules.get(STRATEGY_MODULE)
        sys.modules[STRATEGY_MODULE] = module

    def __exit__(self, *exc: Any) -> None:
        if self._previous is None:
            sys.modules.pop(STRATEGY_MODULE, None)
        else:
            sys.modules[STRATEGY_MODULE] = self._previous


def strategy_namedtuple(
    typename: str, field_names: Any, *, rename: bool = False, defaults: Any = None, module: Any = None
) -> type:
    """``collections.namedtuple``; the class belongs to the strategy (``module=`` is not available)."""
    if module is not None:
        raise PolicyViolation("namedtuple(module=...) is not available in a strategy; leave it out")
    cls = collections.namedtuple(typename, field_names, rename=rename, defaults=defaults, module=STRATEGY_MODULE)  # type: ignore[misc,arg-type]
    _register_own(cls)
    return cls


_READ_ONLY_KINDS += (StrategyCachedProperty,)

_OVERRIDES: dict[str, dict[str, Any]] = {
    "functools": {
        "cached_property": StrategyCachedProperty,
        "wraps": strategy_wraps,
        "total_ordering": strategy_total_ordering,
    },
    "dataclasses": {"dataclass": strategy_dataclass},
    "collections": {"namedtuple": strategy_namedtuple},
}


# ---- builtins -----------------------------------------------------------------------------------------


def _unavailable(name: str, reason: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PolicyViolation(f"{name}() is not available in a strategy: {reason}")

    refuse.__name__ = name
    refuse.__qualname__ = name
    return refuse


_NO_FILES = (
    "a strategy has no file access; the market data reaches it as `data` / `ctx.data`, "
    "output goes through print() or ctx.log()"
)
_NO_DYNAMIC_CODE = "a strategy cannot build or run code from strings; write the code itself"
_NO_INTROSPECTION = "a strategy cannot inspect namespaces; use the names you defined (and getattr/hasattr)"
_UNATTENDED = "strategies run unattended"

UNAVAILABLE_BUILTINS: dict[str, str] = {
    "open": _NO_FILES,
    "eval": _NO_DYNAMIC_CODE,
    "exec": _NO_DYNAMIC_CODE,
    "compile": _NO_DYNAMIC_CODE,
    "globals": _NO_INTROSPECTION,
    "locals": _NO_INTROSPECTION,
    "vars": _NO_INTROSPECTION,
    "dir": _NO_INTROSPECTION,
    "input": _UNATTENDED,
    "help": _UNATTENDED,
    "breakpoint": _UNATTENDED,
    "exit": "return from your function instead",
    "quit": "return from your function instead",
    "memoryview": "raw memory access is not allowed; use bytes or numpy arrays",
}

_SAFE_BUILTIN_NAMES = [
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hash",
    "hex",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "super",
    "tuple",
    "zip",
    "property",
    "staticmethod",
    "classmethod",
    "Exception",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "ImportError",
    "IndexError",
    "KeyError",
    "LookupError",
    "ModuleNotFoundError",
    "NameError",
    "NotImplementedError",
    "OverflowError",
    "RecursionError",
    "RuntimeError",
    "StopIteration",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
    "FloatingPointError",
    "UnboundLocalError",
    "Warning",
    "UserWarning",
    "RuntimeWarning",
    "DeprecationWarning",
    "FutureWarning",
]


def _base_builtins() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in safe_builtins.items():
        if not name.startswith("_") and name not in ("setattr", "delattr"):
            out[name] = value
    for name in _SAFE_BUILTIN_NAMES:
        out[name] = getattr(builtins, name)
    out.update({name: _unavailable(name, reason) for name, reason in UNAVAILABLE_BUILTINS.items()})
    out.update(
        {
            "None": None,
            "True": True,
            "False": False,
            "Ellipsis": Ellipsis,
            "NotImplemented": NotImplemented,
            "getattr": safe_getattr,
            "hasattr": safe_hasattr,
            "setattr": safe_setattr,
            "delattr": safe_delattr,
            "type": safe_type,
            "__build_class__": builtins.__build_class__,
            "__import__": guarded_import,
        }
    )
    return out


_BASE_BUILTINS = _base_builtins()


class _Printer:
    """What ``print`` compiles to (``_print._call_print(...)``): each call is one line of the log."""

    __slots__ = ("_log",)

    def __init__(self, log: StrategyLog) -> None:
        self._log = log

    def _call_print(
        self, *objects: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
    ) -> None:
        if file is not None:
            raise PolicyViolation("print(file=...) is not allowed in a strategy: print writes to the strategy log")
        if sep is None:
            sep = " "
        elif type(sep) is not str:
            raise TypeError(f"sep must be None or a string, not {type(sep).__name__}")
        self._log.write(sep.join([str(o) for o in objects]))

    def __call__(self) -> str:  # the RestrictedPython name `printed`: the log so far
        return self._log.text()


_numpy_ready = False


def _prepare_numpy() -> None:
    """Once numpy is in play: its scalar types take the fast path, the array classes whose constructors
    take raw buffers are guarded, ``ndarray.base`` is refused (the base of a revealed slice is the whole
    series, future bars included), ``abc`` registration is refused, and pandas stops answering special
    names from its labels (see `_pandas_labels_are_not_special_names`)."""
    global _numpy_ready, _TALIB_FUNCTION
    if _numpy_ready:
        return
    import abc

    import numpy as np

    for scalar in (np.float64, np.float32, np.int64, np.int32, np.bool_, np.datetime64, np.timedelta64):
        _PLAIN_READ.add(scalar)  # not _FREE_READ: numpy scalars have .tofile / .dump
    for cls in (np.ndarray, np.recarray):
        _CLASS_GUARDS[cls] = ClassGuard(cls, _no_object_view_of_foreign_memory)
    _TYPE_DENY.append(
        (np.ndarray, {"base": "it reaches the whole array a slice was cut from (later bars included); use the slice"})
    )
    _TYPE_WRAP.append((np.ndarray, "resize", _checked_resize))
    _TYPE_DENY.append(
        (
            abc.ABCMeta,
            {"register": "registering a virtual subclass changes isinstance() for the whole process; subclass it"},
        )
    )
    _pandas_labels_are_not_special_names()
    from talib import abstract

    _TALIB_FUNCTION = (type(abstract.SMA),)  # talib._ta_lib.Function (abstract.Function is a factory)
    _numpy_ready = True


def _pandas_labels_are_not_special_names() -> None:
    """pandas answers ``df.<label>`` with the column (``Series.<label>`` with the item) for any label,
    special names included, so a Series labelled ``__array_interface__`` hands numpy a dict of the
    strategy's choosing when numpy probes it (``np.asarray(s)``), and numpy then reads any address. Special
    names are never labels here: they get Python's normal lookup (and AttributeError)."""
    from pandas.core.generic import NDFrame

    original = NDFrame.__dict__["__getattr__"]
    if getattr(original, "_sandbox_checked", False):
        return

    def __getattr__(self: Any, name: str) -> Any:
        if name[:2] == "__" and name[-2:] == "__":
            return object.__getattribute__(self, name)
        return original(self, name)

    __getattr__._sandbox_checked = True  # type: ignore[attr-defined]
    __getattr__.__doc__ = original.__doc__
    type.__setattr__(NDFrame, "__getattr__", __getattr__)


def build_globals(log: StrategyLog) -> dict[str, Any]:
    """Fresh restricted globals for one strategy run: guards, builtins, pre-bound module views and a
    ``print`` bound to `log`. Imports numpy, pandas and talib (their views are pre-bound)."""
    _prepare_numpy()
    printer = _Printer(log)

    def print_factory(_getattr_: Any = None) -> _Printer:
        return printer

    np_view, pd_view = view_of("numpy"), view_of("pandas")
    return {
        "__builtins__": dict(_BASE_BUILTINS),
        "__name__": STRATEGY_MODULE,
        "__metaclass__": build_class,
        "_getattr_": guarded_getattr,
        "_type_": type,  # the inline fast paths emitted by compiler.StrategyTransformer
        "_plain_": _PLAIN_READ,
        "_free_": _FREE_READ,
        "_own_": _PURE_OWN,
        "_plain_write_": _PLAIN_WRITE,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_write_": guarded_write,
        "_write_private_": write_private,
        "_iter_unpack_sequence_": iter_unpack_sequence,
        "_unpack_sequence_": unpack_sequence,
        "_inplacevar_": inplacevar,
        "_apply_": apply_call,
        "_print_": print_factory,
        "np": np_view,
        "numpy": np_view,
        "pd": pd_view,
        "pandas": pd_view,
        "talib": view_of("talib"),
        "math": view_of("math"),
        "statistics": view_of("statistics"),
    }
