"""Password hashing with argon2id (argon2-cffi, RFC 9106 parameters) and the password policy.

A password is checked against the stored PHC string; an unknown user is checked against a
dummy hash so that a wrong name takes as long as a wrong password.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from urbanwatch.settings import Settings

# NIST SP 800-63B: at least 8 characters, allow long passphrases; we ask for 12. The cap keeps
# one login from costing more than hashing a page of text.
MIN_LENGTH = 12
MAX_LENGTH = 1024

# argon2id, t=3, m=64 MiB, p=4 (RFC 9106 "second recommended"); `configure` changes it.
_HASHER = PasswordHasher()


def configure(memory_kib: int, time_cost: int, parallelism: int) -> None:
    """Set the cost of new hashes for this process (settings PASSWORD_HASH_*): hashes made
    with other parameters still verify, and are redone at the next sign-in."""
    global _HASHER
    if (memory_kib, time_cost, parallelism) != (
        _HASHER.memory_cost,
        _HASHER.time_cost,
        _HASHER.parallelism,
    ):
        _HASHER = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        _dummy_hash.cache_clear()


def check_policy(password: str) -> str:
    """The password, or ValueError saying what is wrong with it (never echoing it)."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"must be at most {MAX_LENGTH} characters")
    if not password.strip():
        raise ValueError("must not be only spaces")
    if "\x00" in password:
        raise ValueError("must not contain NUL characters")
    return password


def apply_settings(settings: Settings) -> None:
    """The PASSWORD_HASH_* settings, for this process."""
    configure(
        settings.password_hash_memory_kib,
        settings.password_hash_time_cost,
        settings.password_hash_parallelism,
    )


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("not a password: equalizes the time of an unknown user's login")


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash; with no stored hash (no such user) the
    work is done all the same and the answer is False."""
    try:
        return _HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)
