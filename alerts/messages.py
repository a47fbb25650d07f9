"""What the engine takes from an MQTT message: readings and status words, validated with
the shared kind models (urbanwatch/kinds). Pure; never raises.

Ingest is the one that dead-letters bad input with its reason; the engine only skips what
it cannot evaluate (counted), so a bad message never stops or delays good ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from urbanwatch.kinds import READING_MODELS
from urbanwatch.topics import GATEWAY, Topic, parse_topic

_STATUS_WORD = re.compile(r"^[a-z_]{1,32}$")
# The models' schema validators called directly (skips model_validate_json's Python wrapper,
# as ingest/reading.py does); the same validation.
_VALIDATORS = {kind: model.__pydantic_validator__ for kind, model in READING_MODELS.items()}
# A device reports on the same topic every time: its parts are kept (a city's topics fit;
# past TOPICS_KEPT the cache starts afresh).
TOPICS_KEPT = 200_000
_TOPICS: dict[tuple[str, str], Topic | None] = {}


@dataclass(frozen=True, slots=True)
class ReadingIn:
    device_id: str
    kind: str
    ts: float  # epoch seconds
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StatusIn:
    device_id: str
    kind: str
    status: str


@dataclass(slots=True)
class Parsed:
    readings: list[ReadingIn] = field(default_factory=list)
    status: list[StatusIn] = field(default_factory=list)
    skipped: int = 0
    unknown: set[str] = field(default_factory=set)  # gateway elements of unknown devices


def parse(prefix: str, topic: str, payload: bytes, kinds: Mapping[str, str], out: Parsed) -> None:
    """Add the message's readings / status to `out`; `kinds` maps device id -> kind (the
    registry: gateway batch elements are looked up there)."""
    key = (prefix, topic)
    if key in _TOPICS:
        parts = _TOPICS[key]
    else:
        if len(_TOPICS) >= TOPICS_KEPT:
            _TOPICS.clear()
        parts = _TOPICS[key] = parse_topic(prefix, topic)
    if parts is None:
        out.skipped += 1
        return
    if parts.channel == "telemetry" and parts.kind != GATEWAY:
        _reading_json(parts.device_id, parts.kind, payload, out)
        return
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        text = payload.decode("utf-8", "replace").strip()
        if parts.channel == "status" and _STATUS_WORD.match(text):
            out.status.append(StatusIn(parts.device_id, parts.kind, text))
        else:
            out.skipped += 1
        return
    if parts.channel == "status":
        word = body.get("status") if isinstance(body, dict) else body
        if isinstance(word, str) and _STATUS_WORD.match(word):
            out.status.append(StatusIn(parts.device_id, parts.kind, word))
        else:
            out.skipped += 1
        return
    if parts.kind == GATEWAY:
        for element in body if isinstance(body, list) else [None]:
            device_id = element.get("device_id") if isinstance(element, dict) else None
            kind = kinds.get(device_id) if isinstance(device_id, str) else None
            if kind is None:
                out.skipped += 1
                if isinstance(device_id, str):
                    out.unknown.add(device_id)
                continue
            _reading(device_id, kind, element, out)  # type: ignore[arg-type]
        return
    _reading(parts.device_id, parts.kind, body, out)


def _reading_json(device_id: str, kind: str, payload: bytes, out: Parsed) -> None:
    """One device's reading straight from its JSON (pydantic's parser: no dict in between)."""
    try:
        model = _VALIDATORS[kind].validate_json(payload)
    except ValidationError:
        out.skipped += 1
        return
    fields = model.__dict__.copy()  # a C copy, then one deletion: no Python loop
    ts = fields.pop("ts")
    out.readings.append(ReadingIn(device_id, kind, ts.timestamp(), fields))


def _reading(device_id: str, kind: str, body: Any, out: Parsed) -> None:
    if not isinstance(body, dict):
        out.skipped += 1
        return
    body = {k: v for k, v in body.items() if k not in ("device_id", "kind")}
    try:
        model = _VALIDATORS[kind].validate_python(body)
    except ValidationError:
        out.skipped += 1
        return
    fields = model.__dict__.copy()
    ts = fields.pop("ts")
    out.readings.append(ReadingIn(device_id, kind, ts.timestamp(), fields))
