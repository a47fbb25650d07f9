"""Routing and delivery of alert notifications (docs/notifications.md)."""
