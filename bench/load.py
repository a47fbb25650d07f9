"""Pre-generated payload lines for the paced publishers: per-device streetlight readings
(one JSON object per MQTT message) and gateway batches (a JSON array of 50 readings).

Every (device_id, ts) is distinct, so nothing counts as a duplicate, and every reading is
valid, so every published reading must end up as a row (the benchmark checks the count).
"""

from __future__ import annotations

from datetime import UTC, datetime

GATEWAY_BATCH = 50
DEVICES_PER_GATEWAY = 500


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def _fields(i: int) -> str:
    """Measurement fields of a lit streetlight, varied a little per reading."""
    power = 80 + (i % 97) / 10
    volts = 225 + (i % 53) / 10
    return (
        f'"power_state":"on","active_power_w":{power:.1f},"supply_voltage_v":{volts:.1f},'
        f'"supply_current_a":{power / volts:.3f},"power_factor":0.97,'
        f'"active_energy_kwh":{1000 + i / 1000:.3f},"rsrp_dbm":-{90 + i % 20}'
    )


def device_ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-sl{k:05d}" for k in range(n)]


def per_device_lines(
    devices: list[str], rate: float, seconds: float, t0: float
) -> list[list[bytes]]:
    """For each device, `rate / len(devices)` readings/s over `seconds`, ts from `t0` on:
    the line due at time t carries ts = t0 + t, so with t0 = the pacer's start, ts is
    the scheduled publish time (used by the latency part)."""
    per_device = rate / len(devices)
    count = int(per_device * seconds)
    out = []
    for k, _ in enumerate(devices):
        out.append(
            [
                f'{{"ts":"{_iso(t0 + i / per_device)}",{_fields(i + k)}}}\n'.encode()
                for i in range(count)
            ]
        )
    return out


def gateway_lines(
    gateway: int, prefix: str, rate: float, gateways: int, seconds: float, t0: float
) -> tuple[list[str], list[bytes]]:
    """One gateway's batches at `rate / gateways` readings/s; returns its devices and lines."""
    devices = [f"{prefix}-gw{gateway}-sl{d:04d}" for d in range(DEVICES_PER_GATEWAY)]
    batches_per_s = rate / gateways / GATEWAY_BATCH
    count = int(batches_per_s * seconds)
    lines = []
    for b in range(count):
        ts = t0 + b / batches_per_s
        elements = [
            f'{{"device_id":"{devices[(b * GATEWAY_BATCH + j) % DEVICES_PER_GATEWAY]}",'
            f'"ts":"{_iso(ts + j * 1e-6)}",{_fields(b + j)}}}'
            for j in range(GATEWAY_BATCH)
        ]
        lines.append(("[" + ",".join(elements) + "]\n").encode())
    return devices, lines
