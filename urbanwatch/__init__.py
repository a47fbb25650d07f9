"""urbanwatch: the shared package (settings, models, schema, queries) every service imports."""

__version__ = "0.1.0"
