"""The load generator: a paced MQTT QoS 1 publisher that sends pre-encoded packets.

Why not `mosquitto_pub -l`: measured here, 20 `mosquitto_pub -l -q 1` processes fed paced
lines cost 34 CPU µs per message (one write and one poll per line), i.e. the load generator
alone would need more than both cores at 60k messages/s. This process encodes every
PUBLISH packet (MQTT 3.1.1, QoS 1, one topic per device or per gateway) before the clock
starts, then writes each 10 ms slice of the schedule with one `sendall`, keeping at most
WINDOW messages unacknowledged; a reader thread counts PUBACKs. Its CPU while pacing is
reported, so its own share of the two cores is visible.

    python -m bench.publisher '<json spec>'   (see bench/ingest_throughput.py)
prints "ready" when the packets are built, then one JSON line with the outcome.
"""

from __future__ import annotations

import resource
import socket
import struct
import sys
import threading
import time

import orjson

from bench import load

TICK_S = 0.01
# Unacknowledged QoS 1 messages allowed in flight; below Mosquitto's max_inflight_messages.
WINDOW = 1000
# The ack reader's pause between reads (its wake-ups were most of the generator's CPU).
ACK_READ_S = 0.001


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


def connect_packet(client_id: str) -> bytes:
    body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id.encode())
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, mid: int, qos: int) -> bytes:
    body = _string(topic) + (struct.pack("!H", mid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


def build(spec: dict) -> tuple[list[bytes], list[int]]:
    """All messages of the run, in send order, and how many readings each carries."""
    prefix, rate, seconds, t0 = spec["prefix"], spec["rate"], spec["seconds"], spec["t0"]
    if spec["mode"] == "device":
        devices = load.device_ids(prefix, spec["devices"])
        per_device = load.per_device_lines(devices, rate, seconds, t0)
        topics = [f"{prefix}/streetlight/{d}/telemetry".encode() for d in devices]
        # interleave devices so each 10 ms slice carries every device's share
        order = [(i, k) for i in range(len(per_device[0])) for k in range(len(devices))]
        return [topics[k] + b"\0" + per_device[k][i][:-1] for i, k in order], [1] * len(order)
    streams = []
    for g in range(spec["gateways"]):
        _, lines = load.gateway_lines(g, prefix, rate, spec["gateways"], seconds, t0)
        topic = f"{prefix}/gateway/gw{g}/telemetry".encode()
        streams.append([topic + b"\0" + line[:-1] for line in lines])
    messages = [s[i] for i in range(len(streams[0])) for s in streams]
    return messages, [load.GATEWAY_BATCH] * len(messages)


def main() -> None:
    spec = orjson.loads(sys.argv[1])
    messages, readings = build(spec)
    qos = spec.get("qos", 1)
    packets = []
    for n, message in enumerate(messages):
        topic, payload = message.split(b"\0", 1)
        packets.append(publish_packet(topic, payload, n % 65535 + 1, qos))
    offsets = [0]
    for p in packets:
        offsets.append(offsets[-1] + len(p))
    buffer = memoryview(b"".join(packets))
    del packets, messages

    sock = socket.create_connection((spec["host"], spec["port"]))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(spec["client_id"]))
    connack = sock.recv(4)
    if connack[:1] != b"\x20" or connack[3:4] != b"\0":
        raise SystemExit(f"broker refused the connection: {connack!r}")
    acked = [0]

    def count_acks() -> None:
        received = 0
        while chunk := sock.recv(1 << 16):
            received += len(chunk)
            acked[0] = received // 4  # a QoS 1 PUBACK is exactly 4 bytes in MQTT 3.1.1
            time.sleep(ACK_READ_S)  # let acks gather: one wake-up per ~40, not per few

    reader = threading.Thread(target=count_acks, daemon=True)
    reader.start()
    print("ready", flush=True)
    sys.stdin.readline()  # "go"

    per_tick = spec["rate"] / readings[0] * TICK_S if readings else 1
    total = len(offsets) - 1
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start, wall, max_lag, tick, sent = time.monotonic(), time.time(), 0.0, 0, 0
    while sent < total:
        due = start + tick * TICK_S
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        else:
            max_lag = max(max_lag, now - due)
        upto = min(total, int((tick + 1) * per_tick))
        while qos and upto - acked[0] > WINDOW:  # the broker is behind: wait, do not burst
            time.sleep(0.001)
            upto = min(upto, acked[0] + WINDOW)
        sock.sendall(buffer[offsets[sent] : offsets[upto]])
        sent, tick = upto, tick + 1
    seconds = time.monotonic() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    deadline = time.monotonic() + 60
    while qos and acked[0] < total and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.shutdown(socket.SHUT_RDWR)  # the reader's recv returns b"" and it ends on its own
    reader.join(timeout=5)
    sock.close()
    out = {
        "messages": total,
        "readings": sum(readings),
        "acked": acked[0] if qos else total,
        "started": wall,
        "seconds": seconds,
        "max_lag_s": max_lag,
        "cpu_s": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
    }
    print(orjson.dumps(out).decode(), flush=True)


if __name__ == "__main__":
    main()
