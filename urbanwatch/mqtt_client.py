"""paho's Client with the per-message costs that capped ingest taken out (bench/README.md):
shared by the services that take a high rate of device messages (ingest, the alert engine).

Profiling the worker at 13k readings/s (py-spy) showed paho's network thread spending
most of its time in system calls, not in MQTT: for every incoming message one `select`,
two or three `recv` calls (the fixed header is read a byte at a time), and for every
acknowledgement one `send` to wake the loop plus one more to write 4 bytes. Here:

* reads go through a 64 KiB buffer, and one wake-up handles every complete packet in it;
* the complete QoS 0/1 PUBLISH packets without MQTT 5 properties (what devices send) at
  the front of that buffer are decoded in one loop into `Publish` tuples and handed to
  `on_publishes` as a list: no per-message trip through paho's packet state machine, no
  MQTTMessage (whose Properties object and MQTTMessageInfo with its own
  threading.Condition cost more than the rest of the read), one callback per read;
* anything else (properties, QoS 2, CONNACK, SUBACK, a packet split across reads) takes
  paho's own path, and its messages go to `on_message` (the per-topic matcher is unused);
* `ack_many` acknowledges a committed batch with one write of concatenated PUBACKs.

Everything else, including the protocol handling, stays paho's. These override private
methods, so the paho version is pinned below 3 (pyproject.toml) and tests cover the path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_BUFFER = 64 * 1024
_PUBACK = struct.Struct("!BBH")
_PUBACK_CMD = 0x40
_U16 = struct.Struct("!H")


_PUBLISH = 0x30
_QOS_BITS = 0x06
_DUP_BIT = 0x08


class Publish(NamedTuple):
    """What a consumer needs of an incoming PUBLISH (duck-types paho's MQTTMessage)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool  # the broker sent it before (redelivery after a lost acknowledgement)


class BatchClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rbuf_sock: object = None
        # Called from the network thread with every fast-path PUBLISH of one read, in order.
        self.on_publishes: Callable[[list[Publish]], None] | None = None
        # Why the last connection attempt failed (paho's on_connect_fail does not say).
        self.last_connect_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return rc

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
        """Handle every complete packet of one read, not only one per `select`: the
        fast-path PUBLISHes in one go, whatever else through paho."""
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        fast = self.on_publishes is not None
        if fast and self._in_packet["command"] == 0 and not self._buffered():
            try:
                chunk = super()._sock_recv(READ_BUFFER)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_SUCCESS  # what paho returns for "no data yet"
            except OSError:
                chunk = b""  # paho's own read below meets the error again and reports it
            self._rbuf, self._rpos, self._rbuf_sock = chunk, 0, self._sock
        while True:
            if fast and self._in_packet["command"] == 0 and self._buffered():
                self._take_publishes()  # paho is between packets: the buffer starts one
                if not self._buffered():
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
            rc = super().loop_read(max_packets)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._sock is None or not self._buffered():
                return rc

    def _take_publishes(self) -> None:
        """Decode the complete fast-path PUBLISH packets at the front of the read buffer;
        stop at the first other packet, incomplete packet or anything odd, which paho's own
        reader then takes from the same buffer (and judges, if malformed)."""
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        v5 = self._protocol == mqtt.MQTTv5
        out: list[Publish] = []
        while pos + 2 < end:
            command = buf[pos]
            qos = (command & _QOS_BITS) >> 1
            if command & 0xF0 != _PUBLISH or qos > 1:
                break
            length, shift, i = 0, 0, pos + 1  # Remaining Length: 1 to 4 bytes, 7 bits each
            while i < end and i <= pos + 4:
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if byte < 0x80:
                    break
            else:
                break  # incomplete or over-long: paho's turn
            stop = i + length
            if stop > end or length < 2:
                break
            topic_end = i + 2 + (buf[i] << 8 | buf[i + 1])
            body = topic_end + 2 if qos else topic_end
            if v5:
                if body >= stop or buf[body] != 0:  # MQTT 5 properties present: paho's path
                    break
                body += 1
            if body > stop:
                break
            try:
                topic = buf[i + 2 : topic_end].decode()
            except UnicodeDecodeError:
                break
            mid = buf[topic_end] << 8 | buf[topic_end + 1] if qos else 0
            out.append(Publish(topic, buf[body:stop], mid, qos, bool(command & _DUP_BIT)))
            pos = stop
        if not out:
            return
        self._rpos = pos
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        on_publishes = self.on_publishes
        if on_publishes is not None:
            with self._in_callback_mutex:
                on_publishes(out)
        if not self._manual_ack:
            self.ack_many(p.mid for p in out if p.qos == 1)

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
        dup = bool(self._in_packet["command"] & _DUP_BIT)
        self._handle_on_message(Publish(topic, bytes(packet[props + 1 :]), mid, qos, dup))  # type: ignore[arg-type]
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
