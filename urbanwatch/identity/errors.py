"""What an account operation refuses, with the field it is about and an HTTP-like status."""

from __future__ import annotations


class IdentityError(Exception):
    """`status` 404 (no such account/key), 409 (conflict), 422 (a field's value);
    `field` names the input at fault; the message never holds a secret."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message
