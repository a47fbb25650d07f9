"""Passwords and Mosquitto's own password hashes (`mosquitto_passwd` format `$7$`).

`$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`, salt of 12 bytes and a key of
64, as Mosquitto 2.0 writes and checks them (checked against `mosquitto_passwd` output in
tests/test_broker_auth_files.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# The passwords are 160 random bits (secrets), so no guessing attack benefits from a slow
# hash; the broker pays the iterations on every connection, and a fleet reconnecting after
# a broker restart makes thousands at once. Mosquitto's own default is 101.
ITERATIONS = 101
SALT_BYTES = 12
PASSWORD_BYTES = 20


def new_password() -> str:
    """A fresh random password: 27 URL-safe characters (160 bits)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches a `$7$` hash (False for anything malformed)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[:2] != ["", "7"] or not parts[2].isdigit():
        return False
    try:
        salt, key = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4])
    except ValueError:
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(candidate, key)
