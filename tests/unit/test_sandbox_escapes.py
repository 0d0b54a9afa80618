"""Sandbox escape attempts: every technique must be refused, at compile time or at run time, with the
specific refusal, and must leave a canary file and a canary environment variable untouched.

Each case is a strategy body run as ``generate_signals(data, params)``; ``{canary}`` is the path of a file
holding "intact". ``compile`` cases must fail `compile_strategy` (a 400 at submit); ``policy`` cases compile
and must raise `StrategyPolicyViolation` when run (both name the line and what was refused). `HARMLESS`
cases run to completion: the technique is ordinary code now, and what it returns shows it reached nothing.

The language layer is permissive for ordinary Python (the operating system is the trust boundary), so some
techniques once refused at compile time for their ``_`` names are now refused at run time, on the objects
they target (library objects, module views, the engine's errors), or are harmless.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backtest_engine.bars import Bars
from backtest_engine.broker import Costs
from backtest_engine.errors import EngineError, StrategyCompileError, StrategyPolicyViolation
from backtest_engine.runtime import execute
from backtest_engine.sandbox import StrategyLog, compile_strategy, translate_exception
from backtest_engine.sandbox.policy import ALLOWED_MODULES_TEXT

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

ALLOWED = "allowed: " + ALLOWED_MODULES_TEXT
RESERVED = "is a reserved name"
RAW_MEMORY = "it would let numpy or pandas read raw memory"
LIBRARY_PRIVATE = "private attributes of library objects are internal"
LIBRARY_SPECIAL = "special methods of library objects are not available"
FORMAT_FIELD = "reads attributes or items"
INTERNALS = "it reaches interpreter internals"
CLASS_WITH_METHOD = "class A:\n    def m(self):\n        {}\nreturn A().m()"


@dataclass(frozen=True)
class Escape:
    id: str
    body: str
    outcome: str  # "compile" or "policy"
    fragment: str  # what the refusal must say


def _method(body: str) -> str:
    return CLASS_WITH_METHOD.format(body)


ESCAPES = [
    # ---- imports -------------------------------------------------------------------------------------
    Escape("dunder_import_call", "os = __import__('os')\nos.remove('{canary}')", "compile", f'"__import__" {RESERVED}'),
    *[
        Escape(
            f"import_{mod}", f"import {mod}", "compile", f"import of '{mod}' is not allowed in a strategy; {ALLOWED}"
        )
        for mod in ("os", "sys", "subprocess", "socket", "ctypes", "pickle", "builtins", "importlib", "string")
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
    Escape("import_numpy_lib_npyio", "import numpy.lib.npyio", "compile", "import of 'numpy.lib.npyio' is not allowed"),
    Escape(
        "from_numpy_import_lib_then_npyio",
        "from numpy import lib\nlib.npyio.load('{canary}')",
        "compile",
        "numpy.lib.npyio is not allowed",
    ),
    Escape(
        "from_numpy_lib_import_format", "from numpy.lib import format", "compile", "numpy.lib.format is not allowed"
    ),
    Escape(
        "import_string_formatter",
        "import string\nstring.Formatter().format('{{0.__class__}}', 1)",
        "compile",
        "import of 'string' is not allowed",
    ),
    Escape("import_talib_func_module", "import talib.func", "compile", "import of 'talib.func' is not allowed"),
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
    Escape("builtins_dict", "__builtins__['open']('{canary}', 'w')", "compile", f'"__builtins__" {RESERVED}'),
    Escape(
        "dunder_import_from_builtins",
        "return getattr(__builtins__, '__import__')('os')",
        "compile",
        f'"__builtins__" {RESERVED}',
    ),
    Escape(
        "builtins_module_through_builtin_self",
        "b = getattr(len, '__se' + 'lf__')\nreturn getattr(b, '__imp' + 'ort__')('os')",
        "policy",
        "access to '__self__' is not allowed",
    ),
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
    # ---- names reserved by the sandbox ----------------------------------------------------------------
    Escape(
        "assign_getattr_guard", "_getattr_ = lambda o, n: o\nreturn data.close", "compile", f'"_getattr_" {RESERVED}'
    ),
    Escape("assign_print_guard", "_print_ = None\nprint(1)", "compile", f'"_print_" {RESERVED}'),
    Escape("assign_write_guard", "_write_ = lambda o: o", "compile", f'"_write_" {RESERVED}'),
    Escape("assign_fast_path_set", "_plain_ = {{type(data)}}", "compile", f'"_plain_" {RESERVED}'),
    Escape(
        "assign_metaclass_hook", "__metaclass__ = dict\nclass A:\n    pass", "compile", f'"__metaclass__" {RESERVED}'
    ),
    Escape("assign_restricted_temporary", "_tmp0 = 1", "compile", f'"_tmp0" {RESERVED}'),
    Escape("assign_print_collector", "_print = 1", "compile", f'"_print" {RESERVED}'),
    Escape("global_rebinds_guard", "global _write_\n_write_ = 1", "compile", f'"_write_" {RESERVED}'),
    Escape(
        "lambda_default_rebinds_guard",
        "f = lambda _getattr_=getattr: _getattr_\nreturn f()",
        "compile",
        f'"_getattr_" {RESERVED}',
    ),
    Escape(
        "class_attribute_shadows_guard",
        "class A:\n    _getattr_ = staticmethod(lambda o, n: 1)\n    x = data.close",
        "compile",
        f'"_getattr_" {RESERVED}',
    ),
    # ---- object-graph walks -----------------------------------------------------------------------------
    Escape(
        "subclasses_walk",
        "return ().__class__.__bases__[0].__subclasses__()",
        "compile",
        "().__class__.__bases__ is not allowed in a strategy",
    ),
    Escape(
        "subclasses_of_object_class",
        "x = 1\nreturn x.__class__.__subclasses__()",
        "compile",
        "x.__class__.__subclasses__ is not allowed",
    ),
    Escape(
        "subclasses_constructed",
        "return getattr(getattr(1, '__class__'), '__subcl' + 'asses__')()",
        "policy",
        "access to '__subclasses__' is not allowed",
    ),
    Escape("mro_walk", "return type(1).__mro__", "compile", "type(1).__mro__ is not allowed"),
    Escape(
        "getattr_dunder_literal",
        "def f():\n    pass\nreturn getattr(f, '__globals__')",
        "compile",
        "getattr(..., '__globals__') is not allowed",
    ),
    Escape(
        "getattr_constructed_name",
        "def f():\n    pass\nreturn getattr(f, '__glob' + 'als__')",
        "policy",
        f"access to '__globals__' is not allowed in a strategy: {INTERNALS}",
    ),
    Escape(
        "getattr_with_default_does_not_mask",
        "def f():\n    pass\nreturn getattr(f, '_' * 2 + 'code__', None)",
        "policy",
        "access to '__code__' is not allowed",
    ),
    Escape("lambda_code", "return (lambda: 0).__code__", "compile", "__code__ is not allowed in a strategy"),
    Escape("type_mro", "return type(()).mro()", "policy", "tuple.mro is not allowed"),
    Escape("type_mro_constructed", "return getattr(type(()), 'm' + 'ro')()", "policy", "tuple.mro is not allowed"),
    Escape("type_three_args", "T = type('T', (), {{'x': 1}})", "policy", "type() with 3 arguments"),
    Escape("type_of_type", "meta = type(type(1))", "policy", "type() of a class is not available"),
    Escape("class_of_class", "return getattr(int, '__cla' + 'ss__')", "policy", "type() of a class is not available"),
    Escape("function_globals", "def f():\n    pass\nreturn f.__globals__", "compile", "f.__globals__ is not allowed"),
    Escape("function_closure", "def f():\n    pass\nreturn f.__closure__", "compile", "f.__closure__ is not allowed"),
    Escape(
        "function_globals_cython_spelling",
        "return getattr(talib.SMA, 'func_' + 'globals')",
        "policy",
        "func_globals is not allowed",
    ),
    Escape(
        "bound_method_self",
        "return getattr(data.close.mean, '__se' + 'lf__')",
        "policy",
        "access to '__self__' is not allowed",
    ),
    Escape(
        "classmethod_func",
        "return getattr(classmethod(len), '__fu' + 'nc__')",
        "policy",
        "access to '__func__' is not allowed",
    ),
    Escape(
        "wrapped_original",
        "import functools\n@functools.lru_cache\ndef f(x):\n    return x\nreturn getattr(f, '__wrap' + 'ped__')",
        "policy",
        "access to '__wrapped__' is not allowed",
    ),
    Escape(
        "reduce_protocol",
        "return getattr(data, '__red' + 'uce_ex__')(2)",
        "policy",
        "access to '__reduce_ex__' is not allowed",
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
        "e.__traceback__ is not allowed",
    ),
    Escape(
        "traceback_constructed",
        "try:\n    1 / 0\nexcept Exception as e:\n    return getattr(e, '__trace' + 'back__')",
        "policy",
        "access to '__traceback__' is not allowed",
    ),
    Escape("sys_getframe_via_statistics", "return statistics.sys", "policy", "statistics.sys is not allowed"),
    Escape(
        "sys_getframe_constructed",
        "s = getattr(statistics, 's' + 'ys')\nreturn s._getframe()",
        "policy",
        "statistics.sys is not allowed",
    ),
    Escape(
        "module_leak_via_allowed_module",
        "return getattr(statistics, 'ran' + 'dom')",
        "policy",
        "statistics.random is not allowed",
    ),
    Escape("datetime_sys", "import datetime\nreturn datetime.sys", "compile", "datetime.sys is not allowed"),
    Escape("datetime_capsule", "import datetime\nreturn datetime.datetime_CAPI", "compile", "datetime.datetime_CAPI"),
    # ---- private names on library objects (fine on the strategy's own classes) --------------------------
    Escape("numpy_private_module", "return np._core.multiarray", "compile", "numpy._core is not allowed"),
    Escape("numpy_private_constructed", "return getattr(np, '_co' + 're')", "policy", "numpy._core is not allowed"),
    Escape(
        "frame_block_manager",
        "return data._mgr",
        "policy",
        f"access to '_mgr' is not allowed in a strategy: {LIBRARY_PRIVATE}",
    ),
    Escape(
        "frame_block_manager_constructed",
        "return getattr(data, '_' + 'mgr')",
        "policy",
        "access to '_mgr' is not allowed",
    ),
    Escape(
        "frame_private_write",
        "data._mgr = None",
        "policy",
        f"assigning DataFrame._mgr is not allowed in a strategy: {LIBRARY_PRIVATE}",
    ),
    Escape(
        "frame_private_setattr", "setattr(data, '_' + 'mgr', None)", "policy", "assigning DataFrame._mgr is not allowed"
    ),
    Escape("frame_dict", "return data.__dict__", "compile", "data.__dict__ is not allowed"),
    Escape(
        "frame_dict_constructed",
        "return getattr(data, '__di' + 'ct__')",
        "policy",
        "access to '__dict__' is not allowed",
    ),
    Escape(
        "own_instance_dict_bypasses_name_checks",
        "class A:\n    pass\na = A()\ngetattr(a, '__di' + 'ct__')['__array_interface__'] = {{}}",
        "policy",
        "access to '__dict__' is not allowed",
    ),
    Escape(
        "library_class_init",
        "return getattr(type(data), '__in' + 'it__')",
        "policy",
        f"access to '__init__' is not allowed in a strategy: {LIBRARY_SPECIAL}",
    ),
    Escape(
        "object_setattr_bypass",
        "class A:\n    pass\nobject.__setattr__(A(), '__array_interface__', {{}})",
        "policy",
        f"access to '__setattr__' is not allowed in a strategy: {LIBRARY_SPECIAL}",
    ),
    Escape(
        "raw_buffer_new",
        "return np.ndarray.__new__(np.ndarray, (1,), dtype=object, buffer=bytearray(8))",
        "policy",
        "access to '__new__' is not allowed",
    ),
    Escape(
        "pandas_typ_marker",
        "class A:\n    pass\na = A()\na._typ = 'dataframe'",
        "compile",
        "assigning a._typ is not allowed",
    ),
    # ---- super() ---------------------------------------------------------------------------------------
    Escape(
        "super_getattribute",
        _method("return super().__getattribute__('m')"),
        "compile",
        "super().__getattribute__ is not allowed",
    ),
    Escape(
        "super_getattribute_constructed",
        _method("return getattr(super(), '__getattri' + 'bute__')('m')"),
        "policy",
        "access to '__getattribute__' is not allowed",
    ),
    Escape(
        "super_setattr_special_name",
        _method("super().__setattr__('__array_' + 'interface__', {{}})"),
        "policy",
        "assigning '__array_interface__' is not allowed",
    ),
    Escape(
        "super_new_of_a_library_class",
        _method("return super().__new__(pd.DataFrame)"),
        "policy",
        "__new__(DataFrame) is not allowed",
    ),
    # ---- classes that turn into raw memory, class machinery -----------------------------------------------
    Escape(
        "class_body_array_interface",
        "class A:\n    __array_interface__ = {{'shape': (1,), 'typestr': '|O', 'data': (0, False), 'version': 3}}\n"
        "return np.asarray(A())",
        "compile",
        f"defining __array_interface__ is not allowed in a strategy: {RAW_MEMORY}",
    ),
    Escape(
        "class_body_array_interface_property",
        "class A:\n    @property\n    def __array_interface__(self):\n        return {{}}",
        "compile",
        "defining __array_interface__ is not allowed",
    ),
    Escape(
        "class_body_array_struct",
        "class A:\n    __array_struct__ = None",
        "compile",
        "defining __array_struct__ is not allowed",
    ),
    Escape(
        "class_body_buffer",
        "class A:\n    def __buffer__(self, flags):\n        pass",
        "compile",
        "defining __buffer__",
    ),
    Escape("class_body_dlpack", "class A:\n    def __dlpack__(self):\n        pass", "compile", "defining __dlpack__"),
    Escape(
        "class_body_dataframe_protocol", "class A:\n    def __dataframe__(self):\n        pass", "compile", RAW_MEMORY
    ),
    Escape(
        "dataclass_field_array_interface",
        "from dataclasses import dataclass\n@dataclass\nclass A:\n    __array_interface__: dict",
        "compile",
        "defining __array_interface__ is not allowed",
    ),
    Escape(
        "setattr_array_interface_literal",
        "class A:\n    pass\nsetattr(A(), '__array_interface__', {{}})",
        "compile",
        "setattr(..., '__array_interface__') is not allowed",
    ),
    Escape(
        "setattr_array_interface_constructed",
        "class A:\n    pass\nsetattr(A(), '__array_' + 'interface__', {{}})",
        "policy",
        "assigning '__array_interface__' is not allowed",
    ),
    Escape(
        "self_array_interface_write",
        "class A:\n    def __init__(self):\n        self.__array_interface__ = {{}}",
        "compile",
        "assigning self.__array_interface__ is not allowed",
    ),
    Escape(
        "slots_array_interface",
        "class A:\n    __slots__ = ('__array_' + 'interface__',)",
        "policy",
        "'__array_interface__' is not allowed in __slots__",
    ),
    Escape(
        "class_assignment",
        "class A:\n    pass\na = A()\na.__class__ = A",
        "compile",
        "assigning a.__class__ is not allowed",
    ),
    Escape(
        "class_attribute_special_write",
        "class A:\n    pass\nsetattr(A, '__array' + '_interface__', {{}})",
        "policy",
        "assigning '__array_interface__' is not allowed",
    ),
    Escape(
        "class_init_subclass",
        "class A:\n    def __init_subclass__(cls):\n        pass",
        "compile",
        "defining __init_subclass__",
    ),
    Escape(
        "class_set_name",
        "class A:\n    def __set_name__(self, o, n):\n        pass",
        "compile",
        "defining __set_name__",
    ),
    Escape(
        "class_getattribute_hook",
        "class A:\n    def __getattribute__(self, name):\n        return 1",
        "compile",
        "defining __getattribute__ is not allowed",
    ),
    Escape(
        "class_del_hook", "class A:\n    def __del__(self):\n        pass", "compile", "defining __del__ is not allowed"
    ),
    Escape("class_reduce_hook", "class A:\n    def __reduce__(self):\n        pass", "compile", "defining __reduce__"),
    Escape(
        "class_module_override", "class A:\n    __module__ = 'talib'", "compile", "defining __module__ is not allowed"
    ),
    Escape(
        "class_metaclass_keyword",
        "class A(metaclass=type):\n    pass",
        "compile",
        'The keyword argument "metaclass" is not allowed',
    ),
    Escape("class_other_keyword", "class A(flag=1):\n    pass", "compile", "class keywords (flag=...) are not allowed"),
    Escape(
        "class_based_on_metaclass", "class M(type(type(1))):\n    pass", "policy", "type() of a class is not available"
    ),
    Escape("subclass_ndarray", "class Evil(np.ndarray):\n    pass", "policy", "subclassing ndarray is not allowed"),
    Escape(
        "abc_register_changes_isinstance_everywhere",
        "import collections.abc\nclass A:\n    pass\ncollections.abc.Sequence.register(A)",
        "policy",
        "Sequence.register is not allowed",
    ),
    # ---- format strings ---------------------------------------------------------------------------------
    Escape("str_format_literal", "return '{{0.__class__}}'.format(1)", "compile", FORMAT_FIELD),
    Escape("str_format_literal_item", "return '{{0[0]}}'.format(data)", "compile", FORMAT_FIELD),
    Escape("str_format_nested_spec", "return '{{0:{{1.__class__}}}}'.format(1, 2)", "compile", FORMAT_FIELD),
    Escape(
        "str_format_variable",
        "s = '{{0.__class__.__mro__}}'\nreturn s.format(1)",
        "policy",
        "str.format('{0.__class__.__mro__}') is not allowed in a strategy: the format field",
    ),
    Escape(
        "str_format_variable_item",
        "s = '{{0[close]}}'\nreturn s.format(data)",
        "policy",
        "str.format('{0[close]}') is not allowed",
    ),
    Escape(
        "str_format_map",
        "s = '{{x.__class__}}'\nreturn s.format_map({{'x': 1}})",
        "policy",
        "str.format_map('{x.__class__}') is not allowed",
    ),
    Escape("str_format_unbound", "return str.format('{{0.__class__}}', 1)", "policy", "str.format('{0.__class__}')"),
    Escape(
        "str_format_through_type",
        "f = type('').format\nreturn f('{{0.__globals__}}', 1)",
        "policy",
        "str.format('{0.__globals__}')",
    ),
    Escape(
        "str_subclass_format",
        "class S(str):\n    pass\nreturn S('{{0.__class__}}').format(1)",
        "policy",
        "str.format('{0.__class__}')",
    ),
    Escape(
        "str_subclass_super_format",
        "class S(str):\n    def f(self):\n        return super().format(1)\nreturn S('{{0.__class__}}').f()",
        "policy",
        "str.format('{0.__class__}')",
    ),
    Escape(
        "user_string_format",
        "import collections\nreturn collections.UserString('{{0.__class__}}').format(1)",
        "compile",
        "collections.UserString is not allowed",
    ),
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
    Escape("np_lib_npyio", "return np.lib.npyio.load('{canary}')", "compile", "numpy.lib.npyio is not allowed"),
    Escape(
        "np_lib_format_open_memmap",
        "return np.lib.format.open_memmap('{canary}', mode='w+', shape=(1,))",
        "compile",
        "numpy.lib.format is not allowed",
    ),
    Escape(
        "np_lib_npyio_constructed",
        "return getattr(np.lib, 'npy' + 'io')",
        "policy",
        "numpy.lib.npyio is not allowed",
    ),
    Escape(
        "np_as_strided_reads_out_of_bounds",
        "return np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10**6,), strides=(8,))",
        "compile",
        "numpy.lib.stride_tricks.as_strided is not allowed",
    ),
    Escape(
        "np_as_strided_constructed",
        "return getattr(np.lib.stride_tricks, 'as_' + 'strided')",
        "policy",
        "numpy.lib.stride_tricks.as_strided is not allowed",
    ),
    Escape("np_ctypeslib", "return np.ctypeslib.as_array", "compile", "numpy.ctypeslib is not allowed"),
    Escape(
        "np_internal_module_value", "return getattr(np, 'co' + 're').multiarray", "policy", "numpy.core is not allowed"
    ),
    Escape("arr_tofile", "np.arange(3.0).tofile('{canary}')", "policy", "ndarray.tofile is not allowed"),
    Escape(
        "arr_tofile_constructed",
        "getattr(np.arange(3.0), 'to' + 'file')('{canary}')",
        "policy",
        "ndarray.tofile is not allowed",
    ),
    Escape(
        "scalar_tofile_fast_path",
        "x = np.float64(1.0)\nx.tofile('{canary}')",
        "policy",
        "float64.tofile is not allowed",
    ),
    Escape("arr_dump", "np.arange(3.0).dump('{canary}')", "policy", "ndarray.dump is not allowed"),
    Escape("arr_dumps", "return np.arange(3.0).dumps()", "policy", "ndarray.dumps is not allowed"),
    Escape("arr_ctypes", "return np.arange(3.0).ctypes.data", "policy", "ndarray.ctypes is not allowed"),
    Escape(
        "arr_array_interface",
        "return getattr(np.arange(3.0), '__array_' + 'interface__')",
        "policy",
        "access to '__array_interface__' is not allowed in a strategy: it exposes raw memory",
    ),
    Escape(
        "resize_without_refcheck_leaves_dangling_views",
        "a = np.array([object()] * 4, dtype=object)\nv = a[:]\na.resize(10**6, refcheck=False)\nreturn v[0]",
        "policy",
        "ndarray.resize(refcheck=False) is not allowed",
    ),
    Escape(
        "resize_without_refcheck_unbound",
        "a = np.zeros(4)\nv = a[:]\nnp.ndarray.resize(a, 10**6, refcheck=0)\nreturn v[0]",
        "policy",
        "ndarray.resize(refcheck=False) is not allowed",
    ),
    Escape(
        "resize_without_refcheck_through_super",
        "class M(np.matrix):\n    def grow(self):\n        super().resize((10**3, 10**3), refcheck=False)\n"
        "M([[1.0]]).grow()",
        "policy",
        "ndarray.resize(refcheck=False) is not allowed",
    ),
    Escape(
        "slice_base_through_super",
        "class M(np.matrix):\n    def whole(self):\n        return super().base\nreturn M([[1.0, 2.0]])[:, :1].whole()",
        "policy",
        "base is not allowed",
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
    Escape("df_to_csv", "data.to_csv('{canary}')", "policy", "DataFrame.to_csv is not allowed"),
    Escape("df_to_pickle", "data.to_pickle('{canary}')", "policy", "DataFrame.to_pickle is not allowed"),
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
        "df_subclass_to_csv",
        "class F(pd.DataFrame):\n    pass\nF(data).to_csv('{canary}')",
        "policy",
        "F.to_csv is not allowed",
    ),
    Escape(
        "df_subclass_super_to_csv",
        "class F(pd.DataFrame):\n    def w(self):\n        super().to_csv('{canary}')\nF(data).w()",
        "policy",
        "to_csv is not allowed",
    ),
    Escape(
        "df_subclass_string_dispatch",
        "class F(pd.DataFrame):\n    pass\nF(data).apply('to_csv', path_or_buf='{canary}')",
        "policy",
        "F.apply('to_csv') is not allowed",
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
    Escape(
        "series_apply_string_dunder",
        "return data.close.apply('__red' + 'uce__')",
        "policy",
        "Series.apply('__reduce__') is not allowed",
    ),
    Escape("pd_eval", "return pd.eval('1 + 1')", "compile", "pandas.eval is not allowed"),
    Escape("df_query_dunder", "return data.query('@data.__class__')", "policy", "DataFrame.query is not allowed"),
    Escape(
        "df_eval_constructed",
        "return getattr(data, 'ev' + 'al')('close + 1')",
        "policy",
        "DataFrame.eval is not allowed",
    ),
    Escape("df_plot", "data.plot()", "policy", "DataFrame.plot is not allowed"),
    Escape("pd_set_option", "pd.set_option('display.max_rows', 1)", "compile", "pandas.set_option is not allowed"),
    Escape(
        "label_array_interface_read",
        "s = pd.Series([{{'typestr': '|O'}}], index=['__array_interface__'])\n"
        "return getattr(s, '__array_' + 'interface__')",
        "policy",
        "access to '__array_interface__' is not allowed",
    ),
    # ---- talib ---------------------------------------------------------------------------------------------
    Escape(
        "talib_abstract_private", "return talib.abstract._ta_lib", "compile", "talib.abstract._ta_lib is not allowed"
    ),
    Escape(
        "talib_abstract_builtins",
        "return getattr(talib.abstract, '__built' + 'ins__')",
        "policy",
        "talib.abstract.__builtins__ is not allowed",
    ),
    Escape(
        "talib_function_object_globals",
        "f = talib.abstract.Function('SMA').func_object\nreturn getattr(f, 'func_' + 'globals')",
        "policy",
        "func_globals is not allowed",
    ),
    Escape(
        "talib_function_object_swap_hides_look_ahead",
        "f = talib.abstract.Function('SMA')\nf.func_object = lambda *a, **k: a[0]",
        "policy",
        "assigning Function.func_object is not allowed",
    ),
    Escape(
        "pandas_metadata_copies_special_names",
        "class F(pd.DataFrame):\n    _metadata = ['__array_' + 'interface__']",
        "policy",
        "_metadata holds ordinary attribute names only",
    ),
    Escape(
        "talib_set_compatibility",
        "return getattr(talib, 'set_compat' + 'ibility')(1)",
        "policy",
        "talib offers its indicator functions",
    ),
    Escape(
        "talib_non_indicator", "return getattr(talib, 'at' + 'exit')", "policy", "talib offers its indicator functions"
    ),
    # ---- the standard library helpers -------------------------------------------------------------------
    Escape(
        "typing_get_type_hints_evaluates_strings",
        "import typing\nreturn typing.get_type_hints",
        "compile",
        "typing.get_type_hints is not allowed",
    ),
    Escape("typing_forward_ref", "from typing import ForwardRef", "compile", "typing.ForwardRef is not allowed"),
    Escape(
        "make_dataclass_takes_any_namespace",
        "import dataclasses\nreturn dataclasses.make_dataclass('A', [], namespace={{'__array_interface__': {{}}}})",
        "compile",
        "dataclasses.make_dataclass is not allowed",
    ),
    Escape(
        "dataclass_of_a_library_class",
        "import dataclasses\ndataclasses.dataclass(pd.Series)",
        "policy",
        "@dataclass decorates classes defined in the strategy",
    ),
    Escape(
        "total_ordering_of_a_library_class",
        "import functools\nfunctools.total_ordering(pd.Series)",
        "policy",
        "decorates classes defined in the strategy",
    ),
    Escape(
        "update_wrapper_sets_any_name",
        "import functools\nreturn functools.update_wrapper",
        "compile",
        "functools.update_wrapper is not allowed",
    ),
    Escape(
        "wraps_with_chosen_names",
        "import functools\nfunctools.wraps(len, assigned=('__array_interface__',))",
        "policy",
        "functools.wraps(assigned=..., updated=...) is not available",
    ),
    Escape(
        "cached_property_name_tampering",
        "from functools import cached_property\nclass A:\n    @cached_property\n    def x(self):\n        return {{}}\n"
        "A.x.attrname = '__array_interface__'",
        "policy",
        "cannot assign to attributes or items of StrategyCachedProperty",
    ),
    Escape(
        "namedtuple_module_spoofing",
        "import collections\nreturn collections.namedtuple('P', 'a', module='talib')",
        "policy",
        "namedtuple(module=...) is not available",
    ),
    # ---- the engine's own errors ------------------------------------------------------------------------
    Escape(
        "raise_forged_engine_error",
        "try:\n    for i in range(1000):\n        print(i)\nexcept Exception as e:\n"
        "    raise type(e)('x' * 10**6, line=1)",
        "policy",
        "creating a StrategyOutputLimit is not allowed",
    ),
    Escape(
        "raise_forged_policy_violation",
        "try:\n    getattr(np, 'lo' + 'ad')\nexcept Exception as e:\n    raise e.__class__('forged')",
        "policy",
        "creating a PolicyViolation is not allowed",
    ),
    Escape(
        "subclass_engine_error",
        "try:\n    for i in range(1000):\n        print(i)\nexcept Exception as e:\n    class Forged(type(e)):\n"
        "        pass",
        "policy",
        "subclassing StrategyOutputLimit is not allowed",
    ),
    Escape(
        "rewrite_engine_error_message",
        "try:\n    for i in range(1000):\n        print(i)\nexcept Exception as e:\n    e.message = 'x' * 10**6\n"
        "    raise e",
        "policy",
        "the engine's errors are read-only",
    ),
    Escape(
        "reinit_engine_error",
        "try:\n    for i in range(1000):\n        print(i)\nexcept Exception as e:\n    e.__init__('forged')",
        "policy",
        f"access to '__init__' is not allowed in a strategy: {LIBRARY_SPECIAL}",
    ),
    # ---- writes to shared modules ------------------------------------------------------------------------
    Escape("module_write", "np.sum = lambda *a: 0", "policy", "cannot assign to attributes or items of module numpy"),
    Escape(
        "module_setattr", "setattr(math, 'sqrt', None)", "policy", "cannot assign to attributes or items of module math"
    ),
    Escape(
        "module_private_setattr",
        "setattr(data, '_' + '_class__', dict)",
        "policy",
        "assigning '__class__' is not allowed",
    ),
    # ---- match patterns read attributes natively ----------------------------------------------------------
    Escape(
        "pattern_keyword_special_name",
        "match data:\n    case object(__class__=c):\n        return c",
        "compile",
        "the class pattern keyword __class__= is not allowed",
    ),
    Escape(
        "pattern_keyword_private_name",
        "match data:\n    case object(_mgr=m):\n        return m",
        "compile",
        "the class pattern keyword _mgr= is not allowed",
    ),
    Escape(
        "pattern_keyword_library_writer",
        "match data:\n    case object(to_csv=w):\n        w('{canary}')",
        "compile",
        "the class pattern keyword to_csv= is not allowed",
    ),
    Escape(
        "pattern_keyword_slice_base",
        "match data.close.values[:5]:\n    case object(base=b):\n        return b",
        "compile",
        "the class pattern keyword base= is not allowed",
    ),
    Escape(
        "pattern_value_private_module_member",
        "match 1:\n    case np._core:\n        pass",
        "compile",
        "np._core is not allowed in a pattern",
    ),
    Escape("pattern_capture_rebinds_guard", "match 1:\n    case _getattr_:\n        pass", "compile", RESERVED),
    Escape(
        "match_args_reach_instance_dict",
        "class A:\n    __match_args__ = ('__dict__',)\nmatch A():\n    case A(d):\n        return d",
        "policy",
        "__match_args__ may hold public attribute names only",
    ),
    # ---- statements -------------------------------------------------------------------------------------
    Escape(
        "except_star", "try:\n    pass\nexcept* ValueError:\n    pass", "compile", "TryStar statements are not allowed"
    ),
    Escape("async_function", "async def f():\n    pass", "compile", "AsyncFunctionDef statements are not allowed"),
    Escape("deeply_nested_expression", "return " + "+".join(["1"] * 700), "compile", "nested too deeply"),
]


# What these return shows the technique reached nothing: it is ordinary code now.
HARMLESS: list[tuple[str, str, Any]] = [
    ("class_attribute_of_a_value", "return getattr((), '__cla' + 'ss__') is tuple", True),
    (
        "hasattr_answers_for_special_names",
        "return [hasattr(data, '_' + '_dict__'), hasattr(1, '__len__')]",
        [True, False],
    ),
    (
        # a strategy's __getattr__ never sees special names: numpy finds no __array_interface__ here
        "getattr_hook_is_not_asked_for_special_names",
        "class A:\n    def __getattr__(self, name):\n"
        "        return {'shape': (1,), 'typestr': '|O', 'data': (id(1), False), 'version': 3}\n"
        "return [str(np.asarray(A()).dtype), A().anything['typestr'], hasattr(A(), '_typ')]",
        ["object", "|O", False],
    ),
    (
        # pandas answers df.<label>; a label that is a special name is not an attribute of the Series
        "series_labelled_array_interface",
        "s = pd.Series([{'shape': (1,), 'typestr': '|O', 'data': (id(1), False), 'version': 3}], "
        "index=['__array_interface__'])\nreturn [str(np.asarray(s).dtype), hasattr(s, '__array_' + 'interface__')]",
        ["object", False],
    ),
    (
        "frame_column_named_array_interface",
        "return np.asarray(pd.DataFrame({'__array_interface__': [1.0]})).tolist()",
        [[1.0]],
    ),
    (
        # functools.wraps copies the name, not __module__ (ctx.indicator trusts talib's module name)
        "wraps_does_not_copy_the_module",
        "import functools\ndef f(x):\n    return x\ng = functools.wraps(talib.SMA)(f)\n"
        "return [g.__module__, g.__name__]",
        ["strategy", "SMA"],
    ),
    (
        "type_of_an_engine_error_can_be_named",
        "try:\n    print(0)\n    for i in range(1000):\n        print(i)\n"
        "except Exception as e:\n    return [type(e).__name__, e.__class__.__name__, isinstance(e, type(e))]",
        ["StrategyOutputLimit", "StrategyOutputLimit", True],
    ),
]


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "canary.txt"
    path.write_text("intact")
    monkeypatch.setenv("SANDBOX_CANARY", "intact")
    return path


def _source(body: str) -> str:
    return "def generate_signals(data, params):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def _attempt(body: str) -> EngineError | None:
    data = pd.DataFrame({"close": np.linspace(1.0, 2.0, 20)})
    try:
        namespace = compile_strategy(_source(body)).load(StrategyLog(100, 10_000))
        namespace["generate_signals"](data, {})
    except BaseException as exc:
        return translate_exception(exc)
    return None


def test_the_suite_has_many_distinct_techniques():
    ids = [case.id for case in ESCAPES] + [case[0] for case in HARMLESS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 150


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
    assert len(error.message) < 2000
    # And nothing was touched
    assert canary.read_text() == "intact"
    assert sorted(p.name for p in canary.parent.iterdir()) == ["canary.txt"]
    assert os.environ["SANDBOX_CANARY"] == "intact"


@pytest.mark.parametrize("case", HARMLESS, ids=[case[0] for case in HARMLESS])
def test_former_escape_is_now_harmless(case: tuple[str, str, Any]):
    _, body, expected = case
    namespace = compile_strategy(_source(body)).load(StrategyLog(100, 10_000))
    assert namespace["generate_signals"](pd.DataFrame({"close": [1.0, 2.0]}), {}) == expected


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


# ---- the runtime's objects -----------------------------------------------------------------------------

CTX_REACHES = {
    "ctx_class_globals": "getattr(type(ctx).buy, '__glob' + 'als__')",
    "ctx_dunder_class_globals": "getattr(getattr(ctx, '__cla' + 'ss__').log, '__glob' + 'als__')",
    "ctx_class_init": "getattr(type(ctx), '__in' + 'it__')",
    "ctx_class_dict": "getattr(type(ctx), '__di' + 'ct__')",
    "ctx_broker": "getattr(ctx, '_' + 'broker')",
    "ctx_pending": "getattr(ctx, '_pend' + 'ing')",
    "ctx_private_write": "setattr(ctx, '_' + 'broker', None)",
    "ctx_setattr_bypass": "getattr(type(ctx), '__seta' + 'ttr__')(ctx, 'i', 5)",
    "bar_class_module": "getattr(type(bar).close.fget, '__glob' + 'als__')",
    "series_private_array": "getattr(ctx.data.close, '_' + 'a')",
    "series_class_of_array": "getattr(ctx.data.close.values, '__array_' + 'interface__')",
    "log_method_self": "getattr(ctx.log, '__se' + 'lf__')",
}


def test_the_runtime_objects_lead_nowhere():
    # Given an event strategy that tries, on its first bar, every way from ctx and bar to module globals,
    # the runtime's internals and the classes' hooks, logging what refused it
    lines = "\n".join(
        f"    try:\n        {reach}\n        ctx.log('REACHED {name}')\n"
        f"    except Exception as exc:\n        ctx.log('refused {name}: ' + type(exc).__name__ + ': ' + str(exc))"
        for name, reach in CTX_REACHES.items()
    )
    source = f"def on_bar(ctx, bar):\n    if ctx.i != 0:\n        return\n{lines}\n"
    n = 30
    close = np.linspace(100.0, 110.0, n)
    times = (np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h")).astype("datetime64[ns]")
    bars = Bars("TEST", "1h", times, close, close + 1, close - 1, close, np.ones(n), 1.0, 365)
    log = StrategyLog(100, 100_000)
    # When it runs
    execute(compile_strategy(source), bars, {}, 10_000.0, Costs(0.0, 0.0, 1.0), log)
    # Then every attempt was refused by the policy
    assert len(log.lines) == len(CTX_REACHES)
    for line in log.lines:
        assert line.startswith("refused ") and "PolicyViolation" in line and "not allowed" in line, line


def test_engine_errors_raised_again_by_the_strategy_come_back_capped_and_typed():
    # Given a strategy that catches the engine's StrategyOutputLimit and raises it again
    source = _source("try:\n    for i in range(1000):\n        print(i)\nexcept Exception as e:\n    raise e")
    namespace = compile_strategy(source).load(StrategyLog(10, 10_000))
    try:
        namespace["generate_signals"](None, {})
    except BaseException as exc:
        error = translate_exception(exc)
    # Then it is the engine's own class, with its own message, a str, and an int-or-None line
    assert type(error).__name__ == "StrategyOutputLimit"
    assert type(error.message) is str and "more than 10 lines" in error.message
    assert error.line is None or type(error.line) is int


def test_library_internal_import_path_returns_nothing_a_strategy_could_call():
    # The list-fromlist path of the guarded __import__ is reachable from C only: a strategy can neither
    # name __import__ nor reach the builtins dict, nor pass a list where its import statements pass tuples
    for body in ("return __import__", "b = __builtins__", "return getattr(print, '__se' + 'lf__')"):
        error = _attempt(body)
        assert isinstance(error, StrategyCompileError | StrategyPolicyViolation), body
