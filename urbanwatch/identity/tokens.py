"""API keys, refresh tokens and access tokens. Pure: the time is passed in.

API key: `uwk_<id>_<secret>`; the id (public, `key:<id>` in the audit log) finds the row, the
SHA-256 of the whole key is compared in constant time. Refresh token: 256 random bits,
stored as their SHA-256. Access token: a JWT (HS256) naming the user, valid for minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

KEY_PREFIX = "uwk"
KEY_RE = re.compile(r"^uwk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
ALGORITHM = "HS256"
ISSUER = "urbanwatch"
# Tokens signed with a shorter secret are easy to brute-force offline (RFC 7518 §3.2).
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str  # shown once, never stored

    def __repr__(self) -> str:  # the key never reaches a log line through repr
        return f"NewKey(key_id={self.key_id!r}, key=<hidden>)"


def new_api_key() -> NewKey:
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    return NewKey(key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}")


def split_api_key(key: str) -> str | None:
    """The key's id, or None when it is not shaped like one of ours."""
    match = KEY_RE.match(key)
    return match.group(1) if match else None


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def same_digest(stored: bytes, secret: str) -> bool:
    return hmac.compare_digest(stored, digest(secret))


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def encode_access(username: str, now: datetime, ttl: timedelta, secret: str) -> str:
    claims = {"sub": username, "iat": now, "exp": now + ttl, "iss": ISSUER, "typ": "access"}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access(token: str, now: datetime, secret: str) -> str | None:
    """The username of a valid, unexpired access token, else None."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "require": ["sub", "exp", "iat", "iss"],
                # checked below against the time passed in, not the clock
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidTokenError:
        return None
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
        return None
    if not isinstance(claims["exp"], int | float) or claims["exp"] <= now.timestamp():
        return None
    return str(claims["sub"])
