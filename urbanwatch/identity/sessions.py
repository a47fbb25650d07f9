"""Sign-in for people: password -> short-lived access token + rotating refresh token;
failed attempts limited per account and per client address (in the database, so the limit
holds across API workers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import psycopg

from urbanwatch import audit
from urbanwatch.identity import passwords, tokens
from urbanwatch.identity.models import TokenPair, UserRow
from urbanwatch.identity.ratelimit import Limit, retry_after
from urbanwatch.queries import users as queries


@dataclass(frozen=True)
class SessionPolicy:
    secret: str
    access_ttl: timedelta
    refresh_ttl: timedelta
    per_account: Limit
    per_client: Limit

    def __repr__(self) -> str:
        return f"SessionPolicy(access_ttl={self.access_ttl}, refresh_ttl={self.refresh_ttl})"


class SignInRefused(Exception):
    """Wrong name or password, a disabled account, or a bad refresh token: one answer."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"too many failed sign-ins; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def _issue(conn: psycopg.Connection, user: UserRow, client: str, p: SessionPolicy) -> TokenPair:
    now = queries.now(conn)
    refresh = tokens.new_refresh_token()
    queries.insert_refresh_token(conn, user.id, tokens.digest(refresh), now + p.refresh_ttl, client)
    access = tokens.encode_access(user.username, now, p.access_ttl, p.secret)
    return TokenPair(
        access_token=access,
        expires_in=int(p.access_ttl.total_seconds()),
        refresh_token=refresh,
    )


def sign_in(
    conn: psycopg.Connection, username: str, password: str, client: str, p: SessionPolicy
) -> TokenPair:
    """Tokens for a right name and password. Raises TooManyAttempts before checking anything
    once the limits are reached, SignInRefused otherwise; failures are recorded on `conn`
    (the caller commits them also when it answers with an error)."""
    queries.lock_login(conn, username, client)
    now = queries.now(conn)
    window = max(p.per_account.window, p.per_client.window)
    by_user, by_client = queries.recent_failures(conn, username, client, now - window)
    waits = [retry_after(by_user, p.per_account, now), retry_after(by_client, p.per_client, now)]
    if any(w is not None for w in waits):
        raise TooManyAttempts(max(w for w in waits if w is not None))
    user = queries.get_user(conn, username)
    matches = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not matches or user.disabled:
        queries.record_failure(conn, username, client, prune_before=now - window)
        reason = "disabled" if user is not None and user.disabled and matches else "bad_credentials"
        actor = audit.Actor("anonymous", None, client)  # not that user: whoever tried
        audit.record(conn, actor, "login_failed", "session", username, detail={"reason": reason})
        raise SignInRefused("wrong username or password, or the account is disabled")
    if passwords.needs_rehash(user.password_hash):
        queries.set_password_hash(conn, user.id, passwords.hash_password(password))
    queries.clear_failures(conn, username)
    audit.record(
        conn, audit.Actor(f"user:{username}", user.role, client), "login", "session", username
    )
    return _issue(conn, user, client, p)


def refresh(conn: psycopg.Connection, token: str, client: str, p: SessionPolicy) -> TokenPair:
    """The next token pair for a live refresh token, which is revoked (rotation). A revoked
    token presented again means it was copied: every token of its user is revoked."""
    found = queries.take_refresh_token(conn, tokens.digest(token))
    if found is None:
        raise SignInRefused("unknown refresh token")
    user_id, expires_at, revoked_at = found
    if revoked_at is not None:
        revoked = queries.revoke_user_tokens(conn, user_id)
        user = queries.get_user_by_id(conn, user_id)
        name = user.username if user else str(user_id)
        audit.record(
            conn,
            audit.Actor("anonymous", None, client),  # whoever holds a copy
            "refresh_reuse",
            "session",
            name,
            detail={"refresh_tokens_revoked": revoked},
        )
        raise SignInRefused("refresh token already used: signed out everywhere")
    user = queries.get_user_by_id(conn, user_id)
    if expires_at <= queries.now(conn) or user is None or user.disabled:
        raise SignInRefused("refresh token expired, or the account is disabled")
    queries.revoke_refresh_token(conn, tokens.digest(token))
    return _issue(conn, user, client, p)


def sign_out(conn: psycopg.Connection, actor: audit.Actor, token: str | None, user_id: int) -> int:
    """Revoke one refresh token of the user's, or all of them when none is given."""
    if token is None:
        revoked = queries.revoke_user_tokens(conn, user_id)
    else:
        found = queries.take_refresh_token(conn, tokens.digest(token))
        mine = found is not None and found[0] == user_id
        revoked = int(mine and queries.revoke_refresh_token(conn, tokens.digest(token)))
    audit.record(
        conn,
        actor,
        "logout",
        "session",
        actor.name.removeprefix("user:"),
        detail={"refresh_tokens_revoked": revoked},
    )
    return revoked
