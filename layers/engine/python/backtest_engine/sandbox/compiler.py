"""`compile_strategy`: strategy source → `CompiledStrategy`, or a `StrategyCompileError` naming the line.

Cheap on purpose (the submit function calls it on every request): it parses, scans and compiles with
RestrictedPython, and never imports numpy, pandas or talib — those are imported by `CompiledStrategy.load`.
Compiling is bounded: more than `MAX_NODES` syntax nodes or more than `MAX_DEPTH` levels of nesting is a
compile error (checked without recursion, before anything recursive runs), and any failure of the parser,
the transformer or the byte-code compiler is a `StrategyCompileError`, never another exception.

The language layer is permissive for ordinary Python (the operating system is the trust boundary, see
`policy.py`). What is refused here, before anything runs:

- syntax errors; code nested too deeply or too large;
- names reserved by the sandbox: names that start *and* end with ``_`` (``_getattr_``, ``__builtins__``,
  ``__import__``, ``__metaclass__``...), RestrictedPython's ``_print`` and ``_tmpN``; other names starting
  with ``_`` (``_n``, ``_helper``, ``for _i in ...``) are fine;
- in a class body, special methods outside `policy.DEFINABLE_DUNDERS` (``__array_interface__``,
  ``__init_subclass__``, ``__getattribute__``, ``__del__``, ``__reduce__``...); class keywords and
  metaclasses;
- reading special attributes other than the harmless ones (``__name__``, ``__qualname__``, ``__doc__``,
  ``__module__``, ``__class__``) and the ordinary special methods (``__init__``, ``__len__``...) —
  ``f.__globals__``, ``x.__dict__``, ``c.__subclasses__`` are refused; assigning any special attribute;
  frame/code attributes (``gi_frame``, ``tb_frame``, ``f_back``...);
- ``exec``/``eval`` calls, async code, ``try/except*``; in ``match`` patterns (which read attributes
  natively), private, special and library-refused attribute names (``case C(__class__=c)``);
- imports of anything but the allowed modules, relative imports, ``from X import <refused name>``;
  refused members reached through a module name (``np.load``, ``pd.read_csv``, ``np.lib.npyio``);
- a literal format string whose fields walk attributes or items (``"{0.__class__}".format(x)``);
- calls of the unavailable builtins (``open``, ``input``, ``globals``...) when the strategy does not
  define that name itself; ``getattr``/``setattr`` with a literal refused special name;
- neither or both styles (``generate_signals`` vs ``on_bar``), and wrong signatures for them.

Library deny lists (``.to_csv``, ``.plot``...) are not applied here: whether ``x.plot`` is pandas' or the
strategy's own attribute is known only at run time, where the guards in `policy.py` decide.
"""

from __future__ import annotations
import __future__

import ast
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from RestrictedPython.transformer import (
    FORBIDDEN_FUNC_NAMES,
    IOPERATOR_TO_STR,
    RestrictingNodeTransformer,
    copy_locations,
)

from backtest_engine.errors import StrategyCompileError
from backtest_engine.sandbox.log import StrategyLog
from backtest_engine.sandbox.policy import (
    ALLOWED_MODULES,
    ALLOWED_MODULES_TEXT,
    INTERNAL_ATTRIBUTES,
    LIBRARY_DENY,
    MODULE_DUNDERS,
    PROTOCOL_DUNDERS,
    READABLE_DUNDERS,
    RESERVED_PRIVATE_ATTRIBUTES,
    STRATEGY_FILENAME,
    UNAVAILABLE_BUILTINS,
    build_globals,
    check_format_string,
    dunder_definition_refusal,
    dunder_read_refusal,
    is_dunder,
    module_refusal,
)

FILENAME = STRATEGY_FILENAME
Style = Literal["vectorized", "event"]

MAX_NODES = 100_000  # syntax nodes; a 64 KiB strategy (the submit limit) has far fewer
MAX_DEPTH = 100  # levels of nesting; ordinary code stays under 40, the recursive passes need headroom

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
_READABLE_ATTRIBUTE_DUNDERS = READABLE_DUNDERS | PROTOCOL_DUNDERS | MODULE_DUNDERS
_DUNDER_WRITE = (
    "special attributes cannot be assigned in a strategy; keep your data in ordinary attributes "
    "(self.name = value) or a dict"
)
_TMP_NAME = re.compile(r"_tmp\d+\Z")
_MAX_REPORTED = 5
_ANNOTATIONS_FLAG = __future__.annotations.compiler_flag  # annotations stay strings: never evaluated


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
    policy errors (the message starts with ``line N:`` and says what is wrong), for code too large or
    nested too deeply, and when the code defines neither or both styles."""
    if not isinstance(source, str):
        raise StrategyCompileError(f"strategy code must be text, got {type(source).__name__}")
    try:
        tree = ast.parse(source, FILENAME, "exec")
    except SyntaxError as exc:
        raise _syntax_error(exc) from None
    except Exception as exc:  # ValueError (null bytes), RecursionError, MemoryError, ...
        raise StrategyCompileError(f"the strategy code cannot be parsed: {_describe(exc)}") from None
    _check_size(tree)
    try:
        return _compile_tree(source, tree)
    except StrategyCompileError:
        raise
    except SyntaxError as exc:  # raised by the byte-code compiler: 'return' outside function, ...
        raise _syntax_error(exc) from None
    except Exception as exc:  # RecursionError, MemoryError, or a failure of a pass: never uncaught
        raise StrategyCompileError(f"the strategy code cannot be compiled: {_describe(exc)}") from None


def _compile_tree(source: str, tree: ast.Module) -> CompiledStrategy:
    try:
        style: Style | StrategyCompileError = _detect_style(tree)
    except StrategyCompileError as exc:  # reported after the policy problems, which name lines
        style = exc
    problems = _PolicyScan(tree).problems
    errors: list[str] = []
    transformer = StrategyTransformer(errors, [], {})
    transformed = transformer.visit(tree)
    problems.extend(_restricted_problem(text) for text in errors)
    if problems:
        raise _policy_error(problems)
    if isinstance(style, StrategyCompileError):
        raise style
    code = compile(transformed, FILENAME, "exec", flags=_ANNOTATIONS_FLAG, dont_inherit=True)
    return CompiledStrategy(style=style, source=source, code=code)


def _check_size(tree: ast.Module) -> None:
    """Refuse code with more than `MAX_NODES` nodes or nested deeper than `MAX_DEPTH`, without recursion
    (the recursive passes that follow would otherwise fail with RecursionError)."""
    count = 0
    stack: list[tuple[ast.AST, int, int | None]] = [(tree, 0, None)]
    while stack:
        node, depth, line = stack.pop()
        line = getattr(node, "lineno", None) or line
        count += 1
        if count > MAX_NODES:
            raise StrategyCompileError(
                f"the strategy code is too large (more than {MAX_NODES:,} syntax nodes); make it shorter, e.g. "
                "with loops or helper functions instead of repeated code"
            )
        if depth > MAX_DEPTH:
            where = f"line {line}: " if line else ""
            raise StrategyCompileError(
                f"{where}the code is nested too deeply (more than {MAX_DEPTH} levels, e.g. a very long "
                "a + b + c + ... chain or deeply nested brackets); split it into several statements",
                line=line,
            )
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.expr_context):
                stack.append((child, depth + 1, line))


# ---- the transformer -------------------------------------------------------------------------------


class StrategyTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, made permissive for ordinary Python, with fast paths that keep its
    semantics exactly:

    - names: only the names reserved by the sandbox are refused (see `_name_refusal`); special method
      names in class bodies follow `policy.DEFINABLE_DUNDERS`; ``nonlocal`` and annotated assignments are
      allowed;
    - ``name.attr`` (read) is ``(name.attr if _type_(name) in _plain_ else _getattr_(name, "attr"))``, the
      fast path of ``_getattr_`` inlined: ``_plain_`` for ordinary names, ``_free_`` (types no library deny
      list applies to) for names such as ``plot``, ``_own_`` (the strategy's own classes) for private
      names; special names always go through ``_getattr_``. ``name.attr = v`` / ``name[k] = v`` inline
      ``_write_`` the same way (``_write_private_`` for a private name). Private names are mangled like
      Python does inside a class (``self.__x`` → ``_C__x``);
    - a subscript load ``a[k]`` stays native (the ``_getitem_`` guard would be ``operator.getitem``);
    - ``t.attr += v``, ``t[k] += v`` and ``t[i:j] += v`` go through the same guards as a read then a write.
    """

    def __init__(self, errors: list[str], warnings: list[str], used_names: dict[str, bool]) -> None:
        super().__init__(errors, warnings, used_names)
        self._class_stack: list[str] = []
        self._class_level: set[int] = set()  # ids of the nodes whose names live in a class namespace
        self._in_arguments = False

    # ---- names -------------------------------------------------------------------------------------

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if name is None:
            return
        reason = self._name_refusal(node, name)
        if reason is not None:
            self.error(node, reason)

    def _name_refusal(self, node: Any, name: str) -> str | None:
        if name in FORBIDDEN_FUNC_NAMES:
            return f'"{name}" is a reserved name. Choose another name.'
        if name.endswith("__roles__"):
            return f'"{name}" is an invalid variable name because it ends with "__roles__".'
        if not name.startswith("_") or set(name) == {"_"}:
            return None
        if is_dunder(name):
            if id(node) in self._class_level and not self._in_arguments:
                reason = dunder_definition_refusal(name)
                return None if reason is None else f"defining {name} is not allowed in a strategy: {reason}"
            if name == "__name__" and isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                return None
            return _reserved(name)
        if name.endswith("_") or name == "_print" or _TMP_NAME.match(name):
            return _reserved(name)
        return None

    def check_function_argument_names(self, node: Any) -> None:
        self._in_arguments = True
        try:
            super().check_function_argument_names(node)
        finally:
            self._in_arguments = False

    def visit_Nonlocal(self, node: ast.Nonlocal) -> Any:
        for name in node.names:
            self.check_name(node, name)
        return node

    def visit_Global(self, node: ast.Global) -> Any:
        for name in node.names:
            self.check_name(node, name)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        return self.node_contents_visit(node)

    def _mangle(self, name: str) -> str:
        """Python's private-name mangling inside a class (``__x`` → ``_Class__x``), for attribute names the
        transformer moves into strings."""
        if not self._class_stack or not name.startswith("__") or name.endswith("__"):
            return name
        owner = self._class_stack[-1].lstrip("_")
        return f"_{owner}{name}" if owner else name

    # ---- classes -----------------------------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        self._mark_class_level(node)
        self._class_stack.append(node.name)
        try:
            new = super().visit_ClassDef(node)
        finally:
            self._class_stack.pop()
        # RestrictedPython rebuilds the class node from a parsed template (``metaclass=__metaclass__``)
        # and leaves it on line 1: give it, and the injected keyword, the statement's own location.
        if isinstance(new, ast.ClassDef):
            ast.copy_location(new, node)
            for keyword in new.keywords:
                for sub in ast.walk(keyword):
                    if hasattr(sub, "lineno"):
                        ast.copy_location(sub, node)
        return new

    def _mark_class_level(self, node: ast.ClassDef) -> None:
        """Remember which nodes bind or read names of the class namespace (its methods, its attributes):
        special method names are checked there against what a class may define."""
        stack: list[ast.AST] = list(node.body)
        while stack:
            sub = stack.pop()
            if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                self._class_level.add(id(sub))
                stack.extend(sub.decorator_list)
                stack.extend(sub.args.defaults)
                stack.extend(d for d in sub.args.kw_defaults if d is not None)
                continue
            if isinstance(sub, ast.ClassDef):
                self._class_level.add(id(sub))
                stack.extend(sub.decorator_list)
                stack.extend(sub.bases)
                stack.extend(k.value for k in sub.keywords)
                continue
            if isinstance(sub, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
                continue
            if isinstance(sub, ast.Name):
                self._class_level.add(id(sub))
            stack.extend(ast.iter_child_nodes(sub))

    # ---- attributes --------------------------------------------------------------------------------

    def _check_attribute_name(self, node: ast.Attribute, attr: str, load: bool) -> None:
        if attr in INTERNAL_ATTRIBUTES:
            self.error(node, f'"{attr}" is a restricted name, that is forbidden to access in RestrictedPython.')
        elif attr.endswith("__roles__"):
            self.error(node, f'"{attr}" is an invalid attribute name because it ends with "__roles__".')
        elif is_dunder(attr):
            if not load:
                self.error(node, f"assigning {_spelled(node)} is not allowed in a strategy: {_DUNDER_WRITE}")
            elif attr not in _READABLE_ATTRIBUTE_DUNDERS:
                self.error(node, f"{_spelled(node)} is not allowed in a strategy: {dunder_read_refusal(attr)}")
        elif not load and attr in RESERVED_PRIVATE_ATTRIBUTES:
            self.error(
                node,
                f"assigning {_spelled(node)} is not allowed in a strategy: pandas reads '{attr}' to decide what an "
                "object is; choose another name",
            )

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        attr, load = node.attr, isinstance(node.ctx, ast.Load)
        self._check_attribute_name(node, attr, load)
        node = self.node_contents_visit(node)
        if load:
            return self._load_attribute(node.value, attr, node)
        node.value = self._store_guard(node.value, attr, node)
        return node

    def _load_attribute(self, value: ast.expr, attr: str, where: ast.expr) -> ast.expr:
        call = ast.Call(
            func=ast.Name("_getattr_", ast.Load()), args=[value, ast.Constant(self._mangle(attr))], keywords=[]
        )
        copy_locations(call, where)
        if not isinstance(value, ast.Name) or is_dunder(attr):
            return call
        plain = "_own_" if attr.startswith("_") else "_free_" if attr in LIBRARY_DENY else "_plain_"
        fast = ast.IfExp(
            test=_type_in(value.id, plain),
            body=ast.Attribute(ast.Name(value.id, ast.Load()), attr, ast.Load()),
            orelse=call,
        )
        copy_locations(fast, call)
        return fast

    def _store_guard(self, value: ast.expr, attr: str, where: ast.stmt | ast.expr) -> ast.expr:
        """What ``value.attr = ...`` writes through: ``_write_`` for a public name, ``_write_private_`` (the
        strategy's own objects only) for a private one; inlined for a plain variable."""
        if attr.startswith("_") and not is_dunder(attr):
            call = ast.Call(
                func=ast.Name("_write_private_", ast.Load()),
                args=[value, ast.Constant(self._mangle(attr))],
                keywords=[],
            )
            copy_locations(call, where)
            if not isinstance(value, ast.Name):
                return call
            fast = ast.IfExp(test=_type_in(value.id, "_own_"), body=ast.Name(value.id, ast.Load()), orelse=call)
            copy_locations(fast, call)
            return fast
        guarded = ast.Call(func=ast.Name("_write_", ast.Load()), args=[value], keywords=[])
        copy_locations(guarded, where)
        return _inline_write(guarded)

    # ---- match statements --------------------------------------------------------------------------

    def visit_Match(self, node: ast.Match) -> Any:
        """``match`` / ``case``: the subject, guards and bodies are transformed as usual. Patterns read
        attributes natively (``case Point(x=0)`` reads ``subject.x``; ``case Color.RED`` reads ``Color.RED``;
        ``case Point(0)`` reads the names in ``Point.__match_args__``, which `build_class` checks), so the
        names they spell are checked here, and capture names follow the variable rules."""
        node.subject = self.visit(node.subject)
        for case in node.cases:
            self._check_pattern(case.pattern)
            if case.guard is not None:
                case.guard = self.visit(case.guard)
            body: list[ast.stmt] = []
            for statement in case.body:
                result = self.visit(statement)
                if isinstance(result, list):
                    body.extend(result)
                elif result is not None:
                    body.append(result)
            case.body = body
        return node

    def _check_pattern(self, pattern: ast.pattern) -> None:
        for sub in ast.walk(pattern):
            if isinstance(sub, ast.MatchAs | ast.MatchStar):
                self.check_name(sub, sub.name)
            elif isinstance(sub, ast.MatchMapping):
                self.check_name(sub, sub.rest)
                for key in sub.keys:
                    self._check_pattern_reference(sub, key)
            elif isinstance(sub, ast.MatchValue):
                self._check_pattern_reference(sub, sub.value)
            elif isinstance(sub, ast.MatchClass):
                self._check_pattern_reference(sub, sub.cls)
                for attr in sub.kwd_attrs:
                    reason = _pattern_attribute_refusal(attr)
                    if reason is not None:
                        self.error(sub, f"the class pattern keyword {attr}= is not allowed in a strategy: {reason}")

    def _check_pattern_reference(self, where: ast.pattern, expr: ast.expr) -> None:
        """A dotted name in a pattern (``Color.RED``, ``mod.Point``): each attribute is read natively."""
        while isinstance(expr, ast.Attribute):
            reason = _pattern_attribute_refusal(expr.attr)
            if reason is not None:
                self.error(where, f"{_spelled(expr)} is not allowed in a pattern in a strategy: {reason}")
            expr = expr.value
        if isinstance(expr, ast.Name):
            self.check_name(expr, expr.id)

    # ---- subscripts and augmented assignment ----------------------------------------------------------

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        if isinstance(node.ctx, ast.Load):
            return self.node_contents_visit(node)
        new = super().visit_Subscript(node)
        if isinstance(new, ast.Subscript):
            new.value = _inline_write(new.value)
        return new

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        """``t.attr += v``, ``t[k] += v`` and ``t[i:j] += v`` (which RestrictedPython refuses) become, with
        ``t``, ``k``, ``i``, ``j`` evaluated once into temporaries, ``_write_(t).attr = _inplacevar_("+=",
        _getattr_(t, "attr"), v)`` — the same guards as a read followed by a write. Names keep
        RestrictedPython's handling."""
        target = node.target
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

        if isinstance(target, ast.Subscript) and _has_starred_slice(target.slice):
            return super().visit_AugAssign(node)  # a[1:2, *b] += v: RestrictedPython refuses it
        base = bind(target.value)
        if not isinstance(base, ast.Name):  # a constant base: (1).real += 1 — let RestrictedPython refuse it
            return super().visit_AugAssign(node)
        if isinstance(target, ast.Attribute):
            self._check_attribute_name(target, target.attr, load=False)
            current = self._load_attribute(ast.Name(base.id, ast.Load()), target.attr, target)
            store: ast.expr = ast.Attribute(
                self._store_guard(ast.Name(base.id, ast.Load()), target.attr, node), target.attr, ast.Store()
            )
        else:
            key = _bind_index(target.slice, bind)
            current = ast.Subscript(ast.Name(base.id, ast.Load()), key(), ast.Load())
            store = ast.Subscript(_inline_write(_write_call(base.id, node)), key(), ast.Store())
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


def _reserved(name: str) -> str:
    plain = name.strip("_") or "value"
    if name.startswith("_tmp") or name == "_print":
        plain = f"my{plain}"
    return (
        f'"{name}" is a reserved name: names that start and end with "_" (and _print, _tmp0...) belong to the '
        f'sandbox; rename it (e.g. "{plain}" or "_{plain}")'
    )


def _pattern_attribute_refusal(attr: str) -> str | None:
    """Why a pattern may not read attribute `attr` natively, or None (patterns bypass ``_getattr_``)."""
    if attr.startswith("_"):
        return "patterns read attributes directly, so they may use public names only; read it in the case body"
    if attr in INTERNAL_ATTRIBUTES or attr in LIBRARY_DENY or attr in ("format", "format_map", "base"):
        return "patterns read attributes directly, and this name is refused on library objects"
    return None


def _spelled(node: ast.Attribute) -> str:
    try:
        base = ast.unparse(node.value)
    except Exception:
        base = "..."
    if len(base) > 40:
        base = "..."
    elif not isinstance(node.value, ast.Name | ast.Attribute | ast.Call | ast.Subscript | ast.Constant):
        base = f"({base})"
    return f"{base}.{node.attr}"


def _has_starred_slice(index: ast.expr) -> bool:
    return isinstance(index, ast.Tuple) and any(isinstance(e, ast.Starred) for e in index.elts)


def _bind_index(index: ast.expr, bind: Callable[[ast.expr], ast.Name | ast.Constant]) -> Callable[[], ast.expr]:
    """Bind the parts of a subscript index once; return a maker of fresh copies of the bound index."""
    if isinstance(index, ast.Slice):
        parts = [None if p is None else bind(p) for p in (index.lower, index.upper, index.step)]
        return lambda: ast.Slice(*[None if p is None else _reload(p) for p in parts])
    if isinstance(index, ast.Tuple) and any(isinstance(e, ast.Slice) for e in index.elts):
        makers = [_bind_index(e, bind) for e in index.elts]
        return lambda: ast.Tuple([make() for make in makers], ast.Load())
    key = bind(index)
    return lambda: _reload(key)


def _write_call(var: str, where: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name("_write_", ast.Load()), args=[ast.Name(var, ast.Load())], keywords=[])
    return ast.fix_missing_locations(ast.copy_location(call, where))


def _reload(expr: ast.Name | ast.Constant) -> ast.expr:
    return ast.Name(expr.id, ast.Load()) if isinstance(expr, ast.Name) else ast.Constant(expr.value)


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
        return f"it is nested too deeply (keep nesting under {MAX_DEPTH} levels)"
    if isinstance(exc, MemoryError):
        return "it is too large"
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _syntax_error(exc: SyntaxError) -> StrategyCompileError:
    line = exc.lineno if isinstance(exc.lineno, int) else None
    kind = type(exc).__name__
    text = (exc.text or "").strip() if isinstance(exc.text, str) else ""
    if len(text) > 200:
        text = text[:200] + "…"
    where = f"line {line}: " if line else ""
    detail = f": {text}" if text else ""
    return StrategyCompileError(f"{where}{kind}: {exc.msg}{detail}", line=line)


_LINE_PREFIX = re.compile(r"^Line (\d+|None): ")

# What to write instead, for RestrictedPython's own refusals.
_HINTS = {
    "Match statements are not allowed.": "use if/elif/else",
    "TryStar statements are not allowed.": "use a plain except clause",
    "AsyncFunctionDef statements are not allowed.": "use a plain def (strategies run synchronously)",
    "Await statements are not allowed.": "call the function directly",
    "AsyncFor statements are not allowed.": "use a plain for loop",
    "AsyncWith statements are not allowed.": "use a plain with statement",
    "Exec calls are not allowed.": "write the code itself",
    "Eval calls are not allowed.": "write the expression itself",
    'The keyword argument "metaclass" is not allowed.': "define a plain class (class C: ...)",
    '"*" imports are not allowed.': "import the names you use (from math import sqrt) or the module (import math)",
    "Augmented assignment of attributes is not allowed.": "assign to a variable first",
    "Augmented assignment of object items and slices is not allowed.": "assign to a variable first",
}


def _restricted_problem(text: str) -> tuple[int | None, str]:
    match = _LINE_PREFIX.match(text)
    line: int | None = None
    if match:
        line = None if match.group(1) == "None" else int(match.group(1))
        text = text[match.end() :]
    hint = _HINTS.get(text)
    if hint is None and text.endswith(" statements are not allowed."):
        hint = "rewrite it with ordinary statements"
    return line, f"{text[:-1]}; {hint}" if hint else text


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

_NAME_BUILTINS = {"getattr", "hasattr", "setattr", "delattr"}


class _PolicyScan(ast.NodeVisitor):
    """Refusals that can be seen in the source (the run-time guards repeat them for computed names)."""

    def __init__(self, tree: ast.Module) -> None:
        self.problems: list[tuple[int | None, str]] = []
        self.bound = _bound_names(tree)
        rebound = _bound_names(tree, imports=False)
        self.modules = {alias: mod for alias, mod in _PREBOUND_MODULES.items() if alias not in rebound}
        self.visit(tree)

    def add(self, node: ast.AST, message: str) -> None:
        self.problems.append((getattr(node, "lineno", None), message))

    def module_of(self, expr: ast.expr) -> str | None:
        """The allowed module `expr` names (``np``, ``np.lib.stride_tricks``), or None."""
        if isinstance(expr, ast.Name):
            return self.modules.get(expr.id)
        if isinstance(expr, ast.Attribute) and isinstance(expr.ctx, ast.Load):
            parent = self.module_of(expr.value)
            if parent is not None and f"{parent}.{expr.attr}" in ALLOWED_MODULES:
                return f"{parent}.{expr.attr}"
        return None

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
            self.add(
                node,
                f"relative imports are not allowed in a strategy; import by the full name (allowed: "
                f"{ALLOWED_MODULES_TEXT})",
            )
        elif module not in ALLOWED_MODULES:
            self.add(node, f"import from '{module}' is not allowed in a strategy; allowed: {ALLOWED_MODULES_TEXT}")
        else:
            for alias in node.names:
                reason = module_refusal(module, alias.name) if alias.name != "*" else None
                if reason is not None:
                    self.add(node, f"{module}.{alias.name} is not allowed in a strategy: {reason}")
                full = f"{module}.{alias.name}"
                if full in ALLOWED_MODULES:
                    self.modules[alias.asname or alias.name] = full
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.attr
        if isinstance(node.ctx, ast.Load):
            base = node.value
            module = self.module_of(base)
            if module is not None and f"{module}.{name}" not in ALLOWED_MODULES:
                reason = module_refusal(module, name)
                if reason is not None:
                    self.add(node, f"{module}.{name} is not allowed in a strategy: {reason}")
            elif name in ("format", "format_map") and isinstance(base, ast.Constant) and isinstance(base.value, str):
                reason = check_format_string(base.value)
                if reason is not None:
                    self.add(node, f"str.{name} with this format string is not allowed in a strategy: {reason}")
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        keywords = [k.arg for k in node.keywords if k.arg != "metaclass"]
        if keywords:
            names = ", ".join(f"{k}=..." if k else "**..." for k in keywords)
            self.add(
                node,
                f"class keywords ({names}) are not allowed in a strategy; set class attributes in the class body",
            )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id not in self.bound:
            if func.id in UNAVAILABLE_BUILTINS and func.id not in ("eval", "exec"):
                self.add(node, f"{func.id}() is not available in a strategy: {UNAVAILABLE_BUILTINS[func.id]}")
            elif func.id in _NAME_BUILTINS and len(node.args) >= 2:
                self._check_literal_name(node, func.id)
        self.generic_visit(node)

    def _check_literal_name(self, node: ast.Call, builtin: str) -> None:
        attr = node.args[1]
        if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
            return
        name = attr.value
        module = self.module_of(node.args[0])
        if module is not None and builtin == "getattr":
            reason = module_refusal(module, name)
            if reason is not None and f"{module}.{name}" not in ALLOWED_MODULES:
                self.add(node, f"{module}.{name} is not allowed in a strategy: {reason}")
                return
        if builtin == "getattr" and is_dunder(name) and name not in _READABLE_ATTRIBUTE_DUNDERS:
            self.add(node, f"getattr(..., {name!r}) is not allowed in a strategy: {dunder_read_refusal(name)}")
        elif builtin in ("setattr", "delattr") and is_dunder(name):
            self.add(node, f"{builtin}(..., {name!r}) is not allowed in a strategy: {_DUNDER_WRITE}")
        elif builtin in ("setattr", "delattr") and name in RESERVED_PRIVATE_ATTRIBUTES:
            self.add(
                node, f"{builtin}(..., {name!r}) is not allowed in a strategy: pandas reads it; choose another name"
            )


def _bound_names(tree: ast.Module, imports: bool = True) -> set[str]:
    """Every name the strategy binds anywhere (assignments, defs, parameters, loop targets, and with
    `imports` the names imports bind)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias) and imports:
            bound.add(node.asname or node.name.partition(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound
