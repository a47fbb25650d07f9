"""Sending: one function per channel type. Each either returns (the receiver took the
message) or raises `DeliveryFailed`; the outbox decides about retries."""

from __future__ import annotations

import json
import logging
import os
import smtplib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alerts.notify import messages as m
from urbanwatch.routing.model import Channel
from urbanwatch.settings import Settings, mqtt_host_port
from urbanwatch.topics import alert_topic

logger = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 10  # a robot or webhook that takes longer is treated as down (retried)
DIGEST_TYPES = frozenset({"wecom", "dingtalk", "email"})  # many events, one message


class DeliveryFailed(Exception):
    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class Sender:
    """Delivers notices; holds the MQTT connection between sends."""

    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None):
        self.settings = settings
        self.env = os.environ if env is None else env
        self._mqtt: mqtt.Client | None = None

    def send(self, channel: Channel, notices: list[m.Notice]) -> int | None:
        """Deliver `notices` (one, or several as a digest); the HTTP status when there is one."""
        if channel.type == "webhook":
            return self._webhook(channel, notices)
        if channel.type in ("wecom", "dingtalk"):
            return self._robot(channel, notices)
        if channel.type == "mqtt":
            self._mqtt_publish(notices)
            return None
        self._email(channel, notices)
        return None

    def _secret(self, name: str | None) -> str | None:
        return self.env.get(name) if name else None

    def _url(self, channel: Channel) -> str:
        url = channel.url or self._secret(channel.url_env)
        if not url:
            raise DeliveryFailed(f"environment variable {channel.url_env} is not set")
        return url

    def _webhook(self, channel: Channel, notices: list[m.Notice]) -> int:
        code = 0
        for notice in notices:
            body = json.dumps(notice.model_dump(mode="json"), ensure_ascii=False).encode()
            headers = m.webhook_headers(
                notice.idempotency_key, self._secret(channel.secret_env), int(time.time()), body
            )
            code = _post(self._url(channel), body, headers)
        return code

    def _robot(self, channel: Channel, notices: list[m.Notice]) -> int:
        title, text = (
            m.markdown_single(notices[0]) if len(notices) == 1 else m.markdown_digest(notices)
        )
        url = self._url(channel)
        if channel.type == "wecom":
            payload = m.wecom_payload(text)
        else:
            critical = any(n.alert.severity == "critical" for n in notices)
            payload = m.dingtalk_payload(title, text, channel.at_mobiles if critical else [])
            url = m.dingtalk_url(url, self._secret(channel.secret_env), int(time.time() * 1000))
        body = json.dumps(payload, ensure_ascii=False).encode()
        code, reply = _post_reply(url, body, {"Content-Type": "application/json; charset=utf-8"})
        try:
            errcode = json.loads(reply or b"{}").get("errcode", 0)
        except (ValueError, AttributeError):
            errcode = 0
        if errcode:  # both robots answer 200 with errcode != 0 when they refuse
            raise DeliveryFailed(f"robot refused: {reply[:200]!r}", code)
        return code

    def _mqtt_client(self) -> mqtt.Client:
        if self._mqtt is None or not self._mqtt.is_connected():
            if self._mqtt is not None:
                self._mqtt.loop_stop()
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=f"urbanwatch-notify-{socket.gethostname()}-{os.getpid()}"[:64],
                protocol=mqtt.MQTTv5,
            )
            s = self.settings
            if s.mqtt_username:
                pw = s.mqtt_password.get_secret_value() if s.mqtt_password else None
                client.username_pw_set(s.mqtt_username, pw)
            host, port = mqtt_host_port(s.mqtt_url)
            try:
                client.connect(host, port, keepalive=30)
            except OSError as exc:
                raise DeliveryFailed(f"MQTT broker {host}:{port}: {exc}") from exc
            client.loop_start()
            self._mqtt = client
        return self._mqtt

    def _mqtt_publish(self, notices: list[m.Notice]) -> None:
        """QoS 1, not retained (docs/notifications.md says why); done once the broker's
        PUBACK arrives."""
        client = self._mqtt_client()
        for n in notices:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("idempotency-key", n.idempotency_key)]
            props.ContentType = "application/json"
            topic = alert_topic(
                self.settings.mqtt_topic_prefix, n.alert.kind, n.alert.device_id or n.alert.subject
            )
            body = json.dumps(n.model_dump(mode="json"), ensure_ascii=False)
            info = client.publish(topic, body, qos=1, retain=False, properties=props)
            try:
                info.wait_for_publish(timeout=HTTP_TIMEOUT_S)
            except (RuntimeError, ValueError) as exc:
                raise DeliveryFailed(f"MQTT publish: {exc}") from exc
            if not info.is_published():
                raise DeliveryFailed("MQTT publish not acknowledged by the broker in time")

    def _email(self, channel: Channel, notices: list[m.Notice]) -> None:
        msg = email_message(channel, notices)
        assert channel.smtp_host is not None
        try:
            with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=HTTP_TIMEOUT_S) as smtp:
                if channel.starttls:
                    smtp.starttls()
                user = self._secret(channel.username_env)
                if user:
                    smtp.login(user, self._secret(channel.password_env) or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"SMTP {channel.smtp_host}:{channel.smtp_port}: {exc}") from exc

    def close(self) -> None:
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
            self._mqtt = None


def email_message(channel: Channel, notices: list[m.Notice]) -> EmailMessage:
    """The mail for one notice or a digest; Message-ID from the idempotency key(s)."""
    if len(notices) == 1:
        title, text = m.markdown_single(notices[0])
        subject = m.headline(notices[0])
        key = notices[0].idempotency_key
    else:
        title, text = m.markdown_digest(notices)
        subject = title
        key = f"digest-{notices[0].idempotency_key}-{len(notices)}"
    msg = EmailMessage()
    msg["Subject"] = subject[:200]
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{key}@urbanwatch>"
    msg["X-Urbanwatch-Keys"] = ",".join(n.idempotency_key for n in notices)[:900]
    msg.set_content(text)
    return msg


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    return _post_reply(url, body, headers)[0]


def _post_reply(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return int(response.status), response.read(4096)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} from {_host(url)}", exc.code) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{_host(url)}: {reason}") from exc


def _host(url: str) -> str:
    """The URL without its query (robot URLs carry their key there)."""
    return url.split("?", 1)[0]
