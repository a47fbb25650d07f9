"""The group detectors' parameters (docs/domain.md §3.3, §4.3, §5.5–5.6; [P] where proposed).
`DETECTORS_CONFIG` (JSON, settings field `detectors_config`) overrides any of them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # §4.3 SL_SUPPLY_LOSS escalation: ≥ 3 lamps, or ≥ 50 % of a circuit (at least 2 lamps).
    circuit_min_lamps: int = Field(3, ge=1)
    circuit_min_share: float = Field(0.5, gt=0, le=1)
    # Dark segment: ≥ 2 adjacent lamps out for longer than this (from the start of the fault).
    dark_min_lamps: int = Field(2, ge=2)
    dark_after_s: float = Field(900, ge=0)
    # §5.6 suspected burst: flow anomaly and pressure drop in one DMA within this window; the
    # pressure drop at ≥ 2 points (fewer if the DMA has fewer pressure points).
    burst_window_s: float = Field(1800, gt=0)
    burst_min_pressure_points: int = Field(2, ge=1)
    # §3.3 WL_EVENT: opens at ≥ 15 cm, closes once < 5 cm has held 30 min.
    event_open_cm: float = 15.0
    event_close_cm: float = 5.0
    event_close_after_s: float = Field(1800, ge=0)
    event_update_s: float = Field(300, ge=0)  # live updates of an open event at most this often
    # Storm incident: ends when no episode is open and no gauge has measured rain for this long.
    storm_dry_s: float = Field(3600, ge=0)
    # §5.5 daily MNF rules: `urbanwatch alerts run` evaluates each night this long after its
    # window ends (05:00 local), so the last readings of the night (15-min loggers, late
    # uploads) are in [P].
    daily_delay_s: float = Field(900, ge=0, le=86400)
