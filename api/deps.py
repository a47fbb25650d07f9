"""Request dependencies: a pooled connection that commits when the handler succeeds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    with request.app.state.pool.connection() as conn:  # commits on success, rolls back on error
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_conn)]


def field_error(status: int, location: list[str], message: str) -> HTTPException:
    """An error shaped like FastAPI's own validation errors, naming the field."""
    return HTTPException(status, detail=[{"loc": location, "msg": message, "type": "value_error"}])
