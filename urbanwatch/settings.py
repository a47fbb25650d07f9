"""All configuration, read from the environment (or a `.env` file) in one place.

Build a `Settings()` in a process's `main()` and pass it down; nothing reads the
environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from urbanwatch.errors import RuntimeProblem, UsageError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "postgresql://127.0.0.1:5432/urbanwatch"
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_topic_prefix: str = "urbanwatch"
    # This process's broker account (a service account when the broker enforces them).
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None

    # --- ingest -------------------------------------------------------------
    # Rows are written when either bound is reached: big batches make COPY cheap,
    # the interval bounds how long a reading waits before it is committed.
    ingest_batch_size: int = Field(5000, ge=1)
    ingest_flush_interval_s: float = Field(0.2, gt=0)
    # MQTT 5 Receive Maximum: how many unacknowledged messages the broker may send us.
    # Acks are sent after commit, so this window must hold a few batches (docs/scaling.md:
    # a window of 20 capped ingest at 65 msg/s). It also bounds the worker's buffer.
    ingest_receive_maximum: int = Field(65535, ge=1, le=65535)
    # Empty: one worker with a plain subscription, which the broker keeps across its own
    # restart. A name: workers share the messages ($share/<name>/…); docs/scaling.md says
    # which brokers keep a shared subscription across a restart (Mosquitto 2.0.11 does not).
    ingest_share_group: str = ""
    # Empty: the worker claims urbanwatch-ingest-<deployment>-<slot> (ingest/session.py), the
    # same id after a restart, so its session and what queued meanwhile come back.
    ingest_client_id: str | None = None
    # How long a starting worker waits for a client id held by another connection (a crashed
    # worker's is dropped by the server within ~11 s) before it gives up.
    ingest_claim_wait_s: float = Field(15, ge=0)
    # Mosquitto 2.0 closes a taken-over session's older connection without saying why; a
    # fight over one client id shows as this many drops, each within 10 s of connecting,
    # within 60 s. The worker then reports the takeover and stops. 0 turns this off.
    ingest_takeover_drops: int = Field(5, ge=0)
    ingest_session_expiry_s: int = Field(3600, ge=0)
    ingest_max_payload_bytes: int = Field(256 * 1024, ge=64)
    # Device clocks drift; readings further ahead than this are refused [P].
    ingest_max_future_s: float = Field(300, ge=0)
    # docs/domain.md §6: accept late messages up to 72 h [P]; 0 accepts any age.
    ingest_max_age_h: float = Field(72, ge=0)
    ingest_stats_interval_s: float = Field(5, gt=0)
    # Retry a failed database write after this many seconds, doubling up to the cap.
    ingest_retry_initial_s: float = Field(0.5, gt=0)
    ingest_retry_max_s: float = Field(30, gt=0)
    # Plain storage: how often `urbanwatch rollup --every` materializes the hourly rollups.
    rollup_interval_s: float = Field(300, gt=0)
    # How long the device-id -> kind cache trusts itself before re-reading the registry.
    ingest_registry_ttl_s: float = Field(60, gt=0)

    # --- alerts engine (issue #10, docs/alerts.md) ---------------------------
    # N engine processes split the devices by a hash of the device id; each claims a free
    # slot 0…N−1 (one engine per slot, so no device is evaluated twice).
    alerts_partitions: int = Field(1, ge=1, le=64)
    # Messages evaluated per transaction (one commit, then the acknowledgements).
    alerts_batch_size: int = Field(2000, ge=1)
    alerts_flush_interval_s: float = Field(0.05, gt=0)
    alerts_session_expiry_s: int = Field(86400, ge=0)
    # How often the engine looks for a new rule set in the database.
    alerts_rules_poll_s: float = Field(5, gt=0)
    # How long a starting engine waits for a free slot (a killed engine's lock is dropped
    # by the server within ~11 s).
    alerts_claim_wait_s: float = Field(15, ge=0)

    # --- group detectors (issue #10, docs/alerts.md "Group detectors") ------------------
    # Overrides of alerts/detectors/config.py as JSON: DETECTORS_CONFIG='{"dark_after_s": 600}'.
    detectors_config: dict[str, Any] = Field(default_factory=dict)

    # --- plan KPIs (issue #11) ------------------------------------------------
    # Overrides of the proposed defaults (docs/domain.md §7) per KPI, as JSON: KPI_CONFIG=
    # '{"manhole.online_rate": {"offline_after_s": 90000}}'. Reports name the values used.
    kpi_config: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # --- api ----------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # --- identity (issue #9, docs/security.md) -------------------------------
    # Signs the API's access tokens (HS256); required to serve the API, ≥ 32 bytes of random.
    api_secret_key: SecretStr | None = None
    # Access tokens are short-lived; a refresh token (rotating, revocable) gets the next one.
    api_access_token_ttl_s: int = Field(900, ge=30, le=86400)
    api_refresh_token_ttl_s: int = Field(7 * 86400, ge=300)
    # Failed sign-ins tolerated per account and per client address within the window.
    login_max_failures_per_account: int = Field(5, ge=1)
    login_max_failures_per_client: int = Field(20, ge=1)
    login_failure_window_s: int = Field(900, ge=1)
    # argon2id cost of new password hashes (RFC 9106's second recommendation by default;
    # OWASP's floor is 19 MiB, t=2, p=1). Tests lower it to keep hashing fast.
    password_hash_memory_kib: int = Field(65536, ge=8192)
    password_hash_time_cost: int = Field(3, ge=1)
    password_hash_parallelism: int = Field(4, ge=1, le=64)
    # `urbanwatch migrate` creates this admin when the password is set and no admin exists.
    urbanwatch_admin_username: str = "admin"
    urbanwatch_admin_password: SecretStr | None = None

    # --- broker credentials (issue #9, docs/security-devices.md) -------------
    # Where `urbanwatch broker sync` (and `devices credentials issue|rotate|revoke`) write
    # Mosquitto's password and ACL files, and how the broker is told to reread them: SIGHUP
    # to the pid in the pid file, or a command (`docker compose kill -s HUP mqtt`).
    broker_auth_dir: Path | None = None
    broker_pid_file: Path | None = None
    broker_reload_command: str | None = None
    # USER[:GROUP] given the files (the broker's own user, which must read them; needs root).
    broker_auth_owner: str | None = None

    # --- notify (alerts/notify, docs/notifications.md) -----------------------
    # How often an idle notifier looks for events, deadlines and due retries.
    notify_poll_s: float = Field(0.5, gt=0)
    # A send in flight belongs to its notifier this long (a send times out after 10 s);
    # a notifier killed mid-send leaves its rows to be sent again after it.
    notify_lease_s: float = Field(60, gt=0)
    # Retry a failed delivery after this, doubling per attempt up to the cap.
    notify_retry_initial_s: float = Field(2, gt=0)
    notify_retry_max_s: float = Field(300, gt=0)
    # A rate-limited channel (the robots) that just sent a digest waits this long before
    # the next message, so a storm arrives as a few digests rather than 20 a minute.
    notify_digest_interval_s: float = Field(30, gt=0)
    # Delivered outbox rows and their attempts are kept this long (checked hourly).
    notify_keep_days: float = Field(30, gt=0)
    # Give up (status 'dead') on a message still undelivered this long after it was queued.
    notify_give_up_h: float = Field(24, gt=0)

    # --- dashboards (`urbanwatch dashboards push`, docs/dashboards.md) --------
    grafana_url: str = "http://127.0.0.1:3000"
    grafana_token: SecretStr | None = None  # a service-account token with the Admin role
    # The database as Grafana reaches it, logging in as a member of urbanwatch_grafana.
    grafana_db_url: SecretStr | None = None
    grafana_db_timescaledb: bool = True  # False for plain PostgreSQL storage

    # Files a command writes for the user (the simulator's fleets and ground truth); when
    # unset, $XDG_STATE_HOME/urbanwatch or ~/.local/state/urbanwatch (see state_dir()).
    urbanwatch_state_dir: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url_parses(cls, value: str) -> str:
        try:
            conninfo_to_dict(value)
        except psycopg.ProgrammingError as exc:
            raise ValueError(
                f"not a PostgreSQL URL (postgresql://[USER@]HOST[:PORT]/DBNAME): {exc}".strip()
            ) from None
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_parses(cls, value: str) -> str:
        try:
            mqtt_host_port(value)
        except ValueError:
            raise ValueError("must be mqtt://HOST[:PORT]") from None
        return value

    @field_validator("mqtt_topic_prefix")
    @classmethod
    def _prefix_is_a_topic_level(cls, value: str) -> str:
        value = value.strip("/")
        if not value or any(c in value for c in "+#$"):
            raise ValueError("must be non-empty and free of MQTT wildcards (+ # $)")
        return value


def mqtt_host_port(url: str) -> tuple[str, int]:
    """Split `mqtt://host:port` into its parts (port 1883 when absent)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"MQTT_URL must be mqtt://HOST[:PORT], got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"MQTT_URL has a port that is not a number 0-65535: {url!r}") from None
    return parts.hostname or "127.0.0.1", port or 1883


# How a setting's pydantic error reads on the command line, by pydantic's error type.
_SETTING_PROBLEMS = {
    "greater_than_equal": "must be ≥ {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be ≤ {le}",
    "less_than": "must be < {lt}",
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
}


def load_settings() -> Settings:
    """`Settings()`, with every invalid value reported on one line as a UsageError:
    `setting INGEST_BATCH_SIZE=-5: must be ≥ 1`."""
    try:
        return Settings()
    except ValidationError as exc:
        raise UsageError("; ".join(_describe(e) for e in exc.errors())) from exc


def _describe(error: ErrorDetails) -> str:
    name = str(error["loc"][0]).upper() if error["loc"] else "?"
    template = _SETTING_PROBLEMS.get(error["type"])
    problem = template.format(**error.get("ctx", {})) if template else error["msg"]
    return f"setting {name}={error['input']}: {problem.removeprefix('Value error, ')}"


def state_dir(settings: Settings) -> Path:
    """URBANWATCH_STATE_DIR, else $XDG_STATE_HOME/urbanwatch, else ~/.local/state/urbanwatch
    (the XDG base directory spec's place for files that outlive a run but are not data the
    user made). Not created here."""
    if settings.urbanwatch_state_dir is not None:
        return settings.urbanwatch_state_dir
    xdg = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(xdg):  # the spec says to ignore a relative one
        return Path(xdg) / "urbanwatch"
    home = os.path.expanduser("~")
    if not os.path.isabs(home):
        raise RuntimeProblem("no home directory to keep files in: set URBANWATCH_STATE_DIR")
    return Path(home) / ".local" / "state" / "urbanwatch"
