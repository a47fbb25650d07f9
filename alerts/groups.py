"""Group detectors: where alerts about several devices plug into the engine.

A detector sees every evaluated reading and every per-device transition of the engine's
devices, and answers with group changes (`urbanwatch.queries.alerts.Change` with a group
subject: a circuit, a road segment, a DMA, a storm). The engine writes them in the same
transaction as the per-device changes; a group change may name `children` to put under it
(`parent_id`) and `suppress_children` to inhibit their notifications while it is open.
Circuit supply loss, dark segments, suspected bursts, the daily MNF, WL_EVENT and storm
incidents are detectors of this shape (docs/alerts.md "Group detectors").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from urbanwatch.alerting import Device, Transition
from urbanwatch.queries.alerts import Change


class GroupDetector(Protocol):
    def on_reading(self, device: Device, fields: Mapping[str, Any], ts: float) -> list[Change]:
        """Called for every reading the engine evaluated (in timestamp order per device)."""
        ...

    def on_transition(self, transition: Transition) -> list[Change]:
        """Called for every per-device alert transition, after it was decided."""
        ...
