"""`urbanwatch ingest`: run the MQTT -> database worker."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="run the MQTT -> database ingest worker")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Any) -> int:
    raise NotImplementedError
