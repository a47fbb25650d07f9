"""Data access, one module per resource: one SQL constant beside one small typed function,
parameters always bound, rows returned as models. Services import the module they need:

    from urbanwatch.queries import devices
    devices.get_device(conn, "MH-000001")

meta          the storage back-end a database uses
devices       the device registry
districts     districts and their class
readings      <kind>_readings: binary COPY layout and writes
dead_letters  what ingest could not store, byte for byte
status        device status messages (heartbeats, last wills)
receipts      which deliveries were stored, so a redelivery stores nothing twice
rollups       the hourly rollups: refresh, settle after bulk loads
"""
