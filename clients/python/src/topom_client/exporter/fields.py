"""The INFO fields the exporter keeps, and the redis_exporter metric each
becomes. Only these fields travel on the exporter's stream (the
``WatchStats`` field filter), which keeps a round of 256 servers small."""

from __future__ import annotations

from typing import NamedTuple


class InfoMetric(NamedTuple):
    field: str
    name: str
    #: ``"gauge"`` or ``"counter"`` (a counter's name ends in ``_total``).
    kind: str
    doc: str


#: INFO field -> metric, one number each, names as redis_exporter has them.
NUMERIC: tuple[InfoMetric, ...] = (
    InfoMetric("total_commands_processed", "redis_commands_processed_total", "counter",
               "Commands processed (INFO total_commands_processed)."),
    InfoMetric("master_repl_offset", "redis_master_repl_offset", "gauge",
               "The replication offset of the server's own stream (INFO master_repl_offset)."),
    InfoMetric("connected_slaves", "redis_connected_slaves", "gauge",
               "Replicas connected (INFO connected_slaves)."),
    InfoMetric("blocked_clients", "redis_blocked_clients", "gauge",
               "Clients blocked on a blocking call (INFO blocked_clients)."),
    InfoMetric("used_memory_rss", "redis_memory_used_rss_bytes", "gauge",
               "Resident memory (INFO used_memory_rss)."),
    InfoMetric("used_memory_peak", "redis_memory_used_peak_bytes", "gauge",
               "Peak used memory (INFO used_memory_peak)."),
    InfoMetric("mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", "gauge",
               "INFO mem_fragmentation_ratio."),
    InfoMetric("uptime_in_seconds", "redis_uptime_in_seconds", "gauge",
               "INFO uptime_in_seconds."),
    InfoMetric("total_connections_received", "redis_connections_received_total", "counter",
               "Connections accepted (INFO total_connections_received)."),
    InfoMetric("rejected_connections", "redis_rejected_connections_total", "counter",
               "Connections rejected (INFO rejected_connections)."),
    InfoMetric("total_net_input_bytes", "redis_net_input_bytes_total", "counter",
               "INFO total_net_input_bytes."),
    InfoMetric("total_net_output_bytes", "redis_net_output_bytes_total", "counter",
               "INFO total_net_output_bytes."),
    InfoMetric("keyspace_hits", "redis_keyspace_hits_total", "counter", "INFO keyspace_hits."),
    InfoMetric("keyspace_misses", "redis_keyspace_misses_total", "counter",
               "INFO keyspace_misses."),
    InfoMetric("expired_keys", "redis_expired_keys_total", "counter", "INFO expired_keys."),
    InfoMetric("evicted_keys", "redis_evicted_keys_total", "counter", "INFO evicted_keys."),
    InfoMetric("used_cpu_sys", "redis_cpu_sys_seconds_total", "counter",
               "System CPU seconds (INFO used_cpu_sys)."),
    InfoMetric("used_cpu_user", "redis_cpu_user_seconds_total", "counter",
               "User CPU seconds (INFO used_cpu_user)."),
)

#: Replica lines (``slaveN: ip=..,port=..,state=..,offset=..,lag=..``) and
#: database lines (``dbN: keys=..,expires=..``) are listed by number: the
#: filter matches names exactly, so the first 16 of each are kept.
SLAVE_LINES = tuple(f"slave{i}" for i in range(16))
DB_LINES = tuple(f"db{i}" for i in range(16))

#: Replica-side fields: offset and sync state.
REPLICA = ("slave_repl_offset", "master_host", "master_port", "master_sync_in_progress",
           "master_last_io_seconds_ago")

#: Every field the exporter asks the stream for.
KEPT: tuple[str, ...] = (
    tuple(m.field for m in NUMERIC) + SLAVE_LINES + DB_LINES + REPLICA
)


def number(value: str | None) -> float | None:
    """An INFO value as a number; None when absent or not numeric."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def pairs(value: str) -> dict[str, str]:
    """``"ip=127.0.0.1,port=6380,state=online"`` -> a dict."""
    out: dict[str, str] = {}
    for part in value.split(","):
        k, sep, v = part.partition("=")
        if sep:
            out[k] = v
    return out
