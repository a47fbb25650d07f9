"""ingest/client.py's own PUBLISH decoder, fed bytes as the broker sends them, and its
hand-off to paho for everything else, through a real broker."""

from __future__ import annotations

import struct
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.client import IngestClient, Publish
from tests.conftest import wait_for
from urbanwatch.settings import mqtt_host_port


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(
    topic: str | bytes,
    payload: bytes,
    mid: int = 0,
    qos: int = 1,
    props: bytes = b"\0",
    dup: bool = False,
) -> bytes:
    """An MQTT 5 PUBLISH as a broker sends it (props: the encoded property block)."""
    name = topic.encode() if isinstance(topic, str) else topic
    body = struct.pack("!H", len(name)) + name
    if qos:
        body += struct.pack("!H", mid)
    body += props + payload
    return bytes([0x30 | dup << 3 | qos << 1]) + _length(len(body)) + body


@pytest.fixture
def client():
    c = IngestClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[Publish] = []
    c.on_publishes = got.extend
    c._rbuf_sock = c._sock = object()  # what the buffer belongs to; no socket is read here
    c.got = got  # type: ignore[attr-defined]
    yield c
    c._sock = None


def feed(client: IngestClient, data: bytes) -> None:
    client._rbuf, client._rpos = data, 0
    client._take_publishes()


def test_complete_publishes_are_decoded_in_order_and_a_partial_one_is_left(client):
    big = b"x" * 20_000  # a three-byte Remaining Length
    packets = [
        publish_packet("uw/manhole/mh-1/telemetry", b'{"a":1}', mid=1),
        publish_packet("uw/gateway/gw-1/telemetry", big, mid=65535, dup=True),
        publish_packet("uw/manhole/mh-2/status", b"offline", qos=0),
    ]
    tail = publish_packet("uw/manhole/mh-3/telemetry", b'{"b":2}', mid=7)
    data = b"".join(packets) + tail[:5]
    feed(client, data)
    assert client.got == [
        Publish("uw/manhole/mh-1/telemetry", b'{"a":1}', 1, 1, False),
        Publish("uw/gateway/gw-1/telemetry", big, 65535, 1, True),  # a redelivery
        Publish("uw/manhole/mh-2/status", b"offline", 0, 0, False),
    ]
    assert client._rpos == len(data) - 5  # the partial packet stays for paho's reader


@pytest.mark.parametrize(
    "packet",
    [
        publish_packet("t/1", b"{}", mid=3, props=b"\x03\x01\x07"),  # a property: paho's path
        publish_packet("t/1", b"{}", mid=3, qos=2),  # QoS 2 needs paho's state machine
        bytes([0x90, 0x03, 0x00, 0x01, 0x00]),  # a SUBACK
        bytes([0xD0, 0x00]),  # a PINGRESP
        publish_packet(b"t/\xff", b"{}"),  # not UTF-8: paho refuses it
    ],
    ids=["properties", "qos2", "suback", "pingresp", "bad-utf8-topic"],
)
def test_anything_else_stops_the_fast_path_at_that_packet(client, packet):
    first = publish_packet("t/0", b"{}", mid=1)
    feed(client, first + packet + publish_packet("t/2", b"{}", mid=2))
    assert client.got == [Publish("t/0", b"{}", 1, 1, False)]
    assert client._rpos == len(first)


def test_many_publishes_in_one_read_through_a_real_broker(mqtt_url, topic_prefix):
    """Messages with and without properties, interleaved, all arrive once and in order."""
    host, port = mqtt_host_port(mqtt_url)
    received: list[tuple[str, bytes]] = []
    via_paho: list[str] = []
    lock = threading.Lock()
    sub = IngestClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)

    def on_publishes(batch):
        with lock:
            received.extend((p.topic, p.payload) for p in batch)
        sub.ack_many(p.mid for p in batch if p.qos == 1)

    def on_message(client, userdata, msg):
        with lock:
            received.append((msg.topic, msg.payload))
            # a Publish (no properties) when a packet was split across reads
            via_paho.append(getattr(getattr(msg, "properties", None), "ContentType", ""))
        client.ack(msg.mid, msg.qos)

    sub.on_publishes, sub.on_message = on_publishes, on_message
    sub.connect(host, port)
    sub.subscribe(f"{topic_prefix}/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect(host, port)
    pub.loop_start()
    try:
        wait_for(lambda: sub.is_connected(), what="the subscriber")
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        sent = []
        for i in range(2000):
            payload = b'{"i":%d}' % i
            topic = f"{topic_prefix}/t/{i % 7}"
            pub.publish(topic, payload, qos=1, properties=props if i % 100 == 0 else None)
            sent.append((topic, payload))
        wait_for(lambda: len(received) >= len(sent), what="every message")
        assert received == sent
        # the 20 with properties went through paho (first packets of a read may too)
        assert via_paho.count("application/json") == 20
    finally:
        pub.loop_stop()
        pub.disconnect()
        sub.loop_stop()
        sub.disconnect()
