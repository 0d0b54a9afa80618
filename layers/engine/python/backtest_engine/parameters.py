"""The parameters a strategy declares, read from its source (no import, no run), so that a request giving
one the wrong type is refused at submit with a message naming it, instead of a `TypeError` deep in a run.

Two ways to declare, both ordinary Python the strategy uses anyway:

- a module-level ``PARAMETERS`` dict literal, name → type or default::

      PARAMETERS = {"fast": int, "slow": 30, "threshold": float, "mode": "trend", "short": bool}

  With it, the list is closed: a request naming a parameter it does not declare is refused.
- defaults in reads: ``params.get("fast", 10)`` or ``ctx.params.get("fast", 10)`` (any ``*.get`` on a name
  ``params``, or on an attribute ``params``) declare ``fast`` as an int with default 10. These leave the list
  open (the strategy may read others with ``params["x"]``).

Types: int (a whole number: 10, not 10.5 and not true), float (any number), str, bool. A value is checked
against the declared type only; ranges are the strategy's business.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Declared:
    """What a strategy declares: name → type name ("int", "float", "str", "bool"), the defaults it gives, and
    whether the list is closed (a PARAMETERS dict)."""

    types: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    closed: bool = False


def declared_parameters(source: str) -> Declared:
    """The parameters `source` declares (a source that does not parse declares none: compiling it reports
    the syntax error)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return Declared()
    types: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    closed = False
    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "PARAMETERS" for t in statement.targets)
            and isinstance(statement.value, ast.Dict)
        ):
            closed = True
            for key, value in zip(statement.value.keys, statement.value.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    _declare(key.value, value, types, defaults)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_params(node.func.value)
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            name = node.args[0].value
            if name not in types:
                _declare(name, node.args[1], types, defaults)
    return Declared(types=types, defaults=defaults, closed=closed)


def _is_params(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "params") or (
        isinstance(node, ast.Attribute) and node.attr == "params"
    )


def _declare(name: str, value: ast.expr, types: dict[str, str], defaults: dict[str, Any]) -> None:
    if isinstance(value, ast.Name) and value.id in TYPE_NAMES:
        types[name] = value.id
    elif isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub) and isinstance(value.operand, ast.Constant):
        _declare_constant(name, value.operand.value, types, defaults, negate=True)
    elif isinstance(value, ast.Constant):
        _declare_constant(name, value.value, types, defaults)


def _declare_constant(
    name: str, value: Any, types: dict[str, str], defaults: dict[str, Any], *, negate: bool = False
) -> None:
    kind = _kind(value)
    if kind is None or (negate and kind not in ("int", "float")):
        return
    types[name] = kind
    defaults[name] = -value if negate else value


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


def parameter_problems(declared: Declared, given: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each given parameter the declaration refuses: a wrong type, or (closed list) an
    undeclared name."""
    problems: list[tuple[str, str]] = []
    for name, value in given.items():
        expected = declared.types.get(name)
        where = f"parameters.{name}"
        if expected is None:
            if declared.closed:
                known = ", ".join(sorted(declared.types)) or "none"
                problems.append((where, f"the strategy's PARAMETERS does not declare {name!r}; it declares: {known}"))
            continue
        if not _fits(expected, value):
            problems.append(
                (where, f"the strategy reads {name!r} as {_article(expected)}, got {_describe(value)} {value!r}")
            )
    return problems


def _fits(expected: str, value: Any) -> bool:
    kind = _kind(value)
    if expected == "float":
        return kind in ("int", "float")
    return kind == expected  # int: 10, not 10.0 (a period of 10.0 bars is a TypeError in TA-Lib)


def _article(kind: str) -> str:
    return {"int": "a whole number (int)", "float": "a number", "str": "a string", "bool": "true or false"}[kind]


def _describe(value: Any) -> str:
    kind = _kind(value)
    return {"int": "the number", "float": "the number", "str": "the string", "bool": "the boolean"}.get(
        kind or "", type(value).__name__
    )


def effective_parameters(declared: Declared, given: dict[str, Any]) -> dict[str, Any]:
    """What the strategy will see for its declared defaults: the defaults, overridden by the request's."""
    return {**declared.defaults, **given}
