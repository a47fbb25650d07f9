"""Ledgers (台账): the facts the plan KPIs count, imported from and exported to CSV / Excel."""
