"""What a notification says, for each channel's documented format. Pure: no I/O, no clock
(times come in as arguments). Chinese first, English alongside (city staff read these).

Formats (docs/notifications.md has the sources):
- WeCom group robot: {"msgtype": "markdown", "markdown": {"content": ...}}, content ≤ 4096
  bytes of UTF-8.
- DingTalk group robot: {"msgtype": "markdown", "markdown": {"title", "text"}, "at": {...}};
  a signed robot's URL carries timestamp (ms) and sign = urlencode(base64(HMAC-SHA256(secret,
  f"{timestamp}\\n{secret}"))).
- Generic webhook: the notice as JSON; X-Urbanwatch-Signature = "sha256=" + hex HMAC-SHA256
  over f"{timestamp}." + body, with the timestamp (s) in X-Urbanwatch-Timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

LOCAL = ZoneInfo("Asia/Shanghai")  # docs/domain.md §0: local times are Beijing time
MARKDOWN_MAX_BYTES = 4000  # WeCom's markdown limit is 4096 bytes; DingTalk's is larger
DIGEST_LINES = 15  # alerts listed one by one in a digest; the rest are counted
SEVERITY_ZH = {"info": "提示", "warning": "预警", "alarm": "报警", "critical": "紧急"}
SEVERITY_RANK = {"info": 0, "warning": 1, "alarm": 2, "critical": 3}
EVENT_ZH = {
    "opened": "新告警",
    "refired": "再次触发",
    "reopened": "重新打开",
    "escalated": "超时升级",
    "unsuppressed": "解除抑制",
    "acknowledged": "已确认",
    "on_site": "已到场",
    "cleared": "已恢复",
    "resolved": "已解决",
    "updated": "级别升高",  # sent only when the severity rose
}
# Why an alert escalated ('escalated' event detail "reason").
REASON_ZH = {
    "ack_overdue": "未按时确认 not acknowledged",
    "site_overdue": "未按时到场 nobody on site",
    "resolve_overdue": "未按时解决 not resolved",
}
KIND_ZH = {"manhole": "井盖", "waterlog": "积水", "streetlight": "路灯", "watermeter": "供水"}
WECOM_COLOUR = {"critical": "warning", "alarm": "warning", "warning": "comment", "info": "info"}


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class EventPart(Frozen):
    id: int
    type: str
    at: datetime
    actor: str
    detail: dict[str, Any] = {}


class AlertPart(Frozen):
    id: int
    rule_id: str
    subject: str
    device_id: str | None
    kind: str
    district: str | None
    severity: str
    status: str
    title: str
    opened_at: datetime
    ack_due_at: datetime | None = None
    escalation_level: int = 0


class RoutePart(Frozen):
    unit: str
    unit_name: str
    unit_name_en: str = ""
    crews: list[str]
    crew_labels: list[str] = []
    line: int
    level: int = 0


class Notice(Frozen):
    """One alert event as routed: what every channel renders (stored in the outbox)."""

    idempotency_key: str
    event: EventPart
    alert: AlertPart
    route: RoutePart


def local(t: datetime) -> str:
    return t.astimezone(LOCAL).strftime("%m-%d %H:%M")


def headline(n: Notice) -> str:
    """`【紧急 critical】新告警 opened · 井盖 MH-0001 · wenfeng · <title>`"""
    a, e = n.alert, n.event
    where = " · ".join(x for x in (KIND_ZH.get(a.kind, a.kind), a.subject, a.district) if x)
    return (
        f"【{SEVERITY_ZH.get(a.severity, a.severity)} {a.severity}】"
        f"{EVENT_ZH.get(e.type, e.type)} {e.type} · {where} · {a.title}"
    )


def markdown_single(n: Notice) -> tuple[str, str]:
    a, e, r = n.alert, n.event, n.route
    lines = [
        f"### {headline(n)}",
        f"> 规则 rule: {a.rule_id} · 告警 alert #{a.id}",
        f"> 时间 at: {local(e.at)} (北京时间) · 开始 since: {local(a.opened_at)}",
        f"> 责任单位 unit: {r.unit_name} {r.unit_name_en}",
        f"> 班组 crews: {'、'.join(r.crew_labels or r.crews)}",
    ]
    if a.ack_due_at is not None and a.status == "open":
        lines.append(f"> 确认期限 acknowledge by: {local(a.ack_due_at)}")
    if e.type == "escalated":
        reason = str(e.detail.get("reason", "ack_overdue"))
        lines.append(f"> 升级级别 escalation level: {r.level}({REASON_ZH.get(reason, reason)})")
    title = f"{SEVERITY_ZH.get(a.severity, '')}{EVENT_ZH.get(e.type, '')} {a.rule_id} {a.subject}"
    return title, _fit("\n".join(lines))


def markdown_digest(notices: list[Notice]) -> tuple[str, str]:
    """Many events as one message that still gives the whole picture: counts by event,
    severity, kind, district and rule, then the most severe events one by one."""
    n = len(notices)
    by_event = Counter(x.event.type for x in notices)
    by_sev = Counter(x.alert.severity for x in notices)
    by_district = Counter(x.alert.district or "-" for x in notices)
    by_rule = Counter(x.alert.rule_id for x in notices)
    alerts = len({x.alert.id for x in notices})
    span = f"{local(min(x.event.at for x in notices))}–{local(max(x.event.at for x in notices))}"
    worst = max(notices, key=lambda x: SEVERITY_RANK.get(x.alert.severity, 0)).alert.severity
    head = [
        f"### 【{SEVERITY_ZH.get(worst, worst)}】告警汇总 digest: {n} 条事件 events, "
        f"{alerts} 个告警 alerts",
        f"> 时段 period: {span} (北京时间)",
        "> 事件 events: " + _counts(by_event, EVENT_ZH),
        "> 级别 severity: " + _counts(by_sev, SEVERITY_ZH),
        "> 区县 districts: " + _counts(by_district, {}),
        "> 规则 rules: " + _counts(by_rule, {}),
        "",
    ]
    ranked = sorted(notices, key=lambda x: (-SEVERITY_RANK.get(x.alert.severity, 0), x.event.id))
    body = [f"- {headline(x)} ({local(x.event.at)})" for x in ranked[:DIGEST_LINES]]
    rest = n - len(body)
    tail = [f"- …另有 {rest} 条 and {rest} more (详见平台 see the API)"] if rest else []
    title = f"告警汇总 {n} 条 alert digest"
    text = "\n".join(head + body + tail)
    while len(text.encode()) > MARKDOWN_MAX_BYTES and body:
        body.pop()
        rest = n - len(body)
        tail = [f"- …另有 {rest} 条 and {rest} more (详见平台 see the API)"]
        text = "\n".join(head + body + tail)
    return title, _fit(text)


def _counts(counter: Counter[str], labels: dict[str, str]) -> str:
    shown = [
        f"{labels[k]} {k} {v}" if k in labels else f"{k} {v}" for k, v in counter.most_common(8)
    ]
    return "、".join(shown) + ("…" if len(counter) > 8 else "")


def _fit(text: str) -> str:
    """Cut to the markdown limit on a character boundary."""
    data = text.encode()
    if len(data) <= MARKDOWN_MAX_BYTES:
        return text
    return data[: MARKDOWN_MAX_BYTES - 3].decode("utf-8", "ignore") + "…"


def wecom_payload(text: str) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": text}}


def dingtalk_payload(title: str, text: str, at_mobiles: list[str]) -> dict[str, Any]:
    if at_mobiles:
        text += "\n\n" + " ".join(f"@{m}" for m in at_mobiles)
    return {
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"atMobiles": at_mobiles, "isAtAll": False},
    }


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The DingTalk 加签 scheme: base64(HMAC-SHA256(secret, f"{ts}\\n{secret}")), URL-quoted."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def webhook_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp_s).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_headers(key: str, secret: str | None, timestamp_s: int, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": key,
        "X-Urbanwatch-Timestamp": str(timestamp_s),
    }
    if secret:
        headers["X-Urbanwatch-Signature"] = webhook_signature(secret, timestamp_s, body)
    return headers
