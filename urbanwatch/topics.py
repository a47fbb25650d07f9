"""The MQTT topic contract (docs/mqtt.md), shared by ingest and the simulators.

{prefix}/{kind}/{device_id}/telemetry     one JSON reading
{prefix}/gateway/{gateway_id}/telemetry   a JSON array of readings, each with device_id
{prefix}/{kind}/{device_id}/status        heartbeat, online/offline, last will
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from urbanwatch.models import DEVICE_ID_RE, KINDS

GATEWAY = "gateway"
Channel = Literal["telemetry", "status"]


@dataclass(frozen=True)
class Topic:
    kind: str  # a device kind, or "gateway"
    device_id: str  # the gateway's id for gateway batches
    channel: Channel


def telemetry_topic(prefix: str, kind: str, device_id: str) -> str:
    return f"{prefix}/{kind}/{device_id}/telemetry"


def gateway_topic(prefix: str, gateway_id: str) -> str:
    return f"{prefix}/{GATEWAY}/{gateway_id}/telemetry"


def status_topic(prefix: str, kind: str, device_id: str) -> str:
    return f"{prefix}/{kind}/{device_id}/status"


def subscriptions(prefix: str, share_group: str | None) -> list[str]:
    """What ingest subscribes to; with a share group the broker splits messages among workers."""
    filters = [f"{prefix}/+/+/telemetry", f"{prefix}/+/+/status"]
    return [f"$share/{share_group}/{f}" for f in filters] if share_group else filters


def parse_topic(prefix: str, topic: str) -> Topic | None:
    """The parts of a contract topic, or None when the topic is not one of ours."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3:
        return None
    kind, device_id, channel = parts
    if channel not in ("telemetry", "status") or not DEVICE_ID_RE.match(device_id):
        return None
    if kind == GATEWAY and channel == "telemetry":
        return Topic(kind, device_id, "telemetry")
    if kind not in KINDS:
        return None
    return Topic(kind, device_id, channel)  # type: ignore[arg-type]
