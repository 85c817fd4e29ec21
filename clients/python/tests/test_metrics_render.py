"""The exporter's own text rendering against prometheus_client's, on one snapshot
(no processes: the snapshot is built by hand)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from topom_client.exporter.metrics import SnapshotCollector, build, render
from topom_client.exporter.snapshot import Counters, SlotActions, Snapshot, Topology
from topom_client.records import ServerRound, StatsRound

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)


def server(addr: str, group: int, index: int, up: bool = True) -> ServerRound:
    return {
        "group": group, "addr": addr, "index": index, "up": up, "error": "" if up else "refused",
        "timeout": False, "time": NOW, "role": "slave" if index else "master",
        "master_addr": "127.0.0.1:1" if index else "", "master_link_status": "up" if index else "",
        "repl_offset": 10, "lag_bytes": 3 if index else 0, "used_memory": 1000, "maxmemory": 0,
        "ops_per_sec": 0, "connected_clients": 2, "keys_per_db": {0: 5}, "redis_version": "7.0.15",
        "fields": {"total_commands_processed": "42", "mem_fragmentation_ratio": "1.5",
                   "db0": "keys=5,expires=1,avg_ttl=0", "master_host": "127.0.0.1",
                   "master_port": "1", "slave_repl_offset": "7",
                   "slave0": 'ip=127.0.0.1,port=2,state=online,offset=9,lag=0'},
    }


def snapshot() -> Snapshot:
    r: StatsRound = {
        "round": 7, "started_at": NOW, "finished_at": NOW, "skipped": 0, "resumed": False,
        "endpoint": "e",
        "sentinels": [{"addr": "127.0.0.1:26379", "up": True, "error": "", "timeout": False,
                       "time": NOW, "fields": {},
                       "masters": {"p-1": {"ip": "127.0.0.1", "port": "1"}}}],
        "servers": [server("127.0.0.1:1", 1, 0), server("127.0.0.1:2", 1, 1),
                    server('odd"addr\\', 2, 0, up=False)],
    }
    topo = Topology(product="p", revision=9, slots_per_group={0: 24, 1: 1000},
                    actions=SlotActions(by_target={1: 2}, by_state={"migrating": 2}),
                    progress=[{"slot": 3, "keys_moved": 10, "keys_left": 4, "bytes_moved": 0,
                               "keys_per_sec": 0.0, "eta_seconds": None, "error": ""}],
                    proxies=[{"id": 1, "token": "t1", "proxy_addr": "127.0.0.1:19000",
                              "admin_addr": "", "datacenter": "", "version": "", "pid": 1,
                              "hostname": "", "lease_state": "live", "applied_revision": 7,
                              "connected": True, "last_heartbeat": NOW, "last_nack": ""}],
                    polled_at=0.0)
    return Snapshot(product="p", round=r, topology=topo, counters=Counters(rounds=3),
                    stream_up=True)


def samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name != "topom_stats_round_age_seconds"
    }


def test_own_rendering_equals_prometheus_client() -> None:
    snap = snapshot()
    ours = samples(render(build(snap)).decode())
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SnapshotCollector(lambda: snap))
    theirs = samples(generate_latest(reg).decode())
    assert ours == theirs
    assert ("redis_up", (("addr", 'odd"addr\\'), ("group", "2"), ("product", "p")), 0.0) in ours
    assert ("topom_migration_keys_left", (("product", "p"), ("slot", "3")), 4.0) in ours
    assert ("redis_db_keys_expiring",
            (("addr", "127.0.0.1:1"), ("db", "db0"), ("group", "1"), ("product", "p")), 1.0) in ours
    # A server that is down has redis_up only.
    assert not any(n == "redis_memory_used_bytes" and ("addr", 'odd"addr\\') in lb
                   for n, lb, _ in ours)


def test_dashboard_uses_only_exported_series() -> None:
    snap = snapshot()
    names = {f.name for f in build(snap)} | {"topom_stats_round_age_seconds"}
    dash = Path(__file__).resolve().parents[1] / "examples" / "grafana-dashboard.json"
    exprs = [t["expr"] for p in json.loads(dash.read_text())["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(?:redis|topom)_[a-z_]+", e)}
    assert used and used <= names, sorted(used - names)
    assert ("topom_proxy_revision_lag",
            (("addr", "127.0.0.1:19000"), ("product", "p"), ("proxy", "t1")), 2.0) in samples(
        render(build(snap)).decode())
