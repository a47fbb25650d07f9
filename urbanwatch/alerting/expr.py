"""A small, safe expression language for rule conditions (docs/alerts.md "Conditions").

`compile_expr("abs(tilt_deg - tilt_baseline_deg) > params.tilt_deg")` parses the text with
`ast` and accepts only a whitelist: numbers, strings, booleans, `None`; names (a reading's
fields and the engine's context values); `params.X`, `attrs.X`, `prev.X`, `win.X`,
`held.X`, `profile.X`; arithmetic `+ - * /`, comparisons (chains too, and `in` / `not in`
a tuple of constants), `and` / `or` / `not`, `A if C else B`, and the calls `abs`, `min`,
`max`, `coalesce`, `known` (True when any argument is present, else None: `known(a, b) and
…` leaves a rule untouched by readings that carry neither field). Anything else (attribute
chains, subscripts, lambdas, other calls) is refused with the construct named. The text is
never passed to `eval`: the validated tree is compiled into plain Python closures, and then
(codegen.py) into one bytecode function of the same meaning, which is what runs.

Missing data is unknown, not false: arithmetic or a comparison on `None` gives `None`;
`and`/`or` follow three-valued logic, so a reading without a gas module neither triggers nor
clears a gas rule.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from urbanwatch.alerting.codegen import generate, strict_names

Env = Mapping[str, Any]
Fn = Callable[[Env], Any]

# Namespaces usable as `NS.field`; everything else is a bare name.
NAMESPACES = frozenset({"params", "attrs", "prev", "win", "held", "profile"})
FUNCTIONS = frozenset({"abs", "min", "max", "coalesce", "known"})
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class ExprError(ValueError):
    """An expression outside the language; the message names the construct."""


@dataclass(frozen=True)
class Expr:
    text: str
    names: frozenset[tuple[str | None, str]]  # (namespace or None, name) it reads
    fn: Fn
    # bare names any of which missing makes the value None (codegen.strict_names)
    strict: frozenset[str] = frozenset()

    def __call__(self, env: Env) -> Any:
        return self.fn(env)


@functools.lru_cache(maxsize=4096)
def compile_expr(text: str) -> Expr:
    if not isinstance(text, str) or not text.strip():
        raise ExprError("empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    names: set[tuple[str | None, str]] = set()
    fn = _compile(tree.body, names)  # validates the whole tree (raises ExprError)
    return Expr(text, frozenset(names), generate(tree.body) or fn, strict_names(tree.body))


def _compile(node: ast.AST, names: set[tuple[str | None, str]]) -> Fn:
    if isinstance(node, ast.Constant):
        value = node.value
        if value is not None and not isinstance(value, int | float | str | bool):
            raise ExprError(f"constant {value!r} is not a number, string, boolean or None")
        return lambda env: value
    if isinstance(node, ast.Name):
        return _name(None, node.id, names)
    if isinstance(node, ast.Attribute):
        if not isinstance(node.value, ast.Name) or node.value.id not in NAMESPACES:
            raise ExprError(f"'.{node.attr}': only {', '.join(sorted(NAMESPACES))}.NAME")
        return _name(node.value.id, node.attr, names)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return _arith(
            _ARITH[type(node.op)], _compile(node.left, names), _compile(node.right, names)
        )
    if isinstance(node, ast.UnaryOp):
        inner = _compile(node.operand, names)
        if isinstance(node.op, ast.USub):
            return lambda env: None if (v := inner(env)) is None else -v
        if isinstance(node.op, ast.Not):
            return lambda env: None if (v := inner(env)) is None else not v
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, names) for v in node.values]
        return _and(parts) if isinstance(node.op, ast.And) else _or(parts)
    if isinstance(node, ast.Compare):
        return _compare(node, names)
    if isinstance(node, ast.IfExp):
        test, yes, no = (_compile(n, names) for n in (node.test, node.body, node.orelse))
        return lambda env: yes(env) if test(env) else no(env)
    if isinstance(node, ast.Call):
        return _call(node, names)
    raise ExprError(f"{type(node).__name__} is not allowed in a condition")


def _name(ns: str | None, name: str, names: set[tuple[str | None, str]]) -> Fn:
    if name.startswith("_"):
        raise ExprError(f"name {name!r}: names may not start with '_'")
    names.add((ns, name))
    if ns is None:
        return lambda env: env.get(name)
    return lambda env: env[ns].get(name)


def _arith(op: Callable[[Any, Any], Any], left: Fn, right: Fn) -> Fn:
    def run(env: Env) -> Any:
        a, b = left(env), right(env)
        if a is None or b is None or isinstance(a, str | bool) or isinstance(b, str | bool):
            return None
        try:
            return op(a, b)
        except ZeroDivisionError:
            return None

    return run


def _and(parts: list[Fn]) -> Fn:
    def run(env: Env) -> Any:
        unknown = False
        for part in parts:
            v = part(env)
            if v is None:
                unknown = True
            elif not v:
                return False
        return None if unknown else True

    return run


def _or(parts: list[Fn]) -> Fn:
    def run(env: Env) -> Any:
        unknown = False
        for part in parts:
            v = part(env)
            if v is None:
                unknown = True
            elif v:
                return True
        return None if unknown else False

    return run


def _compare(node: ast.Compare, names: set[tuple[str | None, str]]) -> Fn:
    steps: list[tuple[Callable[[Any, Any], Any], Fn]] = []
    for op, right in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(right, ast.Tuple | ast.List) or not all(
                isinstance(e, ast.Constant) for e in right.elts
            ):
                raise ExprError("'in' takes a tuple of constants: x in ('on', 'low')")
            members = frozenset(e.value for e in right.elts)  # type: ignore[attr-defined]
            negate = isinstance(op, ast.NotIn)
            steps.append((_membership(members, negate), _nothing))
        elif type(op) in _COMPARE:
            steps.append((_COMPARE[type(op)], _compile(right, names)))
        else:
            raise ExprError(f"comparison {type(op).__name__} is not allowed")
    first = _compile(node.left, names)

    def run(env: Env) -> Any:
        a = first(env)
        for op, fn in steps:
            b = fn(env)
            if a is None:
                return None
            try:
                if not op(a, b):
                    return False
            except TypeError:  # None on the right, or a string compared with a number
                return None
            a = b
        return True

    return run


def _nothing(env: Env) -> None:
    return None


def _membership(members: frozenset[Any], negate: bool) -> Callable[[Any, Any], bool]:
    def test(a: Any, _b: Any) -> bool:
        return (a in members) != negate

    return test


def _call(node: ast.Call, names: set[tuple[str | None, str]]) -> Fn:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise ExprError(f"calls are limited to {', '.join(sorted(FUNCTIONS))}")
    if node.keywords or not node.args:
        raise ExprError(f"{node.func.id}() takes positional arguments only")
    args = [_compile(a, names) for a in node.args]
    name = node.func.id
    if name == "known":
        return lambda env: True if any(a(env) is not None for a in args) else None
    if name == "coalesce":
        return lambda env: next((v for a in args if (v := a(env)) is not None), None)
    if name == "abs":
        if len(args) != 1:
            raise ExprError("abs() takes one argument")
        only = args[0]
        return lambda env: None if (v := only(env)) is None or isinstance(v, str) else abs(v)
    pick = min if name == "min" else max

    def run(env: Env) -> Any:
        values = [a(env) for a in args]
        if any(v is None or isinstance(v, str) for v in values):
            return None
        return pick(values)

    return run
