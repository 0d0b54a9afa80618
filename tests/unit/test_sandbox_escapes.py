"""Sandbox escape attempts: every technique must be refused, at compile time or at run time, with the
specific refusal, and must leave a canary file and a canary environment variable untouched.

Each case is a strategy body run as ``generate_signals(data, params)``; ``{canary}`` is the path of a file
holding "intact". ``compile`` cases must fail `compile_strategy` (a 400 at submit); ``policy`` cases compile
and must raise `StrategyPolicyViolation` when run (both name the line and what was refused).
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest_engine.errors import EngineError, StrategyCompileError, StrategyPolicyViolation
from backtest_engine.sandbox import StrategyLog, compile_strategy, translate_exception

ALLOWED = "allowed: numpy (with numpy.random, numpy.linalg, numpy.fft), pandas, talib, math and statistics"
PRIVATE_NAME = 'starts with "_"'  # RestrictedPython's compile-time refusal of private names
PRIVATE_RUNTIME = "names starting with '_' are private"


@dataclass(frozen=True)
class Escape:
    id: str
    body: str
    outcome: str  # "compile" or "policy"
    fragment: str  # what the refusal must say


ESCAPES = [
    # ---- imports -------------------------------------------------------------------------------------
    Escape("dunder_import_call", "os = __import__('os')\nos.remove('{canary}')", "compile", PRIVATE_NAME),
    *[
        Escape(
            f"import_{mod}", f"import {mod}", "compile", f"import of '{mod}' is not allowed in a strategy; {ALLOWED}"
        )
        for mod in ("os", "sys", "subprocess", "socket", "ctypes", "pickle", "builtins", "importlib")
    ],
    Escape(
        "from_os_import_system",
        "from os import system\nsystem('rm {canary}')",
        "compile",
        f"import from 'os' is not allowed in a strategy; {ALLOWED}",
    ),
    Escape("import_os_path_dotted", "import os.path", "compile", "import of 'os.path' is not allowed"),
    Escape("relative_import", "from . import secrets", "compile", "relative imports are not allowed"),
    Escape(
        "import_numpy_internal_submodule",
        "import numpy.ctypeslib",
        "compile",
        "import of 'numpy.ctypeslib' is not allowed",
    ),
    Escape(
        "from_numpy_import_lib",
        "from numpy import lib\nlib.npyio.load('{canary}')",
        "compile",
        "numpy.lib is not allowed",
    ),
    Escape(
        "import_string_formatter",
        "import string\nstring.Formatter().format('{{0.__class__}}', 1)",
        "compile",
        "import of 'string' is not allowed",
    ),
    # ---- builtins that reach files, code or namespaces -------------------------------------------------
    Escape("open_call", "open('{canary}', 'w').write('pwned')", "compile", "open() is not available in a strategy"),
    Escape(
        "open_through_alias",
        "f = open\nf('{canary}', 'w').write('pwned')",
        "policy",
        "open() is not available in a strategy",
    ),
    Escape("eval_call", "eval(\"__import__('os').remove('{canary}')\")", "compile", "Eval calls are not allowed"),
    Escape("exec_call", 'exec("import os")', "compile", "Exec calls are not allowed"),
    Escape("eval_through_alias", "e = eval\ne('1 + 1')", "policy", "eval() is not available in a strategy"),
    Escape(
        "compile_builtin",
        "code = compile('import os', 'x', 'exec')",
        "compile",
        "compile() is not available in a strategy",
    ),
    Escape("builtins_dict", "__builtins__['open']('{canary}', 'w')", "compile", PRIVATE_NAME),
    Escape("globals_builtins", "globals()['__builtins__']", "compile", "globals() is not available"),
    Escape("globals_through_alias", "g = globals\nreturn g()", "policy", "globals() is not available"),
    Escape("vars_call", "return vars()", "compile", "vars() is not available"),
    Escape("dir_through_alias", "d = dir\nreturn d(np)", "policy", "dir() is not available"),
    Escape("locals_call", "return locals()", "compile", "locals() is not available"),
    Escape("breakpoint_call", "breakpoint()", "compile", '"breakpoint" is a reserved name'),
    Escape("help_call", "help(np)", "compile", "help() is not available"),
    Escape("input_call", "x = input()", "compile", "input() is not available"),
    Escape("memoryview_through_alias", "m = memoryview\nreturn m(b'abc')", "policy", "memoryview() is not available"),
    Escape("print_to_file", "print('pwned', file=data)", "policy", "print(file=...) is not allowed"),
    # ---- object-graph walks -----------------------------------------------------------------------------
    Escape("subclasses_walk", "return ().__class__.__bases__[0].__subclasses__()", "compile", PRIVATE_NAME),
    Escape(
        "getattr_dunder_literal",
        "return getattr((), '__class__')",
        "compile",
        "getattr(..., '__class__') is not allowed",
    ),
    Escape(
        "getattr_constructed_name",
        "return getattr((), '__cla' + 'ss__')",
        "policy",
        f"access to '__class__' is not allowed in a strategy: {PRIVATE_RUNTIME}",
    ),
    Escape(
        "getattr_with_default_does_not_mask", "return getattr((), '_' * 2 + 'class__', None)", "policy", PRIVATE_RUNTIME
    ),
    Escape("hasattr_constructed_name", "return hasattr(data, '_' + '_dict__')", "policy", PRIVATE_RUNTIME),
    Escape("type_mro", "return type(()).mro()", "compile", ".mro is not allowed"),
    Escape("type_mro_constructed", "return getattr(type(()), 'm' + 'ro')()", "policy", "tuple.mro is not allowed"),
    Escape("type_three_args", "T = type('T', (), {{'x': 1}})", "policy", "type() with 3 arguments"),
    Escape("type_of_type", "meta = type(type(1))", "policy", "type() of a class is not available"),
    Escape("function_globals", "def f():\n    pass\nreturn f.__globals__", "compile", PRIVATE_NAME),
    Escape(
        "function_globals_cython_spelling",
        "return getattr(talib.SMA, 'func_' + 'globals')",
        "policy",
        "func_globals is not allowed",
    ),
    Escape(
        "generator_frame",
        "g = (i for i in [1])\nreturn g.gi_frame.f_back",
        "compile",
        '"gi_frame" is a restricted name',
    ),
    Escape(
        "generator_frame_constructed",
        "g = (i for i in [1])\nreturn getattr(g, 'gi_' + 'frame')",
        "policy",
        "generator.gi_frame is not allowed",
    ),
    Escape(
        "frame_f_back_walk",
        "g = (i for i in [1])\nreturn getattr(getattr(g, 'gi_' + 'frame'), 'f_' + 'back')",
        "policy",
        "gi_frame is not allowed",
    ),
    Escape(
        "traceback_frame_walk",
        "try:\n    1 / 0\nexcept Exception as e:\n    return e.__traceback__.tb_frame",
        "compile",
        PRIVATE_NAME,
    ),
    Escape(
        "traceback_constructed",
        "try:\n    1 / 0\nexcept Exception as e:\n    return getattr(e, '__trace' + 'back__')",
        "policy",
        PRIVATE_RUNTIME,
    ),
    Escape("sys_getframe_via_statistics", "return statistics.sys", "policy", "statistics.sys is not allowed"),
    Escape(
        "sys_getframe_constructed", "s = getattr(statistics, 's' + 'ys')\nreturn s._getframe()", "compile", PRIVATE_NAME
    ),
    Escape(
        "module_leak_via_allowed_module",
        "return getattr(statistics, 'ran' + 'dom')",
        "policy",
        "statistics.random is not allowed",
    ),
    # ---- format strings ---------------------------------------------------------------------------------
    Escape("str_format_literal", "return '{{0.__class__}}'.format(1)", "compile", "str.format is not allowed"),
    Escape(
        "str_format_variable",
        "s = '{{0.__class__.__mro__}}'\nreturn s.format(1)",
        "policy",
        "str.format is not allowed",
    ),
    Escape(
        "str_format_map",
        "s = '{{x.__class__}}'\nreturn s.format_map({{'x': 1}})",
        "policy",
        "str.format_map is not allowed",
    ),
    Escape("str_format_unbound", "return str.format('{{0.__class__}}', 1)", "policy", "str.format is not allowed"),
    # ---- numpy file and memory access ---------------------------------------------------------------------
    *[
        Escape(
            f"np_{fn}",
            f"np.{fn}('{canary}')",
            "compile",
            f"numpy.{fn} is not allowed in a strategy: it reads or writes files",
        )
        for fn, canary in (
            ("load", "{canary}"),
            ("save", "{canary}"),
            ("loadtxt", "{canary}"),
            ("savetxt", "{canary}"),
            ("fromfile", "{canary}"),
            ("memmap", "{canary}"),
            ("genfromtxt", "{canary}"),
        )
    ],
    Escape("np_load_constructed", "return getattr(np, 'lo' + 'ad')('{canary}')", "policy", "numpy.load is not allowed"),
    Escape("np_lib_npyio", "return np.lib.npyio.load('{canary}')", "compile", "numpy.lib is not allowed"),
    Escape("np_lib_constructed", "return getattr(np, 'l' + 'ib')", "policy", "numpy.lib is not allowed"),
    Escape("np_ctypeslib", "return np.ctypeslib.as_array", "compile", "numpy.ctypeslib is not allowed"),
    Escape(
        "np_internal_module_value", "return getattr(np, 'co' + 're').multiarray", "policy", "numpy.core is not allowed"
    ),
    Escape("arr_tofile", "np.arange(3.0).tofile('{canary}')", "compile", ".tofile is not allowed"),
    Escape(
        "arr_tofile_constructed",
        "getattr(np.arange(3.0), 'to' + 'file')('{canary}')",
        "policy",
        "ndarray.tofile is not allowed",
    ),
    Escape("arr_dump", "np.arange(3.0).dump('{canary}')", "compile", ".dump is not allowed"),
    Escape("arr_dumps", "return np.arange(3.0).dumps()", "compile", ".dumps is not allowed"),
    Escape("arr_ctypes", "return np.arange(3.0).ctypes.data", "compile", ".ctypes is not allowed"),
    Escape(
        "arr_ctypes_constructed",
        "return getattr(np.arange(3.0), 'c' + 'types')",
        "policy",
        "ndarray.ctypes is not allowed",
    ),
    Escape(
        "rng_cffi",
        "return getattr(np.random.default_rng().bit_generator, 'cf' + 'fi')",
        "policy",
        "cffi is not allowed",
    ),
    Escape(
        "object_array_over_raw_bytes",
        "return np.ndarray((1,), dtype=object, buffer=bytearray(8))[0]",
        "policy",
        "an array of Python objects over a raw buffer",
    ),
    Escape(
        "object_array_via_type_of_array",
        "A = type(np.zeros(1))\nreturn A((1,), dtype=object, buffer=bytearray(8))[0]",
        "policy",
        "an array of Python objects over a raw buffer",
    ),
    Escape(
        "object_recarray_over_raw_bytes",
        "return np.recarray((1,), dtype=[('a', 'O')], buf=bytearray(8))[0]",
        "policy",
        "an array of Python objects over a raw buffer",
    ),
    Escape(
        "slice_base_reaches_whole_array", "return data.close.values[:5].base", "policy", "ndarray.base is not allowed"
    ),
    Escape("subclass_ndarray", "class Evil(np.ndarray):\n    pass", "policy", "subclassing ndarray is not allowed"),
    # ---- pandas file access, eval and string dispatch --------------------------------------------------------
    Escape("pd_read_csv", "return pd.read_csv('{canary}')", "compile", "pandas.read_csv is not allowed"),
    Escape("pd_read_pickle", "return pd.read_pickle('{canary}')", "compile", "pandas.read_pickle is not allowed"),
    Escape(
        "pd_read_constructed",
        "return getattr(pd, 'read_' + 'pickle')('{canary}')",
        "policy",
        "pandas.read_pickle is not allowed",
    ),
    Escape("pd_io", "return pd.io.common", "compile", "pandas.io is not allowed"),
    Escape("df_to_csv", "data.to_csv('{canary}')", "compile", ".to_csv is not allowed"),
    Escape("df_to_pickle", "data.to_pickle('{canary}')", "compile", ".to_pickle is not allowed"),
    Escape(
        "df_to_constructed", "getattr(data, 'to_' + 'csv')('{canary}')", "policy", "DataFrame.to_csv is not allowed"
    ),
    Escape(
        "df_unknown_writer",
        "getattr(data, 'to_' + 'future_format')('{canary}')",
        "policy",
        "DataFrame.to_future_format is not allowed",
    ),
    Escape(
        "df_class_to_csv",
        "f = pd.DataFrame\nreturn getattr(f, 'to_' + 'csv')(data, '{canary}')",
        "policy",
        "DataFrame.to_csv is not allowed",
    ),
    Escape(
        "series_apply_string_writer",
        "data.close.apply('to_csv', path_or_buf='{canary}')",
        "policy",
        "Series.apply('to_csv') is not allowed",
    ),
    Escape(
        "df_agg_string_writer",
        "data.agg({{'close': 'to_pickle'}})",
        "policy",
        "DataFrame.agg('to_pickle') is not allowed",
    ),
    Escape("pd_eval", "return pd.eval('1 + 1')", "compile", "pandas.eval is not allowed"),
    Escape("df_query_dunder", "return data.query('@data.__class__')", "compile", ".query is not allowed"),
    Escape(
        "df_eval_constructed",
        "return getattr(data, 'ev' + 'al')('close + 1')",
        "policy",
        "DataFrame.eval is not allowed",
    ),
    Escape("pd_set_option", "pd.set_option('display.max_rows', 1)", "compile", "pandas.set_option is not allowed"),
    # ---- talib internals ---------------------------------------------------------------------------------
    Escape("talib_abstract", "return talib.abstract.Function('SMA')", "compile", "talib.abstract is not allowed"),
    Escape(
        "talib_abstract_constructed",
        "return getattr(talib, 'abs' + 'tract')",
        "policy",
        "talib.abstract is not allowed",
    ),
    Escape(
        "talib_non_indicator", "return getattr(talib, 'at' + 'exit')", "policy", "talib offers its indicator functions"
    ),
    Escape("import_talib_stream", "import talib.stream", "compile", "import of 'talib.stream' is not allowed"),
    # ---- writes to shared modules ------------------------------------------------------------------------
    Escape("module_write", "np.sum = lambda *a: 0", "policy", "cannot assign to attributes or items of module numpy"),
    Escape(
        "module_setattr", "setattr(math, 'sqrt', None)", "policy", "cannot assign to attributes or items of module math"
    ),
    Escape("module_private_setattr", "setattr(data, '_' + '_class__', dict)", "policy", PRIVATE_RUNTIME),
    # ---- classes, lambdas, closures ----------------------------------------------------------------------
    Escape("class_init_subclass", "class A:\n    def __init_subclass__(cls):\n        pass", "compile", PRIVATE_NAME),
    Escape(
        "class_metaclass_keyword",
        "class A(metaclass=type):\n    pass",
        "compile",
        'The keyword argument "metaclass" is not allowed',
    ),
    Escape(
        "class_getattr_hook",
        "class A:\n    def __getattr__(self, name):\n        return self.x\nreturn A().y",
        "compile",
        PRIVATE_NAME,
    ),
    Escape(
        "class_based_on_metaclass", "class M(type(type(1))):\n    pass", "policy", "type() of a class is not available"
    ),
    Escape(
        "lambda_default_rebinds_guard", "f = lambda _getattr_=getattr: _getattr_\nreturn f()", "compile", PRIVATE_NAME
    ),
    Escape(
        "closure_nonlocal",
        "x = 1\ndef f():\n    nonlocal x\n    x = 2",
        "compile",
        "Nonlocal statements are not allowed",
    ),
    Escape(
        "except_star", "try:\n    pass\nexcept* ValueError:\n    pass", "compile", "TryStar statements are not allowed"
    ),
    Escape("async_function", "async def f():\n    pass", "compile", "AsyncFunctionDef statements are not allowed"),
]


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "canary.txt"
    path.write_text("intact")
    monkeypatch.setenv("SANDBOX_CANARY", "intact")
    return path


def _attempt(body: str) -> EngineError | None:
    source = "def generate_signals(data, params):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    data = pd.DataFrame({"close": np.linspace(1.0, 2.0, 20)})
    try:
        namespace = compile_strategy(source).load(StrategyLog(100, 10_000))
        namespace["generate_signals"](data, {})
    except EngineError as exc:
        return exc
    except BaseException as exc:
        return translate_exception(exc)
    return None


def test_the_suite_has_at_least_30_distinct_techniques():
    ids = [case.id for case in ESCAPES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


@pytest.mark.parametrize("case", ESCAPES, ids=[case.id for case in ESCAPES])
def test_escape_is_refused(case: Escape, canary: Path):
    # Given an escape attempt aimed at the canary file
    body = case.body.format(canary=canary)
    # When the strategy is compiled and run
    error = _attempt(body)
    # Then it is refused the expected way, with a message that says what
    expected = StrategyCompileError if case.outcome == "compile" else StrategyPolicyViolation
    assert type(error) is expected, f"{case.id}: got {type(error).__name__}: {error}"
    assert case.fragment in error.message, error.message
    assert error.line is not None and error.message.startswith(f"line {error.line}: ")
    # And nothing was touched
    assert canary.read_text() == "intact"
    assert sorted(p.name for p in canary.parent.iterdir()) == ["canary.txt"]
    assert os.environ["SANDBOX_CANARY"] == "intact"


def test_private_attribute_errors_from_a_view_never_fall_back_to_sys_modules():
    # `from numpy import <name>` falls back to sys.modules["numpy.<name>"] when the attribute lookup raises
    # AttributeError; the view raises PolicyViolation instead, so numpy.lib (loaded in sys.modules) stays out
    error = _attempt("from numpy import random as r\nreturn getattr(r, 'mt' + 'rand')")
    assert isinstance(error, StrategyPolicyViolation)
    assert "not available to strategies" in error.message or "numpy.random.mtrand" in error.message


@pytest.mark.parametrize("name", ["os", "sys", "subprocess", "ctypes"])
def test_interpreter_modules_are_not_reachable_through_numpy_or_pandas(name: str):
    # numpy/pandas do not re-export these today; if a version ever does, the module-value check refuses it
    for module in ("np", "pd"):
        error = _attempt(f"return getattr({module}, {name!r})")
        assert isinstance(error, StrategyPolicyViolation | EngineError) and error is not None
        assert f"has no attribute '{name}'" in error.message or "is not allowed" in error.message


def test_a_module_valued_attribute_of_any_object_is_refused_unless_allowed():
    # Given an object that holds a real module (AttributeError.obj, a library object, ...)
    import os as real_os

    holder = type("Holder", (), {})()
    holder.mod = real_os
    holder.np = np
    source = "def generate_signals(data, params):\n    return [data.np, data.mod]\n"
    namespace = compile_strategy(source).load(StrategyLog(1, 100))
    # Then an allowed module comes back as its view and any other module is refused
    with pytest.raises(ImportError, match="module 'os' is not available to strategies"):
        namespace["generate_signals"](holder, {})
