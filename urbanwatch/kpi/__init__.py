"""Plan KPIs: the framework (base.py) and one module per area (manhole, waterlog, hidden, ...)."""
