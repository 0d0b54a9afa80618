"""The sandbox policy: what strategy code may do, style detection, compile errors and error translation."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backtest_engine.errors import (
    EngineError,
    InvalidSignals,
    StrategyCompileError,
    StrategyError,
    StrategyMemoryError,
    StrategyOutputLimit,
    StrategyPolicyViolation,
)
from backtest_engine.sandbox import (
    CompiledStrategy,
    PolicyViolation,
    StrategyLog,
    compile_strategy,
    register_plain_type,
    translate_exception,
)
from backtest_engine.sandbox.policy import ModuleView, guarded_import

DATA = pd.DataFrame(
    {
        "open": np.linspace(100.0, 120.0, 60),
        "high": np.linspace(101.0, 121.0, 60),
        "low": np.linspace(99.0, 119.0, 60),
        "close": np.linspace(100.5, 120.5, 60) + np.sin(np.arange(60)),
        "volume": np.full(60, 1000.0),
    }
)


def vectorized(body: str) -> str:
    return "def generate_signals(data, params):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def call(source: str, log: StrategyLog | None = None, data: Any = DATA, params: Any = None) -> Any:
    """Compile, load and call generate_signals, translating what it raises like the runtime does."""
    namespace = compile_strategy(source).load(log or StrategyLog(100, 100_000))
    try:
        return namespace["generate_signals"](data, params or {})
    except EngineError:
        raise
    except BaseException as exc:
        raise translate_exception(exc) from None


# ---- allowed code ----------------------------------------------------------------------------------------


def test_numpy_pandas_and_talib_through_prebound_names():
    # Given the DESIGN.md vectorized example
    source = vectorized(
        """
        fast = talib.SMA(data.close.values, timeperiod=params.get("fast", 5))
        slow = talib.SMA(data.close.values, timeperiod=params.get("slow", 20))
        return np.where(fast > slow, 1.0, 0.0)
        """
    )
    # When it runs
    signals = call(source, params={"fast": 5, "slow": 20})
    # Then it computes what plain numpy/talib compute
    import talib

    expected = np.where(talib.SMA(DATA.close.values, 5) > talib.SMA(DATA.close.values, 20), 1.0, 0.0)
    np.testing.assert_array_equal(signals, expected)


def test_imports_of_allowed_modules_and_submodules():
    source = """
import numpy as np
import numpy.linalg as la
import talib
from math import sqrt
from numpy.random import default_rng
from statistics import mean
import pandas

def generate_signals(data, params):
    rng = default_rng(7)
    upper, middle, lower = talib.BBANDS(data.close.values, timeperiod=5, matype=talib.MA_Type.SMA)
    return [la.norm([3.0, 4.0]), sqrt(16.0), mean([1, 2, 3]), rng.integers(0, 10), bool(upper[-1] > lower[-1]),
            np.fft.fft([1.0, 0.0])[0].real, isinstance(data, pandas.DataFrame)]
"""
    assert call(source) == [5.0, 4.0, 2, np.random.default_rng(7).integers(0, 10), True, 1.0, True]


def test_language_features_classes_comprehensions_unpacking_fstrings_augassign():
    source = vectorized(
        """
        class Level:
            def __init__(self, value):
                self.value = value
            def __lt__(self, other):
                return self.value < other.value
            def doubled(self):
                return self.value * 2
        low, high = Level(1), Level(3)
        low.tag = "L"
        squares = [i * i for i in range(5) if i % 2]
        index = {k: v for k, v in zip("ab", [1, 2])}
        unique = {x % 3 for x in range(7)}
        total = sum(v for v in index.values())
        a, (b, c), *rest = 1, (2, 3), 4, 5
        n = 0
        for key, value in index.items():
            n += value
        n *= 10
        n -= 1
        text = f"{n:05d}|{low.tag!r}|{2.5:.1f}"
        if (size := len(squares)) > 1:
            size += 100
        return [low < high, high.doubled(), low.tag, squares, index, unique, total, a, b, c, rest, n, text, size]
        """
    )
    assert call(source) == [
        True,
        6,
        "L",
        [1, 9],
        {"a": 1, "b": 2},
        {0, 1, 2},
        3,
        1,
        2,
        3,
        [4, 5],
        29,
        "00029|'L'|2.5",
        102,
    ]


def test_generators_lambdas_try_except_and_context_managers():
    source = vectorized(
        """
        def gen(k):
            for i in range(k):
                yield i
        inc = lambda x, step=2: x + step
        try:
            1 / 0
        except ZeroDivisionError as exc:
            message = str(exc)
        with np.errstate(divide="ignore"):
            logs = np.log(np.zeros(2))
        return [list(gen(3)), inc(1), message, bool(np.isneginf(logs).all()), sorted([3, 1, 2]), divmod(7, 2)]
        """
    )
    assert call(source) == [[0, 1, 2], 3, "division by zero", True, [1, 2, 3], (3, 1)]


def test_writes_to_ordinary_objects_and_in_memory_conversions_are_allowed():
    source = vectorized(
        """
        frame = data.copy()
        frame["signal"] = np.where(frame.close.diff() > 0, 1.0, 0.0)
        arr = np.zeros(4)
        arr[1] = 2.5
        arr.shape = (2, 2)
        state = {}
        state["x"] = [1]
        state["x"].append(2)
        setattr(frame, "name_tag", "ok")
        return [frame.signal.to_numpy()[1:3].tolist(), arr.tolist(), state, frame.close.to_list()[0],
                frame[["close"]].to_dict("list")["close"][0], getattr(frame, "missing", "default"),
                hasattr(frame, "close"), type(1.5) is float]
        """
    )
    first_two = np.where(DATA.close.diff() > 0, 1.0, 0.0)[1:3].tolist()
    assert call(source) == [
        first_two,
        [[0.0, 2.5], [0.0, 0.0]],
        {"x": [1, 2]},
        DATA.close[0],
        DATA.close[0],
        "default",
        True,
        True,
    ]


def test_augmented_assignment_to_attributes_and_items_goes_through_the_guards():
    # Given augmented assignments on attributes, items and nested items (RestrictedPython alone refuses them)
    source = vectorized(
        """
        class Counter:
            def __init__(self):
                self.total = 1
            def add(self, x):
                self.total += x
                return self.total
        counter = Counter()
        counter.add(5)
        state = {"n": 1, "nested": {"k": [1]}}
        state["n"] += 2
        state["nested"]["k"] += [2]
        arr = np.zeros(3)
        arr[1] += 4
        i = 0
        arr[i] -= 1
        calls = []
        def get():
            calls.append(1)
            return counter
        get().total *= 10
        return [counter.total, state, arr.tolist(), len(calls)]
        """
    )
    # Then they behave like Python's, evaluating the target once
    assert call(source) == [60, {"n": 3, "nested": {"k": [1, 2]}}, [-1.0, 4.0, 0.0], 1]


@pytest.mark.parametrize(
    "body, error, fragment",
    [
        ("x = data\nx._secret += 1", StrategyPolicyViolation, "access to '_secret' is not allowed"),
        ("g = (i for i in [])\ng.gi_frame += 1", StrategyCompileError, '"gi_frame" is a restricted name'),
        ("x = data\nx.__class__ += 1", StrategyCompileError, "assigning x.__class__ is not allowed"),
        ("np.e += 1", StrategyPolicyViolation, "module numpy"),
        ("x = data\nx.tofile += 1", StrategyPolicyViolation, "DataFrame.tofile is not allowed"),
        ("x = data\nx._mgr += 1", StrategyPolicyViolation, "access to '_mgr' is not allowed"),
    ],
)
def test_augmented_assignment_keeps_the_refusals(body, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call(vectorized(body + "\nreturn 0"))


def test_print_writes_one_log_line_per_call():
    # Given a strategy that prints at module level and inside its function
    source = 'print("loaded", 1)\n' + vectorized('print("bars", len(data), sep="=")\nprint()\nreturn 0')
    log = StrategyLog(10, 1000)
    # When it runs
    call(source, log=log)
    # Then each print is one line of the log, in order
    assert log.lines == ["loaded 1", "bars=60", ""]


def test_object_arrays_built_from_values_are_allowed():
    assert call(
        vectorized('return np.array([1, "a"], dtype=object).tolist() + np.ndarray((1,), dtype=object).tolist()')
    ) == [
        1,
        "a",
        None,
    ]


# ---- style detection and compile errors -------------------------------------------------------------------


def test_style_is_detected_from_top_level_defs_without_running_code():
    vec = compile_strategy(vectorized("raise RuntimeError('never runs at compile time')"))
    event = compile_strategy("def on_bar(ctx, bar):\n    pass\n")
    event_init = compile_strategy("def initialize(ctx):\n    pass\n\ndef on_bar(ctx, bar):\n    pass\n")
    assert isinstance(vec, CompiledStrategy)
    assert (vec.style, event.style, event_init.style) == ("vectorized", "event", "event")
    assert event.source == "def on_bar(ctx, bar):\n    pass\n"


def test_both_styles_is_a_compile_error_showing_both_signatures():
    source = "def generate_signals(data, params):\n    return 0\n\ndef on_bar(ctx, bar):\n    pass\n"
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert "both generate_signals and on_bar" in caught.value.message
    assert "def generate_signals(data, params)" in caught.value.message
    assert "def on_bar(ctx, bar)" in caught.value.message
    assert caught.value.line == 4


@pytest.mark.parametrize(
    "source",
    ["x = 1\n", "def initialize(ctx):\n    pass\n", "def helper():\n    def on_bar(ctx, bar):\n        pass\n"],
)
def test_no_entry_point_is_a_compile_error_showing_both_signatures(source):
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert "no entry point" in caught.value.message
    assert "def generate_signals(data, params)" in caught.value.message
    assert "def on_bar(ctx, bar)" in caught.value.message


@pytest.mark.parametrize(
    "source, line",
    [
        ("def generate_signals(data):\n    return 0\n", 1),
        ("x = 1\ndef on_bar(ctx):\n    pass\n", 2),
        ("def on_bar(ctx, bar, extra):\n    pass\n", 1),
    ],
)
def test_entry_points_with_wrong_parameters_are_compile_errors(source, line):
    with pytest.raises(StrategyCompileError, match="wrong parameters") as caught:
        compile_strategy(source)
    assert caught.value.line == line


def test_entry_points_with_defaults_or_varargs_are_accepted():
    compile_strategy("def generate_signals(data, params=None, extra=1):\n    return 0\n")
    compile_strategy("def initialize(*args):\n    pass\n\ndef on_bar(*args):\n    pass\n")


@pytest.mark.parametrize(
    "source, line, fragment",
    [
        ("def generate_signals(data, params):\n    x = (1,\n    return x\n", 2, "SyntaxError"),
        ("def generate_signals(data, params):\n  x = 1\n    return x\n", 3, "IndentationError"),
        ("return 1\ndef generate_signals(data, params):\n    return 0\n", 1, "'return' outside function"),
    ],
)
def test_syntax_errors_name_their_line(source, line, fragment):
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert caught.value.line == line
    assert caught.value.message.startswith(f"line {line}: ")
    assert fragment in caught.value.message


def test_policy_error_names_its_line():
    # Given a function's globals read on line 3
    source = "def generate_signals(data, params):\n    x = data\n    return x.__globals__\n"
    # Then the compile error is on line 3 and says why
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert caught.value.line == 3
    assert caught.value.message.startswith("line 3: x.__globals__ is not allowed in a strategy: ")
    assert "interpreter internals" in caught.value.message


def test_several_policy_errors_are_reported_first_line_first():
    source = "import os\n" + vectorized("x = data.__dict__\nreturn np.load('f')")
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert caught.value.line == 1
    assert (
        caught.value.message.index("line 1:")
        < caught.value.message.index("line 3:")
        < caught.value.message.index("line 4:")
    )


def test_disallowed_import_lists_the_allowed_modules():
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy("import numpy as np\nimport requests\n" + vectorized("return 0"))
    assert caught.value.line == 2
    message = caught.value.message
    assert "'requests' is not allowed" in message
    for module in ("numpy", "numpy.random", "numpy.linalg", "numpy.fft", "pandas", "talib", "math", "statistics"):
        assert module in message


def test_runtime_import_guard_refuses_with_the_allowed_list_and_returns_views():
    # Given the guarded __import__ strategies get
    np_view = guarded_import("numpy")
    sub_view = guarded_import("numpy.random", None, None, ("default_rng",), 0)
    # Then allowed modules come back as views, never as real modules
    assert isinstance(np_view, ModuleView) and isinstance(sub_view, ModuleView)
    assert sub_view.default_rng is np.random.default_rng
    # And anything else is refused as an ImportError that lists what is allowed
    with pytest.raises(ImportError, match=r"'os' is not allowed.*numpy.*pandas.*talib.*math.*statistics"):
        guarded_import("os")
    with pytest.raises(PolicyViolation, match="relative imports"):
        guarded_import("numpy", None, None, ("x",), 1)


def test_from_import_of_a_refused_name_is_refused_by_the_view_itself():
    # `from numpy import load` is a plain getattr on the module object in CPython: the view must refuse it,
    # with PolicyViolation (not AttributeError, which would make CPython fall back to sys.modules)
    view = guarded_import("numpy", None, None, ("load",), 0)
    with pytest.raises(PolicyViolation, match=r"numpy\.load is not allowed"):
        view.load  # noqa: B018
    with pytest.raises(PolicyViolation, match=r"numpy\.ctypeslib is not allowed"):
        view.ctypeslib  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        view.no_such_thing  # noqa: B018


def test_compile_strategy_does_not_import_numpy_pandas_or_talib():
    # Given a fresh interpreter (the submit function's situation)
    program = textwrap.dedent(
        """
        import sys
        from backtest_engine.sandbox import compile_strategy
        source = "import numpy as np\\nimport talib\\n"
        source += "def generate_signals(data, params):\\n    return np.zeros(len(data))\\n"
        strategy = compile_strategy(source)
        assert strategy.style == "vectorized"
        heavy = [m for m in ("numpy", "pandas", "talib") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    # When it compiles a strategy
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    # Then none of the heavy libraries was imported
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_source_must_be_text():
    with pytest.raises(StrategyCompileError, match="must be text"):
        compile_strategy(b"def on_bar(ctx, bar): pass")


def test_null_bytes_are_a_compile_error():
    with pytest.raises(StrategyCompileError):
        compile_strategy("def on_bar(ctx, bar):\n    pass\x00\n")


# ---- run-time errors ---------------------------------------------------------------------------------------


def test_user_exception_becomes_strategy_error_with_line():
    source = vectorized("x = 1\ny = 0\nreturn x / y")
    with pytest.raises(StrategyError) as caught:
        call(source)
    assert caught.value.line == 4
    assert caught.value.message == "line 4: ZeroDivisionError: division by zero"


def test_exception_inside_a_library_call_names_the_strategy_line():
    source = vectorized("a = np.zeros(3)\nb = np.zeros(4)\nreturn a + b")
    with pytest.raises(StrategyError) as caught:
        call(source)
    assert caught.value.line == 4
    assert caught.value.message.startswith("line 4: ValueError: operands could not be broadcast")


def test_exception_in_module_body_is_translated_by_load():
    strategy = compile_strategy("x = {}\ny = x['missing']\n" + vectorized("return 0"))
    with pytest.raises(StrategyError) as caught:
        strategy.load(StrategyLog(10, 1000))
    assert (caught.value.line, caught.value.message) == (2, "line 2: KeyError: 'missing'")


def test_policy_refusal_at_run_time_becomes_strategy_policy_violation_with_line():
    source = vectorized('name = "lo" + "ad"\nreturn getattr(np, name)')
    with pytest.raises(StrategyPolicyViolation) as caught:
        call(source)
    assert caught.value.line == 3
    assert "numpy.load is not allowed" in caught.value.message


def test_recursion_error_names_recursion():
    source = "def deep(n):\n    return deep(n + 1)\n" + vectorized("return deep(0)")
    with pytest.raises(StrategyError) as caught:
        call(source)
    assert caught.value.line == 2
    assert "RecursionError" in caught.value.message and "recursed too deeply" in caught.value.message


def test_translate_exception_maps_memory_recursion_policy_and_passes_engine_errors():
    def raise_in_strategy(exc: BaseException) -> BaseException:
        namespace = compile_strategy(vectorized("return params['boom']()")).load(StrategyLog(1, 100))
        try:
            namespace["generate_signals"](None, {"boom": _raiser(exc)})
        except BaseException as caught:
            return caught
        raise AssertionError("did not raise")

    memory = translate_exception(raise_in_strategy(MemoryError()))
    assert isinstance(memory, StrategyMemoryError) and memory.line == 2
    policy = translate_exception(raise_in_strategy(PolicyViolation("nope")))
    assert isinstance(policy, StrategyPolicyViolation) and policy.message == "line 2: nope"
    passthrough = InvalidSignals("bad signals")
    assert translate_exception(passthrough) is passthrough


def _raiser(exc: BaseException):
    def boom() -> None:
        raise exc

    return boom


def test_exception_outside_strategy_code_is_an_engine_error_not_a_strategy_fault():
    translated = translate_exception(ValueError("engine bug"))
    assert type(translated) is EngineError
    assert "ValueError: engine bug" in translated.message


def test_long_exception_messages_are_capped():
    source = vectorized('raise ValueError("x" * 100000)')
    with pytest.raises(StrategyError) as caught:
        call(source)
    assert len(caught.value.message) < 1200


# ---- the log ---------------------------------------------------------------------------------------------


def test_log_line_limit_raises_and_keeps_raising():
    log = StrategyLog(max_lines=2, max_bytes=1000)
    log.write("a")
    log.write("b\n")
    with pytest.raises(StrategyOutputLimit, match="more than 2 lines"):
        log.write("c")
    with pytest.raises(StrategyOutputLimit):
        log.write("d")
    assert log.lines == ["a", "b"]
    assert log.overflowed


def test_log_byte_limit_counts_utf8_bytes():
    log = StrategyLog(max_lines=100, max_bytes=10)
    log.write("ééé")  # 6 bytes
    with pytest.raises(StrategyOutputLimit, match="more than 10 bytes"):
        log.write("éé¥")  # 7 more
    assert log.lines == ["ééé"]


def test_print_flood_in_a_strategy_raises_output_limit_unchanged():
    source = vectorized("for i in range(1000):\n    print(i)\nreturn 0")
    log = StrategyLog(max_lines=50, max_bytes=10_000)
    with pytest.raises(StrategyOutputLimit):
        call(source, log=log)
    assert len(log.lines) == 50


# ---- guards and the fast path ------------------------------------------------------------------------------


class _Ctx:
    """Stands in for the runtime's registered context class."""

    def __init__(self) -> None:
        self.fast = [1.0, 2.0, 3.0]
        self.state: dict[str, Any] = {}

    def buy(self) -> str:
        return "bought"


register_plain_type(_Ctx)


def test_registered_plain_types_read_and_write_on_the_fast_path():
    source = (
        "def on_bar(ctx, bar):\n"
        "    ctx.count = ctx.fast[-1] + bar[0]\n"
        "    ctx.state['k'] = ctx.buy()\n"
        "    return ctx.count\n"
    )
    ctx = _Ctx()
    namespace = compile_strategy(source).load(StrategyLog(1, 100))
    assert namespace["on_bar"](ctx, [10.0]) == 13.0
    assert ctx.count == 13.0
    assert ctx.state == {"k": "bought"}


def test_library_deny_lists_do_not_apply_to_registered_plain_types():
    # Given the runtime's ctx: names the strategy chose on it are its own, even those that pandas objects refuse
    source = (
        "def on_bar(ctx, bar):\n    ctx.hist = [1]\n    ctx.style = 'x'\n"
        "    return [ctx.hist, ctx.style, getattr(ctx, bar)]\n"
    )
    namespace = compile_strategy(source).load(StrategyLog(1, 100))
    assert namespace["on_bar"](_Ctx(), "fast") == [[1], "x", [1.0, 2.0, 3.0]]
    # And a name ctx does not have is an AttributeError, not a refusal
    with pytest.raises(AttributeError):
        namespace["on_bar"](_Ctx(), "to_csv")


def test_internals_and_private_names_are_still_refused_on_registered_plain_types():
    source = "def on_bar(ctx, bar):\n    return getattr(ctx, bar)\n"
    namespace = compile_strategy(source).load(StrategyLog(1, 100))
    for name in ("gi_frame", "f_back", "tb_frame"):
        with pytest.raises(PolicyViolation, match=f"{name} is not allowed"):
            namespace["on_bar"](_Ctx(), name)
    for name in ("_secret", "__dict__", "__init__"):
        with pytest.raises(PolicyViolation, match=f"access to '{name}' is not allowed"):
            namespace["on_bar"](_Ctx(), name)
    assert namespace["on_bar"](_Ctx(), "__class__") is _Ctx


def test_register_plain_type_refuses_modules_and_metaclasses():
    with pytest.raises(TypeError):
        register_plain_type(type)
    with pytest.raises(TypeError):
        register_plain_type(ModuleView)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("np.sum = None", "module numpy"),
        ("math.pi = 3.0", "module math"),
        ("setattr(np, 'mean', None)", "module numpy"),
        ("class A:\n    pass\nsetattr(A(), '_' + '_class__', 1)", "assigning '__class__' is not allowed"),
        ("pd.DataFrame.x = 1", "class DataFrame"),
        ("ValueError.x = 1", "class ValueError"),
        ("def f():\n    pass\nf.x = 1", "function f"),
        ("len.x = 1", "builtin len"),
        ("arr = np.zeros(2)\narr.strides = (16,)", "ndarray.strides"),
        ("del np.where", "module numpy"),
    ],
)
def test_writes_to_modules_classes_functions_and_builtins_are_refused(body, fragment):
    with pytest.raises(StrategyPolicyViolation, match=fragment):
        call(vectorized(body + "\nreturn 0"))


def test_module_views_are_shared_read_only_and_refuse_pickling():
    import pickle

    view = guarded_import("math")
    with pytest.raises(PolicyViolation):
        view.pi = 3
    with pytest.raises(PolicyViolation):
        pickle.dumps(view)
    assert view.sqrt(9.0) == 3.0


# ---- ordinary Python that runs (the operating system is the trust boundary) ---------------------------------


def run_body(body: str, prefix: str = "", data: Any = DATA) -> Any:
    """Run `body` as generate_signals in-process, with `prefix` at module level."""
    return call(textwrap.dedent(prefix) + "\n" + vectorized(body), data=data)


def test_private_attributes_on_the_strategys_own_classes():
    assert run_body(
        """
        class Counter:
            _instances = 0
            def __init__(self, n):
                self._n = n
                self.__secret = n * 10  # mangled, as in Python: _Counter__secret
                Counter._instances += 1
            def _bump(self):
                self._n += 1
                return self._n
            def reveal(self):
                return self.__secret
        c = Counter(3)
        c._bump()
        setattr(c, "_extra", 7)
        del c._extra
        return [c._n, c.reveal(), c._Counter__secret, getattr(c, "_n"), hasattr(c, "_extra"), Counter._instances]
        """
    ) == [4, 30, 30, 4, False, 1]


def test_special_methods_defined_in_the_strategys_classes():
    assert run_body(
        """
        class Vec:
            def __init__(self, *xs):
                self.xs = list(xs)
            def __repr__(self):
                return f"Vec{tuple(self.xs)}"
            def __str__(self):
                return "vec"
            def __len__(self):
                return len(self.xs)
            def __getitem__(self, i):
                return self.xs[i]
            def __setitem__(self, i, v):
                self.xs[i] = v
            def __iter__(self):
                return iter(self.xs)
            def __contains__(self, x):
                return x in self.xs
            def __eq__(self, other):
                return isinstance(other, Vec) and self.xs == other.xs
            def __lt__(self, other):
                return sum(self.xs) < sum(other.xs)
            def __hash__(self):
                return hash(tuple(self.xs))
            def __add__(self, other):
                return Vec(*[a + b for a, b in zip(self.xs, other.xs)])
            def __radd__(self, other):
                return self if other == 0 else NotImplemented
            def __iadd__(self, other):
                self.xs = [a + other for a in self.xs]
                return self
            def __neg__(self):
                return Vec(*[-a for a in self.xs])
            def __call__(self, k):
                return self.xs[k] * 2
            def __bool__(self):
                return bool(self.xs)
            def __format__(self, spec):
                return "|".join(format(x, spec) for x in self.xs)
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return False
            def __index__(self):
                return len(self.xs)
        v = Vec(1, 2)
        v[0] = 5
        w = v + Vec(1, 1)
        w += 1
        with Vec(9) as inside:
            got = inside[0]
        return [repr(v), str(v), len(v), list(v), 2 in v, v == Vec(5, 2), Vec(1) < Vec(2), hash(v) == hash((5, 2)),
                repr(w), repr(-v), v(1), bool(Vec()), f"{v:.1f}", got, sum([Vec(1, 1), Vec(2, 2)]).xs,
                [10, 20, 30][Vec(1, 2)], v.__len__(), sorted([Vec(3), Vec(1)])[0].xs]
        """
    ) == [
        "Vec(5, 2)",
        "vec",
        2,
        [5, 2],
        True,
        True,
        True,
        True,
        "Vec(7, 4)",
        "Vec(-5, -2)",
        4,
        False,
        "5.0|2.0",
        9,
        [3, 3],
        30,
        2,
        [1],
    ]


def test_super_init_and_super_methods():
    assert run_body(
        """
        class Base:
            def __init__(self, n):
                self.n = n
            def describe(self):
                return f"base {self.n}"
        class Child(Base):
            def __init__(self):
                super().__init__(5)
                self._child = True
            def describe(self):
                return super().describe() + " child"
        class Frame(pd.DataFrame):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
            def last_close(self):
                return float(self["close"].iloc[-1])
        class Error(ValueError):
            def __init__(self, code):
                super().__init__(f"code {code}")
                self.code = code
        try:
            raise Error(7)
        except ValueError as e:
            caught = [str(e), e.code]
        return [Child().describe(), Child()._child, Frame(data).last_close(), caught]
        """
    ) == ["base 5 child", True, float(DATA.close.iloc[-1]), ["code 7", 7]]


def test_class_and_function_names_and_docs():
    assert run_body(
        """
        class Signal:
            "A signal."
            def name(self):
                return self.__class__.__name__
        def helper():
            "Helps."
        try:
            {}["missing"]
        except Exception as e:
            kind = type(e).__name__
        return [Signal().name(), Signal.__name__, Signal.__qualname__.split(".")[-1], Signal.__doc__, helper.__name__,
                helper.__doc__, kind, type(data).__name__, np.__name__, np.mean.__name__, type(1.5).__name__,
                __name__, data.__class__.__name__]
        """
    ) == [
        "Signal",
        "Signal",
        "Signal",
        "A signal.",
        "helper",
        "Helps.",
        "KeyError",
        "DataFrame",
        "numpy",
        "mean",
        "float",
        "strategy",
        "DataFrame",
    ]


def test_nonlocal_closures_and_underscore_names():
    assert run_body(
        """
        def counter():
            n = 0
            def inc(step=1):
                nonlocal n
                n += step
                return n
            return inc
        def _helper(_x):
            return _x * 2
        class _Hidden:
            pass
        inc = counter()
        inc()
        _tmp = inc(2)
        total = 0
        for _i in range(3):
            total += _i
        _ = "ignored"
        __ = 1
        return [_tmp, total, _helper(4), type(_Hidden()).__name__, _, __]
        """
    ) == [3, 3, 8, "_Hidden", "ignored", 1]


@pytest.mark.parametrize(
    "body, expected",
    [
        ("arr = np.zeros(5)\narr[1:3] += 1\nreturn arr.tolist()", [0.0, 1.0, 1.0, 0.0, 0.0]),
        ("a = [1, 2, 3]\na[0:1] += [5]\nreturn a", [1, 5, 2, 3]),
        ("arr = np.arange(6.0)\narr[::2] -= 1\nreturn arr.tolist()", [-1.0, 1.0, 1.0, 3.0, 3.0, 5.0]),
        ("m = np.zeros((2, 2))\nm[1:, 0] += 3\nreturn m.tolist()", [[0.0, 0.0], [3.0, 0.0]]),
        (
            "calls = []\ndef lo():\n    calls.append(1)\n    return 1\narr = np.zeros(4)\narr[lo():3] *= 0\n"
            "arr[lo():lo() + 2] += 2\nreturn [arr.tolist(), len(calls)]",
            [[0.0, 2.0, 2.0, 0.0], 3],
        ),
        ("s = data.close.copy()\ns.iloc[0:2] += 1000\nreturn bool(s.iloc[0] > 1000)", True),
    ],
)
def test_slice_augmented_assignment(body, expected):
    assert run_body(body) == expected


def test_future_annotations_and_typing():
    assert run_body(
        """
        def scale(xs: List[float], k: Optional[float] = None) -> List[float]:
            return [x * (k or 1.0) for x in xs]
        T = TypeVar("T")
        class Box(Generic[T]):
            def __init__(self, item: T) -> None:
                self._item = item
            def get(self) -> T:
                return self._item
        class Point(NamedTuple):
            x: float
            y: float = 0.0
            def norm(self) -> float:
                return (self.x ** 2 + self.y ** 2) ** 0.5
        cfg: Dict[str, int] = {"n": 1}
        p = Point(3.0, 4.0)
        return [scale([1.0, 2.0], 2.0), Box(3).get(), p.norm(), p._asdict(), p._replace(y=0.0).y,
                typing.cast(int, 5), cfg]
        """,
        prefix="""
        from __future__ import annotations
        import typing
        from typing import Dict, Generic, List, NamedTuple, Optional, TypeVar
        """,
    ) == [[2.0, 4.0], 3, 5.0, {"x": 3.0, "y": 4.0}, 0.0, 5, {"n": 1}]


def test_collections_itertools_functools_datetime():
    assert run_body(
        """
        window = deque(maxlen=3)
        for x in range(5):
            window.append(x)
        by_hour = defaultdict(list)
        by_hour[9].append(1.5)
        Trade = namedtuple("Trade", ["side", "qty"])
        t = Trade("buy", 2)
        counts = Counter("aab")
        ordered = OrderedDict(a=1)
        pairs = list(itertools.pairwise([1, 2, 3]))
        acc = list(itertools.accumulate([1, 2, 3]))
        total = functools.reduce(lambda a, b: a + b, [1, 2, 3])
        double = functools.partial(lambda a, k: a * k, k=2)
        @functools.lru_cache(maxsize=None)
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        def deco(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                return fn(*args) + 1
            return wrapper
        @deco
        def base(x):
            "Base doc."
            return x
        @functools.total_ordering
        class Level:
            def __init__(self, v):
                self.v = v
            def __eq__(self, o):
                return self.v == o.v
            def __lt__(self, o):
                return self.v < o.v
        class Cached:
            def __init__(self):
                self.calls = 0
            @functools.cached_property
            def value(self):
                self.calls += 1
                return 42
        cached = Cached()
        cached.value
        cached.value
        day = datetime.datetime(2024, 1, 2, 9, 30) + datetime.timedelta(hours=1)
        parsed = datetime.datetime.strptime("2024-03-04", "%Y-%m-%d").date()
        return [list(window), dict(by_hour), t._asdict(), t.qty, counts.most_common(1), list(ordered), pairs, acc,
                total, double(4), fib(20), base(1), base.__name__, base.__doc__, Level(2) >= Level(1),
                [cached.value, cached.calls], day.strftime("%H:%M"), parsed.isoformat(), isinstance(window, Sequence)]
        """,
        prefix="""
        import datetime
        import functools
        import itertools
        from collections import Counter, OrderedDict, defaultdict, deque, namedtuple
        from collections.abc import Sequence
        """,
    ) == [
        [2, 3, 4],
        {9: [1.5]},
        {"side": "buy", "qty": 2},
        2,
        [("a", 2)],
        ["a"],
        [(1, 2), (2, 3)],
        [1, 3, 6],
        6,
        8,
        6765,
        2,
        "base",
        "Base doc.",
        True,
        [42, 1],
        "10:30",
        "2024-03-04",
        True,
    ]


def test_dataclasses():
    assert run_body(
        """
        @dataclass
        class Position:
            symbol: str
            qty: float = 0.0
            fills: List[float] = field(default_factory=list)
            limit: ClassVar[int] = 10
            def __post_init__(self):
                self._seen = True
        @dataclass(frozen=True)
        class Params:
            fast: int = 10
            slow: int = 30
        @dataclass(slots=True)
        class Slotted:
            x: int
        p = Position("AAPL", 1.0)
        p.fills.append(100.0)
        frozen = Params()
        try:
            frozen.fast = 3
        except FrozenInstanceError:
            refused = True
        s = Slotted(1)
        s.x += 1
        return [asdict(p), p._seen, replace(frozen, fast=5).fast, refused, [f.name for f in fields(Params)],
                is_dataclass(p), Position.limit, s.x, frozen == Params()]
        """,
        prefix="""
        from __future__ import annotations
        from typing import ClassVar, List
        from dataclasses import FrozenInstanceError, asdict, dataclass, field, fields, is_dataclass, replace
        """,
    ) == [
        {"symbol": "AAPL", "qty": 1.0, "fills": [100.0]},
        True,
        5,
        True,
        ["fast", "slow"],
        True,
        10,
        2,
        True,
    ]


def test_names_of_the_strategys_own_choosing_are_not_library_deny_lists():
    # Given names that pandas/numpy objects refuse (.hist, .style, .plot, .eval) used on the strategy's own
    # objects, dicts and ctx-like objects; a column named `ma`; func= in .agg/.apply
    frame = DATA.assign(ma=DATA.close.rolling(3).mean())
    assert run_body(
        """
        class Stats:
            def __init__(self):
                self.hist = []
                self.style = "trend"
                self.plot = None
            def eval(self, x):
                return x + 1
        s = Stats()
        s.hist.append(1)
        ns = {"hist": 2}
        agg = data[["close", "ma"]].agg(func="mean")
        applied = data["close"].apply(func=lambda x: x * 2)
        return [s.hist, s.style, s.plot, s.eval(1), ns["hist"], bool(agg["ma"] > 0), float(applied.iloc[0]),
                float(data.ma.iloc[-1]), data.agg({"ma": "max"}).iloc[0] > 0]
        """,
        data=frame,
    ) == [[1], "trend", None, 2, 2, True, float(DATA.close.iloc[0] * 2), float(frame.ma.iloc[-1]), True]


def test_getattr_and_setattr_hooks_in_the_strategys_classes():
    assert run_body(
        """
        class Settings:
            def __init__(self, **values):
                self._values = dict(values)
            def __getattr__(self, name):
                try:
                    return self._values[name]
                except KeyError:
                    raise AttributeError(name) from None
        class Frozen:
            def __init__(self, x):
                super().__setattr__("x", x)
            def __setattr__(self, name, value):
                raise AttributeError(f"{name} is read-only")
        s = Settings(fast=5)
        try:
            Frozen(1).x = 2
        except AttributeError as e:
            message = str(e)
        return [s.fast, hasattr(s, "slow"), Frozen(1).x, message]
        """
    ) == [5, False, 1, "x is read-only"]


def test_str_format_with_plain_fields():
    assert run_body(
        """
        x, a, b = 0.1234, 1, "two"
        fmt = "{:>6.2f}|{name}"
        return ["{:.1%}".format(x), "{} {}".format(a, b), "{0}-{0}".format(a), "{v!r}".format(v=b),
                "{:{w}}|".format(a, w=3), fmt.format(x, name="n"), "{k}".format_map({"k": 1}), str.format("{}", 7),
                "%.2f %s" % (x, b), format(x, ".2f")]
        """
    ) == ["12.3%", "1 two", "1-1", "'two'", "  1|", "  0.12|n", "1", "7", "0.12 two", "0.12"]


def test_talib_abstract_stream_and_function_lists():
    import talib
    from talib import abstract

    result = run_body(
        """
        sma = talib.abstract.SMA(data, timeperiod=10)
        rsi = talib.abstract.Function("RSI")
        rsi.parameters = {"timeperiod": 10}
        rsi.set_parameters(timeperiod=14)
        out = rsi(data)
        last = talib.stream.SMA(data.close.values, timeperiod=10).value
        groups = talib.get_function_groups()
        from talib.abstract import Function
        return [float(sma.iloc[-1]), float(out.iloc[-1]), float(last), "SMA" in talib.get_functions(),
                "Overlap Studies" in groups, Function("EMA").info["name"]]
        """
    )
    assert result[0] == pytest.approx(float(abstract.SMA(DATA, timeperiod=10).iloc[-1]))
    assert result[1] == pytest.approx(float(talib.RSI(DATA.close.values, timeperiod=14)[-1]))
    assert result[2] == pytest.approx(result[0])
    assert result[3:] == [True, True, "EMA"]


def test_numpy_lib_stride_tricks_and_scimath():
    assert run_body(
        """
        from numpy.lib.stride_tricks import sliding_window_view
        import numpy.lib.stride_tricks as st
        w = np.lib.stride_tricks.sliding_window_view(np.arange(5.0), 3)
        return [w.mean(axis=1).tolist(), sliding_window_view(np.arange(3), 2).tolist(), st.sliding_window_view is
                sliding_window_view, np.lib.scimath.sqrt(-1.0) == 1j, np.emath.log10(100.0)]
        """
    ) == [[1.0, 2.0, 3.0], [[0, 1], [1, 2]], True, True, 2.0]


def test_strategy_exceptions_and_hasattr_on_library_objects():
    assert run_body(
        """
        class StrategyProblem(Exception):
            pass
        try:
            raise StrategyProblem("bad input")
        except StrategyProblem as e:
            text = f"{type(e).__name__}: {e}"
        try:
            import_fails = float("x")
        except (ValueError, ImportError) as e:
            kind = e.__class__.__name__
        return [text, kind, hasattr(data, "__len__"), hasattr(data, "to_csv"), hasattr(1, "nope")]
        """
    ) == ["StrategyProblem: bad input", "ValueError", True, True, False]


def test_match_statements():
    assert run_body(
        """
        class Point:
            __match_args__ = ("x", "y")
            def __init__(self, x, y):
                self.x, self.y = x, y
        out = []
        for v in [Point(0, 1), Point(2, 3), (1, "buy"), {"k": 5, "z": 1}, 7, "s", None, [1, 2, 3], "other"]:
            match v:
                case Point(0, y):
                    out.append(("p0", y))
                case Point(x=x, y=yy) if x > 1:
                    out.append(("px", x, yy))
                case (1, "buy"):
                    out.append("tuple")
                case {"k": kk, **rest}:
                    out.append(("map", kk, rest))
                case int(n) | float(n):
                    out.append(("num", n))
                case "s" as s:
                    out.append(("str", s))
                case None:
                    out.append("none")
                case [first, *others]:
                    out.append((first, others))
                case _:
                    out.append("default")
        return out
        """
    ) == [
        ("p0", 1),
        ("px", 2, 3),
        "tuple",
        ("map", 5, {"z": 1}),
        ("num", 7),
        ("str", "s"),
        "none",
        (1, [2, 3]),
        "default",
    ]


def test_module_level_main_guard_reads_the_module_name():
    source = 'if __name__ == "__main__":\n    raise RuntimeError("not run")\n' + vectorized("return __name__")
    assert call(source) == "strategy"


# ---- library-internal imports (C code importing lazily while strategy code runs) -------------------------

_FRESH_OPERATIONS = {
    "ndarray.mean": "np.arange(5.0).mean()",
    "ndarray.std": "np.arange(5.0).std()",
    "ndarray.var": "np.arange(5.0).var()",
    "ndarray.min": "np.arange(5.0).min()",
    "ndarray.any": "np.arange(5.0).any()",
    "ndarray.all": "np.arange(5.0).all()",
    "str(ndarray)": "str(np.arange(3.0))",
    "print(ndarray)": "print(np.arange(3.0))",
    "f-string of ndarray": "f'{np.arange(3.0)}'",
    "Timestamp.strftime": "pd.Timestamp('2024-01-02 03:04').strftime('%H:%M')",
    "f-string of Timestamp": "f\"{pd.Timestamp('2024-01-02 03:04'):%H:%M}\"",
    "datetime.strptime": "datetime.datetime.strptime('2024-01-02', '%Y-%m-%d')",
}
_FRESH_PROGRAM = """
import sys
from backtest_engine.sandbox import StrategyLog, compile_strategy, translate_exception
source = sys.argv[1]
try:
    namespace = compile_strategy(source).load(StrategyLog(10, 10_000))
    namespace["generate_signals"](None, {})
except BaseException as exc:
    print(translate_exception(exc).message)
    raise SystemExit(1)
print("ok")
"""


def test_library_internal_imports_work_in_a_fresh_process():
    # Given each operation whose C code imports a module lazily (numpy's _methods and arrayprint, time,
    # _strptime), run first thing in a fresh interpreter through the sandbox, so no earlier call warmed it up
    procs = {}
    for name, expr in _FRESH_OPERATIONS.items():
        prefix = "import datetime\n" if "datetime." in expr else ""
        source = prefix + "def generate_signals(data, params):\n    return " + expr + "\n"
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", _FRESH_PROGRAM, source], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    # Then every one succeeds
    outcomes = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        outcomes[name] = out.strip() or err.strip()[-300:]
    assert outcomes == dict.fromkeys(_FRESH_OPERATIONS, "ok")


def test_the_list_fromlist_import_is_the_real_import_and_statements_still_get_views():
    import numpy._core._methods as methods

    # C-level PyImport_Import: __import__(name, globals, globals, [], 0), result ignored
    scope: dict[str, Any] = {}
    assert guarded_import("numpy._core._methods", scope, scope, [], 0) is methods
    # an import statement (IMPORT_NAME passes None or a tuple) of the same module is refused
    with pytest.raises(ImportError, match=r"'numpy\._core\._methods' is not allowed"):
        guarded_import("numpy._core._methods", scope, scope, None, 0)
    with pytest.raises(ImportError, match=r"'numpy\._core\._methods' is not allowed"):
        guarded_import("numpy._core._methods", scope, None, ("mean",), 0)


# ---- bounded compilation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("def generate_signals(data, params):\n    return " + "+".join(["1"] * 700) + "\n", "nested too deeply"),
        ("def generate_signals(data, params):\n    return " + "[" * 150 + "]" * 150 + "\n", "nested too deeply"),
        ("def generate_signals(data, params):\n    return " + "(" * 300 + "1" + ")" * 300 + "\n", "SyntaxError"),
        ("def generate_signals(data, params):\n    return " + "-" * 100_000 + "1\n", "cannot be parsed"),
        ("def generate_signals(data, params):\n    return " + "not " * 5000 + "1\n", ""),
        ("x = [" + "1," * 120_000 + "]\ndef generate_signals(data, params):\n    return 0\n", "too large"),
    ],
)
def test_compilation_is_bounded_and_fails_as_a_compile_error(source, fragment):
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert fragment in caught.value.message
    assert len(caught.value.message) < 2000


def test_nesting_errors_name_the_line():
    source = "x = 1\n\ndef generate_signals(data, params):\n    return " + " + ".join(["x"] * 300) + "\n"
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert caught.value.line == 4
    assert caught.value.message.startswith("line 4: the code is nested too deeply")


def test_ordinary_nesting_compiles():
    deep = "".join(f"{'    ' * (i + 1)}if x > {i}:\n" for i in range(20)) + "    " * 21 + "x += 1\n"
    source = "def generate_signals(data, params):\n    x = 100\n" + deep + "    return x\n"
    source += "y = " + " + ".join(["1"] * 60) + "\n"
    assert call(source) == 101


# ---- errors cannot hurt the trusted side -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, fragment",
    [
        (
            "class E(Exception):\n    def __str__(self):\n        return 42\nraise E()",
            "E: (its message could not be shown",
        ),
        (
            "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\nraise E()",
            "could not be shown",
        ),
        ("class E(Exception):\n    def __str__(self):\n        return 'y' * 10**6\nraise E()", "more characters"),
        (
            "class E(Exception):\n    def __str__(self):\n        while True:\n            print('flood')\nraise E()",
            "could not be shown: StrategyOutputLimit",
        ),
        (
            "class S(str):\n    def __getitem__(self, k):\n        return 'x'\nraise ValueError(S('abc'))",
            "ValueError: abc",
        ),
        ("raise ValueError('\\ud800 lone surrogate')", "ValueError: ? lone surrogate"),
        ("return float(10**400)", "OverflowError: int too large to convert to float"),
        ("return math.exp(1000)", "OverflowError: math range error"),
        ("x = 10.0\nx **= 400\nreturn x", "OverflowError"),
    ],
)
def test_strategy_exceptions_become_capped_string_strategy_errors(body, fragment):
    with pytest.raises(StrategyError) as caught:
        call(vectorized(body), log=StrategyLog(5, 10_000))
    error = caught.value
    assert type(error) is StrategyError
    assert type(error.message) is str and len(error.message) < 1200
    assert fragment in error.message
    assert type(error.line) is int and error.message.startswith(f"line {error.line}: ")


def test_an_exception_of_a_strategy_class_is_the_strategys_fault_even_without_a_strategy_frame():
    namespace = compile_strategy("class Boom(Exception):\n    pass\n" + vectorized("return Boom")).load(
        StrategyLog(1, 100)
    )
    error = translate_exception(namespace["generate_signals"](None, {})("raised by the engine"))
    assert type(error) is StrategyError and "Boom: raised by the engine" in error.message


def test_engine_error_classes_from_the_runtime_are_guards():
    # type() of an engine error can be named and tested, not called or subclassed
    body = (
        "try:\n    for i in range(100):\n        print(i)\nexcept Exception as e:\n    E = type(e)\n"
        "    return [E.__name__, isinstance(e, E), issubclass(type(e), Exception), e.message[:20]]"
    )
    assert call(vectorized(body), log=StrategyLog(5, 10_000)) == [
        "StrategyOutputLimit",
        True,
        True,
        "the strategy printed",
    ]


def test_ndarray_resize_keeps_numpys_reference_check():
    assert run_body(
        "a = np.zeros(2)\na.resize(4)\nb = np.zeros(2)\nb.resize((2, 2), refcheck=True)\nreturn [a.tolist(), b.shape]"
    ) == [
        [0.0, 0.0, 0.0, 0.0],
        (2, 2),
    ]
