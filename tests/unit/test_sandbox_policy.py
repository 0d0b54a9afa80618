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
        ("x = data\nx._secret += 1", StrategyCompileError, 'starts with "_"'),
        ("g = (i for i in [])\ng.gi_frame += 1", StrategyCompileError, '"gi_frame" is a restricted name'),
        ("a = [1, 2]\na[0:1] += [5]", StrategyCompileError, "Augmented assignment of object items and slices"),
        ("np.e += 1", StrategyPolicyViolation, "module numpy"),
        ("x = data\nx.tofile += 1", StrategyPolicyViolation, "DataFrame.tofile is not allowed"),
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
    # Given a private attribute on line 3
    source = "def generate_signals(data, params):\n    x = data\n    return x._secret\n"
    # Then the compile error is on line 3 and says why
    with pytest.raises(StrategyCompileError) as caught:
        compile_strategy(source)
    assert caught.value.line == 3
    assert caught.value.message.startswith("line 3: ")
    assert '"_secret"' in caught.value.message and 'starts with "_"' in caught.value.message


def test_several_policy_errors_are_reported_first_line_first():
    source = "import os\n" + vectorized("x = data.__class__\nreturn np.load('f')")
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
    with pytest.raises(PolicyViolation, match=r"numpy\.lib is not allowed"):
        view.lib  # noqa: B018
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
        compile_strategy(b"def on_bar(ctx, bar): pass")  # type: ignore[arg-type]


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
    assert ctx.count == 13.0  # type: ignore[attr-defined]
    assert ctx.state == {"k": "bought"}


def test_deny_set_still_applies_to_registered_plain_types():
    source = "def on_bar(ctx, bar):\n    return getattr(ctx, bar)\n"
    namespace = compile_strategy(source).load(StrategyLog(1, 100))
    for name in ("gi_frame", "to_csv", "func_globals", "tofile"):
        with pytest.raises(PolicyViolation, match=f"{name} is not allowed"):
            namespace["on_bar"](_Ctx(), name)
    with pytest.raises(PolicyViolation, match="names starting with '_'"):
        namespace["on_bar"](_Ctx(), "__class__")


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
        ("class A:\n    pass\nA.x = 1", "class A"),
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
        view.pi = 3  # type: ignore[misc]
    with pytest.raises(PolicyViolation):
        pickle.dumps(view)
    assert view.sqrt(9.0) == 3.0
