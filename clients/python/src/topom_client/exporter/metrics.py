"""The metric set, built from a snapshot, and its text exposition.

:func:`build` turns a snapshot into :class:`Family` objects (the one place
that defines every series); :func:`render` writes them in the Prometheus
text format, quickly enough to do once per round for hundreds of servers;
:class:`SnapshotCollector` offers the same families to a
``prometheus_client`` registry, for agents that embed the exporter.
A scrape never calls topom.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from topom_client import records
from topom_client.exporter import fields as info
from topom_client.exporter.snapshot import Snapshot

SERVER_LABELS = ["product", "group", "addr"]


class Family:
    """One metric family: name, type, help, label names and samples."""

    __slots__ = ("name", "kind", "doc", "labels", "samples")

    def __init__(self, name: str, kind: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name = name
        #: "gauge" or "counter"; a counter's name ends in ``_total``.
        self.kind = kind
        self.doc = doc
        self.labels = labels
        self.samples: list[tuple[tuple[str, ...], float]] = []

    def add_metric(self, values: Iterable[str], value: float) -> None:
        self.samples.append((tuple(values), value))


class Families:
    """Families by name, created on first use, in first-use order."""

    def __init__(self) -> None:
        self._by_name: dict[str, Family] = {}

    def _get(self, name: str, kind: str, doc: str, labels: Iterable[str]) -> Family:
        f = self._by_name.get(name)
        if f is None:
            f = self._by_name[name] = Family(name, kind, doc, tuple(labels))
        return f

    def gauge(self, name: str, doc: str, labels: Iterable[str]) -> Family:
        return self._get(name, "gauge", doc, labels)

    def counter(self, name: str, doc: str, labels: Iterable[str]) -> Family:
        return self._get(name, "counter", doc, labels)

    def all(self) -> list[Family]:
        return list(self._by_name.values())


def _server(out: Families, product: str, s: records.ServerRound) -> None:
    base = [product, str(s["group"]), s["addr"]]
    out.gauge("redis_up", "1 when topom's INFO of the server answered in the round.",
              SERVER_LABELS).add_metric(base, 1.0 if s["up"] else 0.0)
    out.gauge("topom_server_index", "Position of the server in its group (0 = master).",
              SERVER_LABELS).add_metric(base, s["index"])
    if not s["up"]:
        return
    f = s["fields"]
    out.gauge("redis_instance_info", "Information about the Redis instance.",
              SERVER_LABELS + ["role", "redis_version"]).add_metric(
        base + [s["role"], s["redis_version"]], 1.0)
    out.gauge("redis_memory_used_bytes", "INFO used_memory.", SERVER_LABELS).add_metric(
        base, s["used_memory"])
    out.gauge("redis_memory_max_bytes", "maxmemory (0 = no limit).", SERVER_LABELS).add_metric(
        base, s["maxmemory"])
    out.gauge("redis_connected_clients", "INFO connected_clients.", SERVER_LABELS).add_metric(
        base, s["connected_clients"])
    for m in info.NUMERIC:
        v = info.number(f.get(m.field))
        if v is None:
            continue
        if m.kind == "counter":
            out.counter(m.name, m.doc, SERVER_LABELS).add_metric(base, v)
        else:
            out.gauge(m.name, m.doc, SERVER_LABELS).add_metric(base, v)
    for db, keys in sorted(s["keys_per_db"].items()):
        out.gauge("redis_db_keys", "Keys per database (INFO keyspace).",
                  SERVER_LABELS + ["db"]).add_metric(base + [f"db{db}"], keys)
        expires = info.number(info.pairs(f.get(f"db{db}", "")).get("expires"))
        if expires is not None:
            out.gauge("redis_db_keys_expiring", "Keys with an expiry per database.",
                      SERVER_LABELS + ["db"]).add_metric(base + [f"db{db}"], expires)
    for line in info.SLAVE_LINES:
        if line not in f:
            continue
        p = info.pairs(f[line])
        labels = base + [p.get("ip", ""), p.get("port", ""), p.get("state", "")]
        slave_labels = SERVER_LABELS + ["slave_ip", "slave_port", "slave_state"]
        offset, lag = info.number(p.get("offset")), info.number(p.get("lag"))
        if offset is not None:
            out.gauge("redis_connected_slave_offset_bytes",
                      "Offset of a connected replica, as its master reports it.",
                      slave_labels).add_metric(labels, offset)
        if lag is not None:
            out.gauge("redis_connected_slave_lag_seconds",
                      "Seconds since a connected replica last acknowledged, as its master reports it.",
                      slave_labels).add_metric(labels, lag)
    if s["role"] == "slave":
        master_labels = SERVER_LABELS + ["master_host", "master_port"]
        ml = base + [f.get("master_host", ""), f.get("master_port", "")]
        out.gauge("redis_master_link_up", "1 when the replica's link to its master is up.",
                  master_labels).add_metric(ml, 1.0 if s["master_link_status"] == "up" else 0.0)
        for field, name, doc in (
            ("slave_repl_offset", "redis_slave_repl_offset", "INFO slave_repl_offset."),
            ("master_sync_in_progress", "redis_master_sync_in_progress",
             "1 while a full sync from the master runs."),
            ("master_last_io_seconds_ago", "redis_master_last_io_seconds_ago",
             "Seconds since the last interaction with the master."),
        ):
            v = info.number(f.get(field))
            if v is not None:
                out.gauge(name, doc, master_labels).add_metric(ml, v)
        out.gauge("topom_replication_lag_bytes",
                  "Bytes a replica is behind its group master's offset in the same round.",
                  SERVER_LABELS).add_metric(base, s["lag_bytes"])


def _sentinels(out: Families, product: str, sentinels: list[records.SentinelRound]) -> None:
    prefix = product + "-"
    for st in sentinels:
        out.gauge("topom_sentinel_up", "1 when topom's probe of the Sentinel answered.",
                  ["product", "sentinel"]).add_metric([product, st["addr"]], 1.0 if st["up"] else 0.0)
        for name, master in sorted(st["masters"].items()):
            gid = name.removeprefix(prefix)
            if not name.startswith(prefix) or not gid.isdigit():
                continue
            addr = f"{master.get('ip', '')}:{master.get('port', '')}"
            out.gauge("topom_sentinel_master_info",
                      "The master of a group as a Sentinel reports it (value 1).",
                      ["product", "group", "addr", "sentinel"]).add_metric(
                [product, gid, addr, st["addr"]], 1.0)


def build(snap: Snapshot) -> list[Family]:
    """Every family of a snapshot, except the per-scrape age."""
    out = Families()
    product = snap.product
    c = snap.counters
    pl = ["product"]
    out.gauge("topom_exporter_stream_up", "1 while the WatchStats stream delivers rounds.",
              pl).add_metric([product], 1.0 if snap.stream_up else 0.0)
    out.counter("topom_exporter_rounds_total", "Stats rounds received.", pl).add_metric(
        [product], c.rounds)
    out.counter("topom_stats_rounds_skipped_total",
                "Rounds missed (gaps in the round number).", pl).add_metric([product], c.skipped)
    out.counter("topom_exporter_stream_reconnects_total", "Times the stream was re-opened.",
                pl).add_metric([product], c.reconnects)
    out.counter("topom_exporter_topology_errors_total",
                "Failed polls of slots, proxies and migrations.", pl).add_metric(
        [product], c.topology_errors)
    r = snap.round
    if r is not None and product:
        out.gauge("topom_stats_round", "Sequence number of the latest round.", pl).add_metric(
            [product], r["round"])
        if r["started_at"] is not None and r["finished_at"] is not None:
            out.gauge("topom_stats_round_duration_seconds", "How long the latest round took.",
                      pl).add_metric(
                [product], (r["finished_at"] - r["started_at"]).total_seconds())
        for s in r["servers"]:
            _server(out, product, s)
        _sentinels(out, product, r["sentinels"])
    t = snap.topology
    if t is not None:
        out.gauge("topom_slot_table_revision", "The current slot-table revision.", pl).add_metric(
            [product], t.revision)
        for gid, n in sorted(t.slots_per_group.items()):
            out.gauge("topom_group_slots", "Slots owned by a group (group 0 = offline).",
                      ["product", "group"]).add_metric([product, str(gid)], n)
        sm = out.gauge("topom_slots_migrating", "Slots with a migration action, by target group.",
                       ["product", "group"])
        for gid, n in sorted(t.actions.by_target.items()):
            sm.add_metric([product, str(gid)], n)
        sa = out.gauge("topom_slot_actions", "Slots with a migration action, by state.",
                       ["product", "state"])
        for state, n in sorted(t.actions.by_state.items()):
            sa.add_metric([product, state], n)
        for p in t.progress:
            slot = [product, str(p["slot"])]
            out.gauge("topom_migration_keys_moved", "Keys of a migrating slot moved so far.",
                      ["product", "slot"]).add_metric(slot, p["keys_moved"])
            out.gauge("topom_migration_keys_left", "Keys of a migrating slot left on the source.",
                      ["product", "slot"]).add_metric(slot, p["keys_left"])
        by_lease: dict[str, int] = {"live": 0, "expired": 0}
        for px in t.proxies:
            by_lease[px["lease_state"]] = by_lease.get(px["lease_state"], 0) + 1
            labels = [product, px["token"], px["proxy_addr"]]
            out.gauge("topom_proxy_revision_lag",
                      "Slot-table revisions a proxy has not applied yet.",
                      ["product", "proxy", "addr"]).add_metric(
                labels, max(0, t.revision - px["applied_revision"]))
            out.gauge("topom_proxy_connected", "1 while the proxy's WatchSlots stream is open.",
                      ["product", "proxy", "addr"]).add_metric(labels, 1.0 if px["connected"] else 0.0)
        pc = out.gauge("topom_proxies", "Registered proxies by lease state.",
                       ["product", "lease_state"])
        for state, n in sorted(by_lease.items()):
            pc.add_metric([product, state], n)
    return out.all()


def _escape(v: str) -> str:
    if "\\" in v or '"' in v or "\n" in v:
        v = v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return v


def _number(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def render(families: Iterable[Family]) -> bytes:
    """The Prometheus text format (version 0.0.4) of ``families``."""
    out: list[str] = []
    # Most label sets (product, group, addr) recur in every family: format each once.
    cache: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
    for f in families:
        doc = f.doc.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {f.name} {doc}\n# TYPE {f.name} {f.kind}\n")
        names = f.labels
        for values, value in f.samples:
            if names:
                key = (names, values)
                labels = cache.get(key)
                if labels is None:
                    labels = cache[key] = ",".join(
                        [f'{n}="{_escape(v)}"' for n, v in zip(names, values)])
                out.append(f"{f.name}{{{labels}}} {_number(value)}\n")
            else:
                out.append(f"{f.name} {_number(value)}\n")
    return "".join(out).encode()


def age_family(snap: Snapshot, now: float) -> Family | None:
    """``topom_stats_round_age_seconds``: the one series computed per scrape."""
    r = snap.round
    if r is None or r["finished_at"] is None or not snap.product:
        return None
    f = Family("topom_stats_round_age_seconds", "gauge",
               "Seconds since the latest round ended (at scrape time).", ("product",))
    f.add_metric([snap.product], max(0.0, now - r["finished_at"].timestamp()))
    return f


class SnapshotCollector:
    """A ``prometheus_client`` collector over ``snapshot()``.

    For agents that serve their own registry::

        registry.register(SnapshotCollector(lambda: follower.snapshot))

    The families of a snapshot are built once and reused until it changes.
    """

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._built_for: Snapshot | None = None
        self._built: list[Family] = []

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        with self._lock:
            if snap is not self._built_for:
                self._built, self._built_for = build(snap), snap
            built = list(self._built)
        age = age_family(snap, time.time())
        if age is not None:
            built.append(age)
        for f in built:
            m: GaugeMetricFamily | CounterMetricFamily
            if f.kind == "counter":
                m = CounterMetricFamily(f.name, f.doc, labels=f.labels)
            else:
                m = GaugeMetricFamily(f.name, f.doc, labels=f.labels)
            for values, value in f.samples:
                m.add_metric(values, value)
            yield m
