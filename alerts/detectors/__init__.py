"""The group detectors `urbanwatch alerts run` uses by default (docs/alerts.md "Group
detectors"): circuits and dark segments (lighting), suspected bursts (water), flooding
episodes and storm incidents (waterlogging). The daily MNF rules are `urbanwatch alerts
daily` (alerts/detectors/daily.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from pydantic import ValidationError

from alerts.detectors.common import Site, Topology
from alerts.detectors.config import DetectorConfig
from alerts.detectors.lighting import LightingDetector
from alerts.detectors.water import BurstDetector
from alerts.detectors.waterlog import WaterlogDetector
from alerts.groups import GroupDetector
from urbanwatch import db
from urbanwatch.errors import UsageError
from urbanwatch.queries import detectors as detector_queries
from urbanwatch.settings import Settings

__all__ = [
    "DetectorConfig",
    "Site",
    "Topology",
    "build_detectors",
    "default_detectors",
    "load_detectors",
]


Detector = LightingDetector | BurstDetector | WaterlogDetector


def build_detectors(sites: Iterable[Site], config: DetectorConfig | None = None) -> list[Detector]:
    top = Topology.from_sites(sites)
    cfg = config or DetectorConfig()
    return [LightingDetector(top, cfg), BurstDetector(top, cfg), WaterlogDetector(top, cfg)]


def load_detectors(
    conn: psycopg.Connection, config: DetectorConfig | None = None
) -> list[Detector]:
    """The default detectors over the registry, seeded from the unresolved alerts of a
    previous run (a restarted engine carries on with open circuits, bursts and episodes)."""
    places = detector_queries.ledger_places(conn)
    sites = []
    for d, k, district, lat, lon, attrs in detector_queries.sites(conn):
        attrs = dict(attrs or {})
        if d in places:  # the lighting ledger's segment and position win
            attrs["segment"], attrs["position"] = places[d]
        sites.append(Site(d, k, district, lat, lon, attrs))
    detectors = build_detectors(sites, config)
    for detector in detectors:
        detector.restore(detector_queries.unresolved(conn, list(detector.RULES)))
    conn.commit()
    return detectors


def parse_config(data: Any) -> DetectorConfig:
    """DETECTORS_CONFIG, or a one-line refusal naming the field."""
    try:
        return DetectorConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(the whole value)"
        raise UsageError(f"DETECTORS_CONFIG: {where}: {first['msg']}") from None


def default_detectors(settings: Settings) -> Sequence[GroupDetector]:
    """What `urbanwatch alerts run` plugs into its engine."""
    config = parse_config(settings.detectors_config)
    with db.connect(settings.database_url) as conn:
        return load_detectors(conn, config)
