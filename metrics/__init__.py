"""Prometheus metrics at /metrics, computed from the database at each scrape."""
