"""``topom-stats-exporter``: Prometheus metrics for a topom product.

A background thread follows ``WatchStats`` and keeps a snapshot of the latest
round (plus slots, proxies and migrations polled at the round cadence); the
HTTP endpoint renders that snapshot and never calls topom. See
``clients/python/README.md`` for every series and where it comes from.
"""

from topom_client.exporter.cli import main

__all__ = ["main"]
