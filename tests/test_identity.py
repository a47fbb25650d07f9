"""The pure parts of identity: role order, rate-limit arithmetic, key and token shapes,
password policy and hashing, models that refuse what they must (parametrize tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError

from tests.identity_support import SECRET
from urbanwatch.identity import passwords, tokens
from urbanwatch.identity.models import ApiKeyCreate, TokenPair, UserCreate
from urbanwatch.identity.ratelimit import Limit, retry_after
from urbanwatch.identity.roles import ORDER, Role

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("have", "needed", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "crew", False),
        ("crew", "viewer", True),
        ("crew", "operator", False),
        ("operator", "crew", True),
        ("operator", "admin", False),
        ("admin", "operator", True),
        ("admin", "viewer", True),
    ],
)
def test_a_higher_role_may_do_what_a_lower_may(have, needed, allowed):
    assert Role(have).allows(Role(needed)) is allowed


def test_roles_below():
    assert Role.operator.below() == [Role.viewer, Role.crew]
    assert Role.viewer.below() == [] and len(ORDER) == 4


LIMIT = Limit(3, timedelta(minutes=15))


@pytest.mark.parametrize(
    ("failures_min_ago", "wait_s"),
    [
        ([], None),
        ([1, 2], None),  # under the limit
        ([1, 2, 3], 12 * 60),  # oldest counted, 3 min ago, leaves the window in 12 min
        ([1, 2, 14], 60),
        ([1, 2, 16], None),  # one fell out of the window
        ([1, 2, 3, 4, 14], 12 * 60),  # the latest 3 decide
    ],
)
def test_retry_after(failures_min_ago, wait_s):
    failures = [T0 - timedelta(minutes=m) for m in failures_min_ago]
    assert retry_after(failures, LIMIT, T0) == wait_s


def test_retry_after_is_at_least_one_second():
    failures = [T0 - timedelta(minutes=15) + timedelta(milliseconds=1)] * 3
    assert retry_after(failures, LIMIT, T0) == 1


def test_api_keys_have_an_id_a_secret_and_a_hidden_repr():
    key = tokens.new_api_key()
    assert tokens.split_api_key(key.key) == key.key_id
    assert key.key not in repr(key)
    assert tokens.same_digest(tokens.digest(key.key), key.key)
    assert not tokens.same_digest(tokens.digest(key.key), key.key + "x")
    assert tokens.new_api_key().key != key.key


@pytest.mark.parametrize(
    "text", ["", "uwk_", "uwk_abc_def", "Bearer x", "uwk_ABCDEFGHIJKL_" + "a" * 43, "x" * 200]
)
def test_not_a_key(text):
    assert tokens.split_api_key(text) is None


def test_access_tokens_expire_and_are_bound_to_the_secret():
    token = tokens.encode_access("li.wei", T0, timedelta(minutes=15), SECRET)
    assert tokens.decode_access(token, T0 + timedelta(minutes=14), SECRET) == "li.wei"
    assert tokens.decode_access(token, T0 + timedelta(minutes=15), SECRET) is None
    assert tokens.decode_access(token, T0, SECRET + "other") is None
    assert tokens.decode_access(token[:-2], T0, SECRET) is None
    assert tokens.decode_access("not.a.token", T0, SECRET) is None


def test_a_token_of_another_algorithm_is_refused():
    import jwt

    claims = {"sub": "x", "iat": T0, "exp": T0 + timedelta(hours=1), "iss": "urbanwatch"}
    unsigned = jwt.encode(claims | {"typ": "access"}, None, algorithm="none")
    assert tokens.decode_access(unsigned, T0, SECRET) is None
    wrong_type = jwt.encode(claims | {"typ": "refresh"}, SECRET, algorithm="HS256")
    assert tokens.decode_access(wrong_type, T0, SECRET) is None


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 12"),
        (" " * 20, "only spaces"),
        ("p" * 1025, "at most 1024"),
        ("twelve chars\x00", "NUL"),
    ],
)
def test_password_policy(password, problem):
    with pytest.raises(ValueError, match=problem):
        passwords.check_policy(password)


def test_passwords_hash_with_argon2id_and_verify():
    stored = passwords.hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "a long enough passphrase")
    assert not passwords.verify_password(stored, "a long enough passphrasE")
    assert not passwords.verify_password(None, "a long enough passphrase")
    assert not passwords.verify_password("not a hash", "a long enough passphrase")


def test_a_hash_made_with_other_costs_verifies_and_asks_for_rehash():
    passwords.configure(16384, 1, 1)
    try:
        stored = passwords.hash_password("a long enough passphrase")
    finally:
        passwords.configure(8192, 1, 1)
    assert passwords.verify_password(stored, "a long enough passphrase")
    assert passwords.needs_rehash(stored)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": "Li.Wei"}, "username"),
        ({"username": "-x"}, "username"),
        ({"password": "short"}, "password"),
        ({"role": "root"}, "role"),
        ({"role": "crew"}, "unit"),  # crew needs a unit
        ({"unit": " 水务局"}, "unit"),
        ({"extra": 1}, "extra"),
    ],
)
def test_user_create_refuses(fields, field):
    body = {"username": "li.wei", "password": "a long enough pass", "role": "viewer"} | fields
    with pytest.raises(ValidationError) as refused:
        UserCreate.model_validate(body)
    error = refused.value.errors()[0]
    assert field in [str(part) for part in error["loc"]] or error["msg"].startswith(
        f"Value error, {field}:"
    )
    assert "a long enough pass" not in str(refused.value) or field == "extra"


def test_secrets_stay_out_of_repr():
    user = UserCreate(username="a", password=SecretStr("a long enough pass"), role=Role.viewer)
    assert "a long enough pass" not in repr(user) and "a long enough pass" not in str(user)
    pair = TokenPair(access_token="AAA.BBB.CCC", expires_in=900, refresh_token="RRRR")
    assert "AAA.BBB.CCC" not in repr(pair) and "RRRR" not in repr(pair)


def test_key_expiry_needs_a_time_zone():
    with pytest.raises(ValidationError, match="expires_at"):
        ApiKeyCreate(name="x", role=Role.viewer, expires_at=datetime(2027, 1, 1))
    ok = ApiKeyCreate(name="x", role=Role.crew, unit="城管局", expires_at=T0)
    assert ok.unit == "城管局"


def test_compose_requires_the_api_secret_and_defaults_no_password():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    api_env, migrate_env = services["api"]["environment"], services["migrate"]["environment"]
    assert api_env["API_SECRET_KEY"] == "${API_SECRET_KEY:?set API_SECRET_KEY in .env}"
    assert migrate_env["URBANWATCH_ADMIN_PASSWORD"] == "${URBANWATCH_ADMIN_PASSWORD:-}"
    assert "API_SECRET_KEY" not in services["ingest"]["environment"]  # only the API holds it


@pytest.mark.parametrize(
    ("role", "own_unit", "alert_unit", "works"),
    [
        ("crew", "水务局", {"shuiwu", "水务局"}, True),
        ("crew", "shuiwu", {"shuiwu", "水务局"}, True),
        ("crew", "水务局", {"cgj", "城管局"}, False),
        ("crew", "水务局", set(), False),
        ("crew", None, {"shuiwu"}, False),
        ("viewer", None, {"水务局"}, False),
        ("operator", None, {"城管局"}, True),
        ("admin", None, set(), True),
    ],
)
def test_who_works_a_units_alerts(role, own_unit, alert_unit, works):
    from api.auth import Principal

    principal = Principal("user:x", Role(role), own_unit, "127.0.0.1")
    assert principal.works_for(alert_unit) is works
    assert principal.reads_own_unit_only is (role == "crew")
