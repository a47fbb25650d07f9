"""Shapes of accounts and keys at the API and CLI boundary (one family per resource)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    model_validator,
)

from urbanwatch.identity.passwords import MAX_LENGTH, check_policy
from urbanwatch.identity.roles import Role

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Username = Annotated[str, Field(pattern=USERNAME_PATTERN, description="lower case, 1-64 chars")]
# A unit is a lead unit of the plan (城管局, 住建局, 水务局, …): free text, trimmed.
Unit = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


def _policy(value: SecretStr) -> SecretStr:
    check_policy(value.get_secret_value())
    return value


Password = Annotated[SecretStr, Field(max_length=MAX_LENGTH), AfterValidator(_policy)]


def _crew_has_unit(role: Role | None, unit: str | None) -> None:
    if role is Role.crew and unit is None:
        raise ValueError("unit: a crew account needs the unit whose alerts it works")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    password: Password
    role: Role
    unit: Unit | None = None
    display_name: Name | None = None

    @model_validator(mode="after")
    def _unit(self) -> UserCreate:
        _crew_has_unit(self.role, self.unit)
        return self


class UserUpdate(BaseModel):
    """PATCH body: only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    unit: Unit | None = None
    display_name: Name | None = None
    disabled: bool | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: Password


class UserPublic(BaseModel):
    username: str
    display_name: str | None
    role: Role
    unit: str | None
    disabled: bool
    created_at: datetime
    updated_at: datetime


class UserRow(UserPublic):
    """A row with its id and hash: never leaves the server."""

    id: int
    password_hash: str = Field(repr=False)

    def public(self) -> UserPublic:
        return UserPublic.model_validate(self.model_dump(include=set(UserPublic.model_fields)))


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    role: Role
    unit: Unit | None = None
    expires_at: datetime | None = Field(None, description="none: never expires")

    @model_validator(mode="after")
    def _unit(self) -> ApiKeyCreate:
        _crew_has_unit(self.role, self.unit)
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at: give a time zone (e.g. 2027-01-01T00:00:00+08:00)")
        return self


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    unit: str | None
    expires_at: datetime | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: SecretStr = Field(description="the key itself: shown once, never again")

    @field_serializer("key")
    def _reveal(self, key: SecretStr) -> str:  # the one place it is shown; repr hides it
        return key.get_secret_value()


class TokenPair(BaseModel):
    access_token: str = Field(repr=False)
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str = Field(repr=False)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=200, repr=False)
