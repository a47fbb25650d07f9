"""The MQTT topic contract (docs/mqtt.md), shared by ingest, the simulators and alerts.

{prefix}/{kind}/{device_id}/telemetry     one JSON reading
{prefix}/gateway/{gateway_id}/telemetry   a JSON array of readings, each with device_id
{prefix}/{kind}/{device_id}/status        heartbeat, online/offline, last will
{prefix}/alerts/...                       urbanwatch's own outbound messages (not ingested)

Ingest subscribes to everything under the prefix, so a message on a topic of any other shape
is dead-lettered (`bad_topic`) instead of vanishing unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from urbanwatch.kinds import KINDS
from urbanwatch.models import DEVICE_ID_RE

GATEWAY = "gateway"
# First levels under the prefix that urbanwatch itself publishes to.
OUTBOUND = ("alerts",)
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


def alert_topic(prefix: str, kind: str, device_id: str) -> str:
    return f"{prefix}/alerts/{kind}/{device_id}"


def subscriptions(prefix: str, share_group: str | None) -> list[str]:
    """What ingest subscribes to: the whole prefix. With a share group the broker splits
    the messages among the group's workers (docs/scaling.md says which brokers keep a shared
    subscription across their own restart)."""
    topic = f"{prefix}/#"
    return [f"$share/{share_group}/{topic}" if share_group else topic]


def is_outbound(prefix: str, topic: str) -> bool:
    """A topic urbanwatch publishes to itself, under the prefix."""
    head = prefix + "/"
    return topic.startswith(head) and topic[len(head) :].split("/", 1)[0] in OUTBOUND


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
