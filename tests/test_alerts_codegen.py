"""The bytecode conditions (urbanwatch/alerting/codegen.py) mean exactly what the closures of
expr.py mean: random expressions of the language over random environments (missing fields,
strings, booleans, zero divisors) give the same value, or the same exception type; and the
default rule file's conditions agree on the values they see in the field."""

from __future__ import annotations

import ast
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urbanwatch.alerting.codegen import generate
from urbanwatch.alerting.expr import _compile, compile_expr
from urbanwatch.alerting.loader import default_rules

NAMES = ["a", "b", "c"]
NS = ["params", "attrs", "prev", "win", "held", "profile"]
VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["on", "low", ""]),
)


def exprs() -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(NAMES),
        st.builds(lambda ns, n: f"{ns}.{n}", st.sampled_from(NS), st.sampled_from(NAMES)),
        st.sampled_from(["0", "1", "2.5", "-1", "True", "False", "None", "'on'", "1e999"]),
    )

    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        two = st.tuples(inner, inner)
        return st.one_of(
            two.flatmap(lambda t: st.sampled_from("+-*/").map(lambda o: f"({t[0]} {o} {t[1]})")),
            two.flatmap(
                lambda t: st.sampled_from(["<", "<=", ">", ">=", "==", "!="]).map(
                    lambda o: f"({t[0]} {o} {t[1]})"
                )
            ),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} < {t[1]} <= {t[2]})"),
            inner.map(lambda x: f"({x} in ('on', 'low', 1))"),
            inner.map(lambda x: f"({x} not in ('on', 2) < 1)"),
            st.lists(inner, min_size=2, max_size=4).map(lambda xs: "(" + " and ".join(xs) + ")"),
            st.lists(inner, min_size=2, max_size=4).map(lambda xs: "(" + " or ".join(xs) + ")"),
            inner.map(lambda x: f"(not {x})"),
            inner.map(lambda x: f"(-{x})"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            inner.map(lambda x: f"abs({x})"),
            st.tuples(
                st.sampled_from(["min", "max", "coalesce", "known"]),
                st.lists(inner, min_size=1, max_size=3),
            ).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        )

    return st.recursive(leaf, grow, max_leaves=8)


def envs() -> st.SearchStrategy[dict[str, Any]]:
    flat = st.dictionaries(st.sampled_from(NAMES), VALUE)
    return st.builds(
        lambda top, spaces: {**top, **dict(zip(NS, spaces, strict=True))},
        flat,
        st.tuples(*[flat] * len(NS)),
    )


def outcome(fn: Any, env: dict[str, Any]) -> tuple[str, Any]:
    try:
        value = fn(env)
    except Exception as exc:  # the same failure is part of the meaning
        return ("raises", type(exc))
    if isinstance(value, float) and math.isnan(value):
        return ("nan", None)
    return (type(value).__name__, value)


def both(text: str) -> tuple[Any, Any]:
    tree = ast.parse(text, mode="eval").body
    closures = _compile(tree, set())
    code = generate(tree)
    assert code is not None, text
    return closures, code


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs(), st.lists(envs(), min_size=1, max_size=4))
def test_bytecode_equals_closures(text: str, samples: list[dict[str, Any]]) -> None:
    closures, code = both(text)
    for env in samples:
        assert outcome(code, env) == outcome(closures, env), (text, env)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_default_rules_agree(data: st.DataObject) -> None:
    for rule in default_rules().rules:
        for text in (rule.trigger, rule.clear, rule.after_s):
            if not text:
                continue
            closures, code = both(text)
            names = compile_expr(text).names
            env: dict[str, Any] = {ns: {} for ns in NS}
            for ns, name in names:
                value = data.draw(VALUE)
                if value is not None:
                    (env if ns is None else env[ns])[name] = value
            assert outcome(code, env) == outcome(closures, env), (text, env)


def test_compile_expr_runs_the_bytecode() -> None:
    expr = compile_expr("abs(a - b) > params.x and known(a, b)")
    assert expr.fn.__name__ == "_expr"
    assert expr({"a": 5, "b": 1, "params": {"x": 3}}) is True
    assert expr({"a": 5, "params": {"x": 3}}) is None
    assert expr({"a": 1, "b": 1, "params": {"x": 3}}) is False


def test_too_deep_falls_back_to_closures() -> None:
    text = "b"
    for k in range(60):  # 60 nested `or`/`and`: more blocks than CPython nests
        text = f"(a > {k} or (a < -{k} and {text}))"
    expr = compile_expr(text)
    assert expr.fn.__name__ != "_expr"  # the closures
    assert expr({"a": 200, "b": True}) is True
    assert expr({"b": True}) is None
    assert expr({"a": 0, "b": True}) is False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs(), envs())
def test_strict_names_missing_means_unknown(text: str, env: dict[str, Any]) -> None:
    """The engine skips a rule when a strict name is missing: only sound if the value is
    then always None."""
    tree = ast.parse(text, mode="eval").body
    closures = _compile(tree, set())
    strict = compile_expr(text).strict
    for name in strict:
        without = {k: v for k, v in env.items() if k != name}
        assert outcome(closures, without) == ("NoneType", None), (text, name, without)


def test_strict_names_of_default_rules() -> None:
    assert compile_expr("depth_cm >= params.depth_cm").strict == {"depth_cm"}
    assert compile_expr("known(a, b) and coalesce(a, 1) > 0").strict == frozenset()
    assert compile_expr("a == b").strict == {"a"}
    assert compile_expr("a if c else a + b").strict == {"a"}
