"""urbanwatch.storable: what it refuses is exactly what PostgreSQL refuses, in text and jsonb."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from urbanwatch.storable import dotted, find_unstorable

# Any character (NUL included, lone surrogates aside: they are not valid UTF-8 at all).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats() | text
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values)
def test_refused_exactly_when_postgresql_refuses_jsonb(conn: psycopg.Connection, value) -> None:
    found = find_unstorable(value)
    try:
        with conn.transaction():
            stored = conn.execute("SELECT %s::jsonb", [Jsonb(value)]).fetchone()
    except (psycopg.DataError, ValueError) as exc:  # ValueError: NaN refused by json.dumps
        assert found is not None, f"PostgreSQL refused {value!r} ({exc}), the check did not"
    else:
        assert found is None, f"refused {value!r} at {found} though PostgreSQL stored {stored}"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=text)
def test_text_refused_exactly_when_postgresql_refuses_it(conn: psycopg.Connection, value) -> None:
    found = find_unstorable(value)
    try:
        with conn.transaction():
            conn.execute("SELECT %s::text", [value])
    except psycopg.DataError:
        assert found == ((), "contains NUL (\\u0000), which cannot be stored")
    else:
        assert found is None


@pytest.mark.parametrize(
    ("value", "where", "reason"),
    [
        ({"a": [1, {"b": "x\x00"}]}, "a[1].b", "contains NUL"),
        ({"k\x00": 1}, "k\\u0000", "the key contains NUL"),
        ({"n": float("nan")}, "n", "is not a finite number"),
        ([float("-inf")], "[0]", "is not a finite number"),
    ],
)
def test_names_the_first_bad_place(value, where: str, reason: str) -> None:
    found = find_unstorable(value)
    assert found is not None
    assert dotted(found[0]) == where
    assert found[1].startswith(reason)
