"""What restricted strategy code may touch: the guards RestrictedPython calls, safe module views and the
restricted globals a strategy runs in.

RestrictedPython (see `compiler.py`) rewrites ``a.b`` into ``_getattr_(a, "b")``, ``a.b = v`` /
``a[k] = v`` into ``_write_(a).b = v``, ``print`` into ``_print._call_print``, ``x += y`` into
``x = _inplacevar_("+=", x, y)``, and refuses names starting with ``_`` at compile time. This module
supplies those guards:

- ``_getattr_`` (also behind the ``getattr`` / ``hasattr`` builtins): private names (``_x``), frame and
  code internals, ``str.format`` / ``format_map`` (format strings walk attributes), anything that reaches
  files, serialization or dynamic code (``ndarray.tofile``, ``DataFrame.to_csv``, ``df.eval``, pandas
  methods given a method name as a string such as ``s.apply("to_csv")``) are refused; an attribute whose
  value is a module becomes that module's safe view, or is refused when the module is not allowed.
  Objects whose exact type is "plain" (numbers, lists, dicts, numpy scalars, and the runtime's ``ctx``,
  ``bar`` and series views once registered with `register_plain_type`) take a fast path: one set lookup
  of the name in the deny set (the compiler even inlines it, see ``StrategyTransformer``).
- ``_getitem_`` is ``operator.getitem``: reading items is not restricted (so the compiler leaves item
  reads native).
- modules are reached only through `ModuleView`s: ``np``/``numpy``, ``pd``/``pandas``, ``talib``, ``math``,
  ``statistics`` and the allowed submodules (``numpy.random``, ``numpy.linalg``, ``numpy.fft``), each with
  a deny list (numpy/pandas file I/O, internals, options) or an allow list (talib: its indicator
  functions and ``MA_Type``, not ``talib.abstract``/``talib.stream``; math and statistics: their public
  functions and constants).
- ``import`` goes through a guarded ``__import__`` that hands out the same views and refuses any other
  module with a message that lists the allowed ones.
- ``_write_`` lets code assign items and attributes on ordinary objects (lists, dicts, DataFrames, ``ctx``,
  numpy arrays through a proxy that refuses re-pointing ``strides``/``data``-like attributes) and refuses
  modules, views, classes, functions and builtins.
- numpy's ``ndarray``/``recarray`` are `ClassGuard`s: an object array over a raw buffer would read raw
  bytes as object pointers.
- class statements are allowed: plain classes (``__init__`` and comparison methods only, no metaclass,
  enforced by RestrictedPython at compile time; `build_class` refuses metaclass and guarded bases).
- ``type(x)`` returns the class of a value (not for classes, modules, functions, frames...); 3-argument
  ``type`` is refused. ``open``, ``eval``, ``exec``, ``compile``, ``globals``, ``locals``, ``vars``,
  ``dir``, ``input``, ``help``, ``breakpoint``, ``memoryview``, ``exit`` are stubs that refuse.

A run-time refusal raises `PolicyViolation`; `translate_exception` turns it into
``errors.StrategyPolicyViolation`` naming the line. Nothing here imports numpy, pandas or talib at import
time (`compile_strategy` must stay cheap); they are imported when the first globals are built.
"""

from __future__ import annotations

import builtins
import importlib
import operator
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from RestrictedPython.Guards import safe_builtins
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from backtest_engine.sandbox.log import StrategyLog


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
    "pandas",
    "talib",
    "math",
    "statistics",
)
ALLOWED_MODULES_TEXT = "numpy (with numpy.random, numpy.linalg, numpy.fft), pandas, talib, math and statistics"

_FILES = "it reads or writes files, and a strategy has no file access"
_SERIALIZE = "it writes files or serializes objects, and a strategy has no file access"
_INTERNAL = "it is internal machinery, not part of what a strategy may use"
_NO_MODULE = f"that module is not available to strategies (allowed: {ALLOWED_MODULES_TEXT})"
_EVAL = "it evaluates code given as a string; write the expression in Python instead"
_OPTIONS = "library options are fixed for strategies"
_PLOT = "plotting is not available in a backtest"

# Names refused on every object (checked on the fast path too).
DENY_ANY: dict[str, str] = {
    name: "it exposes interpreter internals (frames, code, globals)" for name in INSPECT_ATTRIBUTES
}
DENY_ANY.update(
    {
        # Cython / Python 2 spellings of function internals
        "func_globals": "it exposes a function's globals",
        "func_code": "it exposes a function's code",
        "func_closure": "it exposes a function's closure",
        "func_defaults": "it exposes a function's internals",
        "func_dict": "it exposes a function's internals",
        "im_func": "it exposes a method's internals",
        "im_self": "it exposes a method's internals",
        "mro": "class internals are not available to strategies",
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
        "query": _EVAL,
    }
)
_DENY_ANY_NAMES = frozenset(DENY_ANY)

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
                "lib",
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
                "emath",
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
    "talib": {
        n: _INTERNAL
        for n in ["abstract", "stream", "func", "get_functions", "get_function_groups", "set_compatibility"]
    },
}
MODULE_DENY_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "pandas": (("read_", "it reads files; the market data reaches your strategy as `data` / `ctx.data`"),),
}


def module_refusal(module: str, name: str) -> str | None:
    """Why ``module.name`` is refused by the static deny lists, or None (allow lists are checked at run time)."""
    if name.startswith("_"):
        return "names starting with '_' are private"
    reason = MODULE_DENY.get(module, {}).get(name)
    if reason is not None:
        return reason
    for prefix, why in MODULE_DENY_PREFIXES.get(module, ()):
        if name.startswith(prefix):
            return why
    return None


def name_refusal(name: str) -> str | None:
    """Why an attribute *name* is refused on some object or module, or None. Used for names given as strings."""
    if name.startswith("_"):
        return "names starting with '_' are private"
    if name in DENY_ANY:
        return DENY_ANY[name]
    if name.startswith("to_") and name not in PANDAS_TO_ALLOWED:
        return _SERIALIZE
    for module in MODULE_DENY:
        reason = module_refusal(module, name)
        if reason is not None:
            return reason
    return None


def _attr_message(owner: str, name: str, reason: str) -> str:
    return f"{owner}.{name} is not allowed in a strategy: {reason}"


def _owner_name(obj: Any) -> str:
    if isinstance(obj, ModuleView):
        return obj._mv_name
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

    __slots__ = ("_mv_allow", "_mv_cache", "_mv_module", "_mv_name")

    _mv_name: str
    _mv_module: types.ModuleType
    _mv_cache: dict[str, Any]
    _mv_allow: frozenset[str] | None

    def __init__(self, module: types.ModuleType, allow: frozenset[str] | None) -> None:
        object.__setattr__(self, "_mv_name", module.__name__)
        object.__setattr__(self, "_mv_module", module)
        object.__setattr__(self, "_mv_cache", {})
        object.__setattr__(self, "_mv_allow", allow)

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
        reason = module_refusal(mod, name)
        if reason is None and self._mv_allow is not None and name not in self._mv_allow:
            reason = _allow_list_text(mod)
        if reason is not None:
            raise PolicyViolation(_attr_message(mod, name, reason))
        try:
            value = getattr(self._mv_module, name)
        except AttributeError:
            raise AttributeError(f"module '{mod}' has no attribute '{name}'") from None
        value = _vet_value(value, mod, name)
        self._mv_cache[name] = value
        return value

    def __getattr__(self, name: str) -> Any:
        # Reached by native lookups: ``from numpy import x`` (IMPORT_FROM) and trusted code. Private names
        # answer AttributeError so library probes (``hasattr(view, "__array__")``) behave normally; strategy
        # code cannot spell them (refused at compile time and by the getattr builtin).
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


def _allow_list_text(module: str) -> str:
    if module == "talib":
        return "talib offers its indicator functions (talib.SMA, talib.EMA, talib.RSI, ...) and talib.MA_Type"
    return f"{module} offers only its public functions and constants"


_VIEWS: dict[str, ModuleView] = {}


def _allow_list(name: str, module: types.ModuleType) -> frozenset[str] | None:
    if name == "talib":
        return frozenset(module.get_functions()) | {"MA_Type"}
    if name == "statistics":
        return frozenset(module.__all__)
    if name == "math":
        return frozenset(n for n in dir(module) if not n.startswith("_"))
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
    view = ModuleView(module, _allow_list(name, module))
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
) -> ModuleView:
    """``__import__`` for strategies: allowed modules only, always as views."""
    if level != 0:
        raise ImportRefused(f"relative imports are not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}")
    if type(name) is not str or name not in ALLOWED_MODULES:
        raise ImportRefused(f"import of '{name}' is not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}")
    if fromlist:
        return view_of(name)
    view_of(name)  # import the submodule itself, as Python's import statement does
    return view_of(name.partition(".")[0])


# ---- class guards: numpy classes whose constructors take raw buffers -----------------------------------


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
        raise PolicyViolation(f"subclassing {self._cg_cls.__name__} is not allowed in a strategy")

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


def _no_object_view_of_foreign_memory(array: Any) -> None:
    if array.dtype.hasobject and not array.flags.owndata:
        raise PolicyViolation(
            "an array of Python objects over a raw buffer is not allowed in a strategy (it would read raw memory "
            "as object pointers); build object arrays from values, e.g. np.array([...], dtype=object)"
        )


_CLASS_GUARDS: dict[type, ClassGuard] = {}
# Names refused on instances of a type (checked on the guarded path only: these types are not "plain").
_TYPE_DENY: list[tuple[type, dict[str, str]]] = []


# ---- attribute access ----------------------------------------------------------------------------------

# Types whose attributes are read with just the deny-set check. Exact types only (no subclasses).
_PLAIN_READ: set[type] = {int, float, complex, bool, list, dict, tuple, set, frozenset, range, slice, type(None)}
# Types whose items and attributes may be written without further checks.
_PLAIN_WRITE: set[type] = {list, dict}

_ModuleType = types.ModuleType


def register_plain_type(cls: type) -> None:
    """Let strategies read and write attributes of `cls`'s instances on the fast path.

    For the runtime's own classes (context, bar, series views): trusted classes whose public attributes
    hold no modules, files or interpreter internals. Exact type only; subclasses take the checked path.
    """
    if not isinstance(cls, type) or issubclass(cls, type | _ModuleType | ModuleView):
        raise TypeError(f"register_plain_type needs an ordinary class, got {cls!r}")
    _PLAIN_READ.add(cls)
    _PLAIN_WRITE.add(cls)


def guarded_getattr(obj: Any, name: str) -> Any:
    """``_getattr_``: what ``obj.name`` compiles to in a strategy."""
    if type(obj) in _PLAIN_READ and name not in _DENY_ANY_NAMES and name[0] != "_":
        return getattr(obj, name)
    return _getattr_slow(obj, name)


def _getattr_slow(obj: Any, name: str) -> Any:
    if type(name) is not str:
        raise PolicyViolation(f"attribute names are strings, not {type(name).__name__}")
    tp = type(obj)
    if tp is ModuleView:
        return obj._mv_get(name)
    if name.startswith("_"):
        raise PolicyViolation(
            f"access to '{name}' is not allowed in a strategy: names starting with '_' are private "
            "(use the public attributes and functions)"
        )
    reason = DENY_ANY.get(name)
    if reason is not None:
        raise PolicyViolation(_attr_message(_owner_name(obj), name, reason))
    for cls, denied in _TYPE_DENY:
        if name in denied and isinstance(obj, cls):
            raise PolicyViolation(_attr_message(_owner_name(obj), name, denied[name]))
    if tp is ClassGuard:
        return _vet_value(_getattr_slow(obj._cg_cls, name), obj._cg_cls.__name__, name)
    if isinstance(obj, _ModuleType):  # a real module should never reach strategy code; view it or refuse
        return module_view(obj)._mv_get(name)
    if name in ("format", "format_map") and (isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))):
        raise PolicyViolation(
            f"str.{name} is not allowed in a strategy (format strings can reach object internals); "
            "use an f-string or %-formatting instead"
        )
    owner = obj if isinstance(obj, type) else tp
    owner_module = getattr(owner, "__module__", None)
    if not isinstance(owner_module, str):
        owner_module = ""
    from_pandas = owner_module.startswith("pandas")
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
    return _vet_value(value, _owner_name(obj), name)


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
    return value


class _StringDispatchGuard:
    """Wraps a pandas method that resolves string arguments with getattr (``apply("to_csv")``)."""

    __slots__ = ("_sd_label", "_sd_method")

    def __init__(self, method: Callable[..., Any], label: str) -> None:
        self._sd_method = method
        self._sd_label = label

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for text in _strings_in((args, kwargs), depth=0):
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
        items = list(value.keys()) + list(value.values()) if type(value) is dict else list(value)
        for item in items:
            yield from _strings_in(item, depth + 1)


def _check_attr_name(name: Any) -> str:
    if type(name) is not str or not name:
        raise PolicyViolation(f"attribute names are non-empty strings, not {name!r:.40}")
    if name.startswith("_"):
        raise PolicyViolation(
            f"access to '{name}' is not allowed in a strategy: names starting with '_' are private "
            "(use the public attributes and functions)"
        )
    return name


_MISSING = object()


def safe_getattr(obj: Any, name: str, default: Any = _MISSING) -> Any:
    """The ``getattr`` builtin for strategies. A refusal is raised even when a default is given."""
    name = _check_attr_name(name)
    if default is _MISSING:
        return guarded_getattr(obj, name)
    try:
        return guarded_getattr(obj, name)
    except AttributeError:
        return default


def safe_hasattr(obj: Any, name: str) -> bool:
    """The ``hasattr`` builtin for strategies."""
    name = _check_attr_name(name)
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
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
    """``_write_``: what ``obj.x = v`` / ``obj[k] = v`` / ``del obj.x`` write through."""
    if type(obj) in _PLAIN_WRITE:
        return obj
    if isinstance(obj, _READ_ONLY_KINDS):
        raise PolicyViolation(
            f"cannot assign to attributes or items of {_describe_read_only(obj)}: modules, classes, functions and "
            "builtins are read-only in a strategy"
        )
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return _ArrayWriter(obj)
    return obj


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


_READ_ONLY_KINDS += (_StringDispatchGuard, _ArrayWriter)


def safe_setattr(obj: Any, name: str, value: Any) -> None:
    """The ``setattr`` builtin for strategies."""
    setattr(guarded_write(obj), _check_attr_name(name), value)


def safe_delattr(obj: Any, name: str) -> None:
    """The ``delattr`` builtin for strategies."""
    delattr(guarded_write(obj), _check_attr_name(name))


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
) | {ModuleView, ClassGuard, _StringDispatchGuard, _ArrayWriter}


def safe_type(*args: Any) -> Any:
    """``type(x)``: the class of a value. Dynamic class creation and interpreter-internal types are refused."""
    if len(args) != 1:
        raise PolicyViolation(
            "type() with 3 arguments (creating a class dynamically) is not allowed in a strategy; use a class statement"
        )
    cls = type(args[0])
    if cls in _HIDDEN_TYPES or issubclass(cls, type):
        raise PolicyViolation(
            f"type() of a {'class' if issubclass(cls, type) else cls.__name__} is not available in a strategy; "
            "use isinstance() to test types"
        )
    return _CLASS_GUARDS.get(cls, cls)


def build_class(name: str, bases: tuple[Any, ...], namespace: dict[str, Any], **kwargs: Any) -> type:
    """``__metaclass__`` for class statements: plain classes only."""
    if kwargs:
        raise PolicyViolation(f"class {name}: class keywords ({', '.join(kwargs)}) are not allowed in a strategy")
    for base in bases:
        if not isinstance(base, type) or issubclass(base, type) or base in _HIDDEN_TYPES:
            raise PolicyViolation(f"class {name}: {base!r} cannot be a base class in a strategy")
    return type(name, bases, namespace)


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
_NO_DYNAMIC_CODE = "a strategy cannot build or run code from strings"
_NO_INTROSPECTION = "a strategy cannot inspect namespaces; use the names you defined"
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
    "memoryview": "raw memory access is not allowed",
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
    "tuple",
    "zip",
    "property",
    "staticmethod",
    "classmethod",
    "Exception",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "IndexError",
    "KeyError",
    "LookupError",
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
    take raw buffers are guarded, and ``ndarray.base`` is refused (the base of a revealed slice is the
    whole series, future bars included)."""
    global _numpy_ready
    if _numpy_ready:
        return
    import numpy as np

    for scalar in (np.float64, np.float32, np.int64, np.int32, np.bool_, np.datetime64, np.timedelta64):
        _PLAIN_READ.add(scalar)
    for cls in (np.ndarray, np.recarray):
        _CLASS_GUARDS[cls] = ClassGuard(cls, _no_object_view_of_foreign_memory)
    _TYPE_DENY.append(
        (np.ndarray, {"base": "it reaches the whole array a slice was cut from (later bars included); use the slice"})
    )
    _numpy_ready = True


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
        "__name__": "strategy",
        "__metaclass__": build_class,
        "_getattr_": guarded_getattr,
        "_type_": type,  # the inline fast paths emitted by compiler.StrategyTransformer
        "_plain_": _PLAIN_READ,
        "_plain_write_": _PLAIN_WRITE,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_write_": guarded_write,
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
