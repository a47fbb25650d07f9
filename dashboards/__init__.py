"""Grafana dashboards as code (docs/roadmap.md, Dashboards). Not built yet; this package only
reserves the place in the layout. Panels will read the `<kind>_district_hourly` and
`<kind>_hourly` rollups (docs/architecture.md)."""
