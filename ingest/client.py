"""ingest's MQTT client: the shared batch-reading paho client (urbanwatch/mqtt_client.py),
moved there so that the alert engine reads the broker the same way."""

from urbanwatch.mqtt_client import BatchClient as IngestClient
from urbanwatch.mqtt_client import Publish

__all__ = ["IngestClient", "Publish"]
