"""A paho MQTT 5 subscriber that only counts (QoS 1, Receive Maximum 65535, auto-ack):
the Python client's own ceiling, before any parsing or database work.

    python -m bench.count_subscriber HOST PORT TOPIC EXPECTED TIMEOUT_S
prints {"count": n, "first": wall time, "last": wall time} once EXPECTED messages arrived
or nothing arrived for TIMEOUT_S seconds.
"""

from __future__ import annotations

import sys
import threading
import time

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def main() -> None:
    host, port, topic, expected, idle = sys.argv[1:6]
    state = {"count": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(topic, qos=1)

    def on_subscribe(*_: object) -> None:
        print("subscribed", flush=True)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if not state["count"]:
            state["first"] = now
        state["count"] += 1
        state["last"] = now
        if state["count"] >= int(expected):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 65535
    client.connect(host, int(port), properties=props)
    client.loop_start()
    seen = -1
    while not done.wait(float(idle)) and state["count"] != seen:
        seen = state["count"]
    client.disconnect()
    client.loop_stop()
    sys.stdout.write(orjson.dumps(state).decode() + "\n")


if __name__ == "__main__":
    main()
