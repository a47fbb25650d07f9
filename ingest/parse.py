"""Pure parsing: (topic, payload, receive time, registry) -> rows, dead letters, status events.

No I/O and no clock here; the worker passes `received_at` and the registry snapshot in.
Every message under the prefix ends as rows, status events or dead letters (urbanwatch's own
outbound topics aside); every refusal's reason names the field, and one bad element of a
gateway batch never takes its good siblings with it. Nothing here raises on any input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.extras import exact_object
from ingest.reading import (
    Limits,
    Refused,
    Row,
    Window,
    check_time,
    checked_extras,
    error_code,
    outside_window,
    parse_reading,
)
from ingest.registry import Registry
from urbanwatch.kinds import Timestamp
from urbanwatch.models import DEVICE_ID_RE, describe_errors
from urbanwatch.topics import GATEWAY, is_outbound, parse_topic

__all__ = ["DeadLetter", "Limits", "Parsed", "Registry", "Row", "StatusEvent", "parse_message"]

# A status word, in a JSON status message or as the bare text of a last will.
STATUS_PATTERN = r"^[a-z_]{1,32}$"
_PLAIN_STATUS = re.compile(STATUS_PATTERN.encode())


def _text(value: str) -> str:
    """Text the database can store: PostgreSQL text cannot hold NUL."""
    return value.replace("\x00", "\\u0000") if "\x00" in value else value


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    received_at: datetime
    reason_code: str
    reason: str
    device_id: str | None = None
    element_index: int | None = None

    @classmethod
    def of(
        cls,
        topic: str,
        payload: bytes,
        received_at: datetime,
        code: str,
        reason: str,
        device_id: str | None = None,
        index: int | None = None,
    ) -> DeadLetter:
        """A dead letter whose text fields are safe to store whatever the input was."""
        return cls(topic if "\x00" not in topic else _text(topic), payload, received_at, code,
                   _text(reason), device_id, index)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StatusEvent:
    device_id: str
    ts: datetime
    status: str
    received_at: datetime
    detail: dict[str, Any] | None
    own_ts: bool = True  # False: the message had no ts, so `ts` is when it arrived


@dataclass
class Parsed:
    rows: list[Row] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    status: list[StatusEvent] = field(default_factory=list)
    ignored: int = 0  # messages that are not ours: outbound topics, other prefixes


class StatusMessage(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    status: str = Field(pattern=STATUS_PATTERN)
    ts: Timestamp | None = None
    device_id: str | None = None  # a body may repeat its address; checked against the topic
    kind: str | None = None


def parse_message(
    topic: str,
    payload: bytes,
    received_at: datetime,
    registry: Registry,
    limits: Limits,
    out: Parsed | None = None,
) -> Parsed:
    """Turn one MQTT message into rows, dead letters and status events, added to `out`
    (a new Parsed by default; a worker passes one for a whole batch). Never raises."""
    kinds = registry.kinds
    if out is None:
        out = Parsed()

    def refuse(
        code: str, reason: str, device_id: str | None = None, index: int | None = None
    ) -> Parsed:
        out.dead.append(DeadLetter.of(topic, payload, received_at, code, reason, device_id, index))
        return out

    prefix = limits.prefix
    parts = parse_topic(prefix, topic)
    if parts is None and (
        not (topic.startswith(prefix + "/") or topic == prefix) or is_outbound(prefix, topic)
    ):
        out.ignored += 1  # another deployment's topic (a stale subscription) or our own
        return out
    if len(payload) > limits.max_payload_bytes:
        return refuse(
            "oversized",
            f"payload: {len(payload)} bytes exceeds the limit of {limits.max_payload_bytes}",
        )
    if parts is None:
        return refuse(
            "bad_topic",
            f"topic: {topic!r} does not match {prefix}/<kind>/<device_id>/telemetry|status "
            f"or {prefix}/gateway/<gateway_id>/telemetry with a known kind",
        )
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if parts.channel == "status" and _PLAIN_STATUS.fullmatch(payload):
            body = payload.decode()  # last-will messages are often bare text: offline
        else:
            return refuse("invalid_json", f"payload: not valid JSON ({exc})", parts.device_id)

    window = Window.at(received_at, limits)
    if parts.channel == "status":
        return _parse_status(parts.kind, parts.device_id, body, payload, window, kinds, refuse, out)
    if parts.kind == GATEWAY:
        return _parse_gateway(parts.device_id, body, payload, window, registry, refuse, out)
    if not isinstance(body, dict):
        return refuse("invalid_json", "payload: must be a JSON object", parts.device_id)
    try:
        if "device_id" in body or "kind" in body:  # rare: most bodies do not repeat them
            _check_address(body, parts.device_id, parts.kind)
        kind = _resolve_kind(parts.device_id, kinds, parts.kind)
        out.rows.append(parse_reading(kind, parts.device_id, body, window, payload=payload))
    except Refused as exc:
        refuse(exc.code, exc.reason, parts.device_id)
    return out


def _check_address(body: dict[str, Any], device_id: str, kind: str) -> None:
    """A body may repeat its topic's device_id and kind; they must then agree with it."""
    said = body.get("device_id", device_id)
    if said != device_id:
        raise Refused(
            "invalid_field", f"device_id: {said!r} does not match the topic's {device_id!r}"
        )
    claimed = body.get("kind", kind)
    if not isinstance(claimed, str):
        raise Refused("invalid_field", "kind: must be a string")
    if claimed != kind:
        raise Refused("kind_mismatch", f"kind: the topic says {kind}, the body says {claimed!r}")


def _resolve_kind(device_id: str, kinds: Mapping[str, str], claimed: str | None) -> str:
    kind = kinds.get(device_id)
    if kind is None:
        raise Refused(
            "unknown_device", f"device_id: {device_id!r} is not in the registry", device_id
        )
    if claimed is not None and claimed != kind:
        raise Refused(
            "kind_mismatch",
            f"kind: {device_id!r} is registered as {kind}, the message says {claimed!r}",
            device_id,
        )
    return kind


def _parse_gateway(
    gateway_id: str,
    body: Any,
    payload: bytes,
    window: Window,
    registry: Registry,
    refuse: Callable[..., Parsed],
    out: Parsed,
) -> Parsed:
    if not isinstance(body, list):
        return refuse("invalid_json", "payload: a gateway batch must be a JSON array of readings")
    kinds, behind = registry.kinds, registry.gateways
    append = out.rows.append
    for index, element in enumerate(body):
        if not isinstance(element, dict):
            refuse("invalid_json", f"[{index}]: each element must be a JSON object", None, index)
            continue
        device_id = element.get("device_id")
        # A registered id is valid (the registry checks ids), so only others meet the pattern.
        kind = kinds.get(device_id) if isinstance(device_id, str) else None
        if kind is None and (not isinstance(device_id, str) or not DEVICE_ID_RE.match(device_id)):
            refuse(
                "missing_field" if device_id is None else "invalid_field",
                f"[{index}].device_id: required, a string of letters, digits and _.:-",
                None,
                index,
            )
            continue
        claimed = element.get("kind")
        try:
            if kind is not None and behind.get(device_id) != gateway_id:  # type: ignore[arg-type]
                raise Refused(
                    "foreign_device",
                    f"device_id: {device_id!r} is not registered behind gateway {gateway_id!r}",
                    device_id,  # type: ignore[arg-type]
                )
            if kind is None or (claimed is not None and claimed != kind):  # the rare case
                if claimed is not None and not isinstance(claimed, str):
                    raise Refused("invalid_field", "kind: must be a string", device_id)
                kind = _resolve_kind(device_id, kinds, claimed)  # type: ignore[arg-type]
            append(parse_reading(kind, device_id, element, window, index, payload))  # type: ignore[arg-type]
        except Refused as exc:
            where = f"[{index}]."
            reason = exc.reason if exc.reason.startswith(where) else where + exc.reason
            refuse(exc.code, reason, device_id, index)
    return out


def _parse_status(
    kind: str,
    device_id: str,
    body: Any,
    payload: bytes,
    window: Window,
    kinds: Mapping[str, str],
    refuse: Callable[..., Parsed],
    out: Parsed,
) -> Parsed:
    received_at = window.received_at
    if isinstance(body, str):  # a bare "online" / "offline", as last-will messages often are
        body = {"status": body}
    if not isinstance(body, dict):
        return refuse(
            "invalid_json", "payload: a status must be a JSON object or string", device_id
        )
    try:
        _check_address(body, device_id, kind)
        _resolve_kind(device_id, kinds, kind)
        message = StatusMessage.model_validate(body)
        if message.ts is not None and outside_window(message.ts, window):
            check_time(message.ts, window)  # raises Refused saying which bound
        detail = message.model_extra
        if detail:
            detail = checked_extras(detail, lambda: exact_object(payload, None))
    except Refused as exc:
        return refuse(exc.code, exc.reason, device_id)
    except ValidationError as exc:
        return refuse(error_code(exc), describe_errors(exc), device_id)
    out.status.append(
        StatusEvent(
            device_id,
            message.ts or received_at,
            message.status,
            received_at,
            detail or None,
            own_ts=message.ts is not None,
        )
    )
    return out
