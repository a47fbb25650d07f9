"""paho's Client with the per-message costs that capped ingest taken out (bench/README.md).

Profiling the worker at 13k readings/s (py-spy) showed paho's network thread spending
most of its time in system calls, not in MQTT: for every incoming message one `select`,
two or three `recv` calls (the fixed header is read a byte at a time), and for every
acknowledgement one `send` to wake the loop plus one more to write 4 bytes. Here:

* reads go through a 64 KiB buffer, and one wake-up handles every complete packet in it;
* `ack_many` acknowledges a committed batch with one write of concatenated PUBACKs;
* a QoS 0/1 PUBLISH without MQTT 5 properties (what devices send) is decoded here into a
  small `Publish` instead of paho's MQTTMessage, whose Properties object and
  MQTTMessageInfo (with its own threading.Condition) cost more than the rest of the read;
  anything else (properties, QoS 2, odd topics) takes paho's own path;
* messages go straight to `on_message` (the per-topic callback matcher is not used).

Everything else, including the protocol handling, stays paho's. These override private
methods, so the paho version is pinned below 3 (pyproject.toml) and tests cover the path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_BUFFER = 64 * 1024
_PUBACK = struct.Struct("!BBH")
_PUBACK_CMD = 0x40
_U16 = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class Publish:
    """What `on_message` needs of an incoming PUBLISH (duck-types paho's MQTTMessage)."""

    topic: str
    payload: bytes
    mid: int
    qos: int


class IngestClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rbuf_sock: object = None

    def _buffered(self) -> bool:
        return self._rpos < len(self._rbuf) and self._sock is self._rbuf_sock

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._buffered():  # empty, or a new connection: nothing buffered is valid
            chunk = super()._sock_recv(max(bufsize, READ_BUFFER))  # BlockingIOError: no data
            self._rbuf_sock = self._sock
            if len(chunk) <= bufsize:
                self._rbuf, self._rpos = b"", 0
                return chunk  # also b"" when the broker closed the connection
            self._rbuf, self._rpos = chunk, 0
        data = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(data)
        return data

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Handle every complete packet already buffered, not only one per `select`."""
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._buffered() and self._sock is not None:
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        qos = (self._in_packet["command"] & 0x06) >> 1
        end = 2 + _U16.unpack_from(packet, 0)[0]
        mid = _U16.unpack_from(packet, end)[0] if qos else 0
        props = end + (2 if qos else 0)
        if qos == 2 or self._protocol != mqtt.MQTTv5 or packet[props] != 0:
            return super()._handle_publish()  # type: ignore[no-any-return]
        try:
            topic = packet[2:end].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()  # type: ignore[no-any-return]
        self._handle_on_message(Publish(topic, bytes(packet[props + 1 :]), mid, qos))  # type: ignore[arg-type]
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)  # type: ignore[no-any-return]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)

    def ack_many(self, mids: Iterable[int]) -> None:
        """PUBACK (MQTT 5, reason Success, no properties) for each QoS 1 message id,
        queued as one write."""
        packet = b"".join(_PUBACK.pack(_PUBACK_CMD, 2, mid) for mid in mids)
        if packet:
            self._packet_queue(_PUBACK_CMD, packet, 0, 0)
