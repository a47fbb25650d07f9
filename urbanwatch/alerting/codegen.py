"""Condition expressions compiled to Python bytecode, once per expression (issue #10 speed).

`generate(tree)` takes a tree that expr.py has ALREADY validated against its whitelist (it
raises before this runs on anything outside the language) and writes one small Python
function of plain statements with the very semantics of expr.py's closures: missing data
(None) propagates through arithmetic and comparisons, `and` / `or` are three-valued,
`known` / `coalesce` short-circuit. The text passed to `compile()` is built only from the
vetted node types; names become string literals (identifiers from `ast`) and constants are
passed in as globals, never as source text. The function sees no builtins but the few it is
given. Any failure to compile (a pathologically deep expression) returns None and the caller
keeps the closures.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.n = 0

    def var(self) -> str:
        self.n += 1
        return f"_t{self.n}"

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def put(self, ind: int, line: str) -> None:
        self.lines.append("    " * ind + line)

    def emit(self, node: ast.AST, ind: int) -> str:
        """Lines computing `node` at indent `ind`; returns the variable holding it."""
        r = self.var()
        if isinstance(node, ast.Constant):
            self.put(ind, f"{r} = {self.const(node.value)}")
        elif isinstance(node, ast.Name):
            self.put(ind, f"{r} = _get({node.id!r})")
        elif isinstance(node, ast.Attribute):
            assert isinstance(node.value, ast.Name)
            self.put(ind, f"{r} = env[{node.value.id!r}].get({node.attr!r})")
        elif isinstance(node, ast.BinOp):
            a, b = self.emit(node.left, ind), self.emit(node.right, ind)
            self.put(ind, f"if {a} is None or {b} is None or _isinstance({a}, _SB) "
                          f"or _isinstance({b}, _SB):")  # fmt: skip
            self.put(ind + 1, f"{r} = None")
            self.put(ind, "else:")
            self.put(ind + 1, "try:")
            self.put(ind + 2, f"{r} = {a} {_ARITH[type(node.op)]} {b}")
            self.put(ind + 1, "except ZeroDivisionError:")
            self.put(ind + 2, f"{r} = None")
        elif isinstance(node, ast.UnaryOp):
            v = self.emit(node.operand, ind)
            op = "-" if isinstance(node.op, ast.USub) else "not "
            self.put(ind, f"{r} = None if {v} is None else {op}{v}")
        elif isinstance(node, ast.BoolOp):
            self._boolop(node, r, ind)
        elif isinstance(node, ast.Compare):
            self._compare(node, r, ind)
        elif isinstance(node, ast.IfExp):
            t = self.emit(node.test, ind)
            self.put(ind, f"if {t}:")
            self.put(ind + 1, f"{r} = {self.emit(node.body, ind + 1)}")
            self.put(ind, "else:")
            self.put(ind + 1, f"{r} = {self.emit(node.orelse, ind + 1)}")
        elif isinstance(node, ast.Call):
            self._call(node, r, ind)
        else:  # expr.py refused it already
            raise TypeError(type(node).__name__)
        return r

    def _boolop(self, node: ast.BoolOp, r: str, ind: int) -> None:
        conj = isinstance(node.op, ast.And)
        u = self.var()
        self.put(ind, f"{u} = False")
        self.put(ind, "while True:")
        for part in node.values:
            v = self.emit(part, ind + 1)
            self.put(ind + 1, f"if {v} is None:")
            self.put(ind + 2, f"{u} = True")
            self.put(ind + 1, f"elif {'not ' if conj else ''}{v}:")
            self.put(ind + 2, f"{r} = {not conj}")
            self.put(ind + 2, "break")
        self.put(ind + 1, f"{r} = None if {u} else {conj}")
        self.put(ind + 1, "break")

    def _compare(self, node: ast.Compare, r: str, ind: int) -> None:
        self.put(ind, "while True:")
        a = self.emit(node.left, ind + 1)
        for op, right in zip(node.ops, node.comparators, strict=True):
            member = isinstance(op, ast.In | ast.NotIn)
            if member:
                assert isinstance(right, ast.Tuple | ast.List)
                values = frozenset(e.value for e in right.elts)  # type: ignore[attr-defined]
                test = f"{a} {'not in' if isinstance(op, ast.NotIn) else 'in'} {self.const(values)}"
                b = "None"
            else:
                b = self.emit(right, ind + 1)
                test = f"{a} {_COMPARE[type(op)]} {b}"
            self.put(ind + 1, f"if {a} is None:")
            self.put(ind + 2, f"{r} = None")
            self.put(ind + 2, "break")
            self.put(ind + 1, "try:")
            self.put(ind + 2, f"if not ({test}):")
            self.put(ind + 3, f"{r} = False")
            self.put(ind + 3, "break")
            self.put(ind + 1, "except TypeError:")
            self.put(ind + 2, f"{r} = None")
            self.put(ind + 2, "break")
            nxt = self.var()
            self.put(ind + 1, f"{nxt} = {b}")
            a = nxt
        self.put(ind + 1, f"{r} = True")
        self.put(ind + 1, "break")

    def _call(self, node: ast.Call, r: str, ind: int) -> None:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        if name in ("known", "coalesce"):
            self.put(ind, f"{r} = None")
            self.put(ind, "while True:")
            for arg in node.args:
                v = self.emit(arg, ind + 1)
                self.put(ind + 1, f"if {v} is not None:")
                self.put(ind + 2, f"{r} = {'True' if name == 'known' else v}")
                self.put(ind + 2, "break")
            self.put(ind + 1, "break")
        elif name == "abs":
            v = self.emit(node.args[0], ind)
            self.put(ind, f"{r} = None if {v} is None or _isinstance({v}, _S) else _abs({v})")
        else:
            vs = [self.emit(a, ind) for a in node.args]
            bad = " or ".join(f"{v} is None or _isinstance({v}, _S)" for v in vs)
            self.put(ind, f"{r} = None if {bad} else _{name}(({', '.join(vs)},))")


def generate(tree: ast.expr) -> Callable[[Any], Any] | None:
    """The vetted `tree` as a function of the environment, or None if it cannot compile."""
    gen = _Gen()
    try:
        result = gen.emit(tree, 1)
        source = "\n".join(["def _expr(env):", "    _get = env.get", *gen.lines])
        source += f"\n    return {result}\n"
        # a name per condition: profilers tell the conditions apart
        code = compile(source, f"<condition {ast.unparse(tree)[:60]}>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError, TypeError):
        return None
    scope: dict[str, Any] = {
        "__builtins__": {},
        "_SB": (str, bool),
        "_S": str,
        "TypeError": TypeError,
        "ZeroDivisionError": ZeroDivisionError,
        "_isinstance": isinstance,
        "_abs": abs,
        "_min": min,
        "_max": max,
        **gen.consts,
    }
    exec(code, scope)  # the source was generated above from the validated tree only
    fn: Callable[[Any], Any] = scope["_expr"]
    return fn


_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def strict_names(node: ast.AST) -> frozenset[str]:
    """Bare names any one of which, when missing (None), makes the validated expression's
    value None (unknown) whatever the rest: a rule whose condition is strict in a field the
    reading lacks can be skipped, as evaluating it could change nothing."""
    if isinstance(node, ast.Name):
        return frozenset({node.id})
    if isinstance(node, ast.BinOp):
        return strict_names(node.left) | strict_names(node.right)
    if isinstance(node, ast.UnaryOp):
        return strict_names(node.operand)
    if isinstance(node, ast.BoolOp):  # every part unknown -> unknown
        return frozenset.intersection(*(strict_names(v) for v in node.values))
    if isinstance(node, ast.Compare):
        # The first step only: a later one is not reached when the first is false. `==` and
        # `!=` with None on the right are a plain False / True, not unknown.
        out = strict_names(node.left)
        if isinstance(node.ops[0], _ORDERING):
            out |= strict_names(node.comparators[0])
        return out
    if isinstance(node, ast.IfExp):  # an unknown test takes the `else` branch
        return strict_names(node.body) & strict_names(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [strict_names(a) for a in node.args]
        if node.func.id in ("known", "coalesce"):
            return frozenset.intersection(*args)
        return frozenset().union(*args)  # abs, min, max: any None -> None
    return frozenset()
