"""`compile_strategy`: strategy source → `CompiledStrategy`, or a `StrategyCompileError` naming the line.

Cheap on purpose (the submit function calls it on every request): it parses, scans and compiles with
RestrictedPython, and never imports numpy, pandas or talib — those are imported by `CompiledStrategy.load`.

What is refused here, before anything runs:
- syntax errors;
- RestrictedPython's policy: names starting with ``_``, frame/code attributes (``gi_frame``,
  ``tb_frame``...), ``exec``/``eval`` calls, ``nonlocal``, async code, ``try/except*``, ``match``,
  class keywords such as ``metaclass=``, dunder methods other than ``__init__`` and comparisons;
- imports of anything but the allowed modules, relative imports, ``from X import <refused name>``;
- attribute names refused on every object (``.tofile``, ``.to_csv``, ``.func_globals``, ``.eval``...),
  refused module members reached through a module name (``np.load``, ``pd.read_csv``),
  ``"...".format`` on a string literal, ``getattr(x, "_private")`` with a literal name;
- calls of the unavailable builtins (``open``, ``input``, ``globals``...) when the strategy does not
  define that name itself;
- neither or both styles (``generate_signals`` vs ``on_bar``), and wrong signatures for them.
The same rules are enforced again at run time by the guards in `policy.py` (for computed names).
"""

from __future__ import annotations

import ast
import re
import types
from dataclasses import dataclass, field
from typing import Any, Literal

from RestrictedPython import compile_restricted_exec
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations

from backtest_engine.errors import StrategyCompileError
from backtest_engine.sandbox.log import StrategyLog
from backtest_engine.sandbox.policy import (
    ALLOWED_MODULES,
    ALLOWED_MODULES_TEXT,
    DENY_ANY,
    UNAVAILABLE_BUILTINS,
    build_globals,
    module_refusal,
)

FILENAME = "<strategy>"
Style = Literal["vectorized", "event"]

SIGNATURES = (
    "vectorized: def generate_signals(data, params) -> one target exposure per bar (1 long, 0 flat, -1 short); "
    "event-driven: def on_bar(ctx, bar) called once per bar (with an optional def initialize(ctx) run first)"
)
_EXPECTED_ARGS = {"generate_signals": ("data", "params"), "on_bar": ("ctx", "bar"), "initialize": ("ctx",)}
_PREBOUND_MODULES = {
    "np": "numpy",
    "numpy": "numpy",
    "pd": "pandas",
    "pandas": "pandas",
    "talib": "talib",
    "math": "math",
    "statistics": "statistics",
}
_NAME_BUILTINS = {"getattr", "hasattr", "setattr", "delattr"}
_MAX_REPORTED = 5


@dataclass(frozen=True)
class CompiledStrategy:
    """A strategy that passed `compile_strategy`: its style, its source and its restricted code."""

    style: Style
    source: str
    code: types.CodeType = field(repr=False, compare=False)

    def load(self, log: StrategyLog) -> dict[str, Any]:
        """Run the module body in fresh restricted globals and return them (the caller reads
        ``generate_signals`` or ``initialize`` / ``on_bar`` from it). `print` writes to `log`.
        A failure in the module body is raised as a typed `EngineError` (see `translate_exception`)."""
        from backtest_engine.sandbox.faults import translate_exception

        namespace = build_globals(log)
        try:
            exec(self.code, namespace)
        except BaseException as exc:
            raise translate_exception(exc) from None
        return namespace


def compile_strategy(source: str) -> CompiledStrategy:
    """Check and compile strategy source. Raises `StrategyCompileError(message, line=N)` for syntax and
    policy errors (the message starts with ``line N:`` and says what is wrong), and when the code defines
    neither or both styles."""
    if not isinstance(source, str):
        raise StrategyCompileError(f"strategy code must be text, got {type(source).__name__}")
    try:
        tree = ast.parse(source, FILENAME, "exec")
    except SyntaxError as exc:
        raise _syntax_error(exc) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise StrategyCompileError(f"the strategy code cannot be parsed: {_describe(exc)}") from None

    try:
        style: Style | StrategyCompileError = _detect_style(tree)
    except StrategyCompileError as exc:  # reported after the policy problems, which name lines
        style = exc
    problems = _PolicyScan(tree).problems
    try:
        result = compile_restricted_exec(tree, filename=FILENAME, policy=StrategyTransformer)
    except SyntaxError as exc:  # raised by the byte-code compiler: 'return' outside function, ...
        raise _syntax_error(exc) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise StrategyCompileError(f"the strategy code cannot be compiled: {_describe(exc)}") from None
    problems.extend(_restricted_problem(text) for text in result.errors)
    if problems:
        raise _policy_error(problems)
    if isinstance(style, StrategyCompileError):
        raise style
    assert result.code is not None
    return CompiledStrategy(style=style, source=source, code=result.code)


# ---- the transformer -------------------------------------------------------------------------------


class StrategyTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, with two speed-ups that keep its semantics exactly:

    - a subscript load ``a[k]`` stays native: the ``_getitem_`` guard would be ``operator.getitem``
      (reading items is not restricted), so calling it would only cost time;
    - ``name.attr`` (read) and ``name.attr = v`` / ``name[k] = v`` (write), where ``name`` is a plain
      variable, test the type inline: ``(name.attr if _type_(name) in _plain_ else _getattr_(name, "attr"))``,
      which is exactly the fast path of ``_getattr_`` / ``_write_`` without a Python call. The inline
      read is emitted only for names the deny set does not contain (the check is static), private names
      are refused at compile time as before, and every other type still goes through the guards.
    """

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        if isinstance(node.ctx, ast.Load):
            return self.node_contents_visit(node)
        new = super().visit_Subscript(node)
        if isinstance(new, ast.Subscript):
            new.value = _inline_write(new.value)
        return new

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        """``t.attr += v`` / ``t[k] += v`` (which RestrictedPython refuses) become, with ``t`` and ``k``
        evaluated once into temporaries, ``_write_(t).attr = _inplacevar_("+=", _getattr_(t, "attr"), v)``
        — the same guards as a read followed by a write. Names keep RestrictedPython's handling; slice
        targets (``a[1:3] += v``) stay refused."""
        target = node.target
        if isinstance(target, ast.Name) or (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Slice)):
            return super().visit_AugAssign(node)
        if not isinstance(target, ast.Attribute | ast.Subscript):
            return super().visit_AugAssign(node)
        statements: list[ast.stmt] = []
        temps: list[str] = []

        def bind(expr: ast.expr) -> ast.Name | ast.Constant:
            """The visited `expr`, evaluated once: itself when it is a name or a constant, else a temporary."""
            visited = self.visit(expr)
            if isinstance(visited, ast.Name | ast.Constant):
                return visited
            temp = self.gen_tmp_name()
            temps.append(temp)
            statements.append(ast.Assign(targets=[ast.Name(temp, ast.Store())], value=visited))
            return ast.Name(temp, ast.Load())

        base = bind(target.value)
        if not isinstance(base, ast.Name):  # a constant base: (1).real += 1 — let RestrictedPython refuse it
            return super().visit_AugAssign(node)
        if isinstance(target, ast.Attribute):
            # a read of `t.attr`, checked like any other (private names, frame attributes), then `t` → base
            current: ast.expr = self.visit_Attribute(
                ast.copy_location(ast.Attribute(ast.Name("t", ast.Load()), target.attr, ast.Load()), target)
            )
            current = _replace_name(current, "t", base.id)
            store: ast.expr = ast.Attribute(_inline_write(_write_call(base.id, node)), target.attr, ast.Store())
        else:
            key = bind(target.slice)
            current = ast.Subscript(ast.Name(base.id, ast.Load()), _reload(key), ast.Load())
            store = ast.Subscript(_inline_write(_write_call(base.id, node)), _reload(key), ast.Store())
        value = ast.Call(
            func=ast.Name("_inplacevar_", ast.Load()),
            args=[ast.Constant(IOPERATOR_TO_STR[type(node.op)]), current, self.visit(node.value)],
            keywords=[],
        )
        statements.append(ast.Assign(targets=[store], value=value))
        if temps:
            statements.append(ast.Delete(targets=[ast.Name(t, ast.Del()) for t in temps]))
        for statement in statements:
            copy_locations(statement, node)
        return statements

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        # RestrictedPython rebuilds the class node from a parsed template (``metaclass=__metaclass__``)
        # and leaves it on line 1: give it, and the injected keyword, the statement's own location.
        new = super().visit_ClassDef(node)
        if isinstance(new, ast.ClassDef):
            ast.copy_location(new, node)
            for keyword in new.keywords:
                for sub in ast.walk(keyword):
                    if hasattr(sub, "lineno"):
                        ast.copy_location(sub, node)
        return new

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        attr, load = node.attr, isinstance(node.ctx, ast.Load)
        new = super().visit_Attribute(node)
        if load and isinstance(new, ast.Call) and attr not in DENY_ANY and not attr.startswith("_"):
            base = new.args[0]
            if isinstance(base, ast.Name):
                fast = ast.IfExp(
                    test=_type_in(base.id, "_plain_"),
                    body=ast.Attribute(ast.Name(base.id, ast.Load()), attr, ast.Load()),
                    orelse=new,
                )
                copy_locations(fast, new)
                return fast
        if not load and isinstance(new, ast.Attribute):
            new.value = _inline_write(new.value)
        return new


def _write_call(var: str, where: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name("_write_", ast.Load()), args=[ast.Name(var, ast.Load())], keywords=[])
    return ast.fix_missing_locations(ast.copy_location(call, where))


def _reload(expr: ast.Name | ast.Constant) -> ast.expr:
    return ast.Name(expr.id, ast.Load()) if isinstance(expr, ast.Name) else ast.Constant(expr.value)


def _replace_name(tree: ast.expr, old: str, new: str) -> ast.expr:
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Name) and sub.id == old:
            sub.id = new
    return tree


def _type_in(var: str, plain_set: str) -> ast.Compare:
    call = ast.Call(func=ast.Name("_type_", ast.Load()), args=[ast.Name(var, ast.Load())], keywords=[])
    return ast.Compare(left=call, ops=[ast.In()], comparators=[ast.Name(plain_set, ast.Load())])


def _inline_write(guarded: ast.expr) -> ast.expr:
    """``_write_(name)`` → ``(name if _type_(name) in _plain_write_ else _write_(name))``."""
    if not (
        isinstance(guarded, ast.Call)
        and isinstance(guarded.func, ast.Name)
        and guarded.func.id == "_write_"
        and len(guarded.args) == 1
        and isinstance(guarded.args[0], ast.Name)
    ):
        return guarded
    var = guarded.args[0].id
    fast = ast.IfExp(test=_type_in(var, "_plain_write_"), body=ast.Name(var, ast.Load()), orelse=guarded)
    copy_locations(fast, guarded)
    return fast


# ---- errors -------------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    if isinstance(exc, MemoryError):
        return "it is too large"
    return str(exc)


def _syntax_error(exc: SyntaxError) -> StrategyCompileError:
    line = exc.lineno
    kind = type(exc).__name__
    text = (exc.text or "").strip()
    where = f"line {line}: " if line else ""
    detail = f": {text}" if text else ""
    return StrategyCompileError(f"{where}{kind}: {exc.msg}{detail}", line=line)


_LINE_PREFIX = re.compile(r"^Line (\d+|None): ")


def _restricted_problem(text: str) -> tuple[int | None, str]:
    match = _LINE_PREFIX.match(text)
    if not match:
        return None, text
    line = None if match.group(1) == "None" else int(match.group(1))
    return line, text[match.end() :]


def _policy_error(problems: list[tuple[int | None, str]]) -> StrategyCompileError:
    unique = sorted(set(problems), key=lambda p: (p[0] is None, p[0] or 0, p[1]))
    parts = [f"line {line}: {msg}" if line is not None else msg for line, msg in unique[:_MAX_REPORTED]]
    if len(unique) > _MAX_REPORTED:
        parts.append(f"(and {len(unique) - _MAX_REPORTED} more)")
    return StrategyCompileError("; ".join(parts), line=unique[0][0])


# ---- style ----------------------------------------------------------------------------------------------


def _detect_style(tree: ast.Module) -> Style:
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    has_vec, has_event = "generate_signals" in defs, "on_bar" in defs
    if has_vec and has_event:
        line = max(defs["generate_signals"].lineno, defs["on_bar"].lineno)
        raise StrategyCompileError(
            f"line {line}: the strategy defines both generate_signals and on_bar; define exactly one style — "
            f"{SIGNATURES}",
            line=line,
        )
    if not has_vec and not has_event:
        hint = ""
        if "initialize" in defs:
            hint = " (initialize is there, but on_bar is missing)"
        raise StrategyCompileError(
            f"the strategy defines no entry point{hint}; define one at the top level — {SIGNATURES}"
        )
    for name, node in defs.items():
        if name in _EXPECTED_ARGS:
            _check_signature(node, name)
    return "vectorized" if has_vec else "event"


def _check_signature(node: ast.FunctionDef, name: str) -> None:
    expected = _EXPECTED_ARGS[name]
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    required_kwonly = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    if required > len(expected) or (len(positional) < len(expected) and args.vararg is None) or required_kwonly:
        got = ", ".join(a.arg for a in positional)
        raise StrategyCompileError(
            f"line {node.lineno}: {name}({got}) has the wrong parameters; it is called as "
            f"{name}({', '.join(expected)}) — {SIGNATURES}",
            line=node.lineno,
        )


# ---- the static policy scan ---------------------------------------------------------------------------


class _PolicyScan(ast.NodeVisitor):
    """Refusals that can be seen in the source (the run-time guards repeat them for computed names)."""

    def __init__(self, tree: ast.Module) -> None:
        self.problems: list[tuple[int | None, str]] = []
        self.bound = _bound_names(tree)
        self.modules = {alias: mod for alias, mod in _PREBOUND_MODULES.items()}
        self.visit(tree)

    def add(self, node: ast.AST, message: str) -> None:
        self.problems.append((getattr(node, "lineno", None), message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                self.add(
                    node, f"import of '{alias.name}' is not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}"
                )
            elif alias.asname:
                self.modules[alias.asname] = alias.name
            else:
                top = alias.name.partition(".")[0]
                self.modules[top] = top
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.add(node, f"relative imports are not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}")
        elif module not in ALLOWED_MODULES:
            self.add(node, f"import from '{module}' is not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}")
        else:
            for alias in node.names:
                reason = module_refusal(module, alias.name)
                if reason is not None and not alias.name.startswith("_"):  # '_' names: RestrictedPython says so
                    self.add(node, f"{module}.{alias.name} is not allowed in a strategy: {reason}")
                full = f"{module}.{alias.name}"
                if full in ALLOWED_MODULES:
                    self.modules[alias.asname or alias.name] = full
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        if isinstance(node.ctx, ast.Load) and not name.startswith("_"):
            base = node.value
            module = self.modules.get(base.id) if isinstance(base, ast.Name) else None
            module_reason = module_refusal(module, name) if module else None
            reason = DENY_ANY.get(name)
            if module_reason is not None:
                self.add(node, f"{module}.{name} is not allowed in a strategy: {module_reason}")
            elif reason is not None and name not in _RESTRICTED_PYTHON_REPORTS:
                self.add(node, f".{name} is not allowed in a strategy: {reason}")
            elif name in ("format", "format_map") and isinstance(base, ast.Constant) and isinstance(base.value, str):
                self.add(
                    node,
                    f"str.{name} is not allowed in a strategy (format strings can reach object internals); "
                    "use an f-string or %-formatting instead",
                )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in UNAVAILABLE_BUILTINS and func.id not in self.bound and func.id not in ("eval", "exec"):
                self.add(node, f"{func.id}() is not available in a strategy: {UNAVAILABLE_BUILTINS[func.id]}")
            elif func.id in _NAME_BUILTINS and func.id not in self.bound and len(node.args) >= 2:
                attr = node.args[1]
                if isinstance(attr, ast.Constant) and isinstance(attr.value, str) and attr.value.startswith("_"):
                    self.add(
                        node,
                        f"{func.id}(..., {attr.value!r}) is not allowed in a strategy: names starting with '_' "
                        "are private",
                    )
        self.generic_visit(node)


# RestrictedPython already reports these attribute names itself (no need to say it twice).
_RESTRICTED_PYTHON_REPORTS = frozenset(name for name, reason in DENY_ANY.items() if "interpreter internals" in reason)


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the strategy binds anywhere (assignments, defs, parameters, imports, loop targets)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.partition(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound
