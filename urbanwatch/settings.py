"""All configuration, read from the environment (or a `.env` file) in one place.

Build a `Settings()` in a process's `main()` and pass it down; nothing reads the
environment at import time.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # --- api ----------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000

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
        raise ValueError(f"MQTT_URL must start with mqtt://, got {url!r}")
    return parts.hostname or "127.0.0.1", parts.port or 1883
