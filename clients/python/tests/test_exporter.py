"""topom-stats-exporter against real topom and redis-server: scrape /metrics
over HTTP and compare with the servers' own INFO."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import KEYS_DB0, KEYS_DB3, Cluster
from procs import Exporter, Redis, Sentinel, wait_for
from topom_client import TopomClient

Samples = dict[str, list[tuple[dict[str, str], float]]]
DEADLINE = 30.0


def parse(text: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    got = [v for lb, v in samples.get(name, []) if all(lb.get(k) == x for k, x in labels.items())]
    assert len(got) == 1, f"{name}{labels}: {len(got)} samples in {samples.get(name)}"
    return got[0]


@pytest.fixture(scope="module")
def exporter(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    e = Exporter(tmp_path_factory.mktemp("exporter"), "--topom", cluster.topom.addr,
                 "--listen", "127.0.0.1:0", "--topology-period", "0.2")
    e.wait_listening()
    try:
        yield e
    finally:
        assert e.stop() == 0, e.log_tail()


def scrape_after(e: Exporter, round_no: float, cond: str = "") -> Samples:
    """The first scrape whose round is past ``round_no`` (and that has ``cond``)."""

    def ok() -> Samples | None:
        s = parse(e.scrape())
        rounds = s.get("topom_stats_round", [])
        if rounds and rounds[0][1] > round_no and (not cond or cond in s):
            return s
        return None

    got = wait_for(f"a scrape past round {round_no}", ok, DEADLINE, step=0.05)
    assert isinstance(got, dict)
    return got


def current_round(cluster: Cluster) -> int:
    with TopomClient(cluster.topom.addr) as c:
        return c.stats()["round"]


def test_metrics_match_info(cluster: Cluster, exporter: Exporter) -> None:
    before = {r.addr: r.info() for r in cluster.servers}
    # Rounds after this one started after our INFO calls.
    n = current_round(cluster)
    s = scrape_after(exporter, n, cond="topom_group_slots")
    after = {r.addr: r.info() for r in cluster.servers}
    p = cluster.product
    for r in cluster.servers:
        gid = "2" if r is cluster.master2 else "1"
        lb = {"product": p, "group": gid, "addr": r.addr}
        a, b = after[r.addr], before[r.addr]
        assert value(s, "redis_up", **lb) == 1
        assert value(s, "redis_instance_info", role=a["role"], redis_version=a["redis_version"], **lb) == 1
        cmds = value(s, "redis_commands_processed_total", **lb)
        assert int(b["total_commands_processed"]) <= cmds <= int(a["total_commands_processed"])
        assert value(s, "redis_connected_clients", **lb) >= 1
        assert value(s, "redis_memory_used_bytes", **lb) > 0
        assert value(s, "redis_uptime_in_seconds", **lb) <= int(a["uptime_in_seconds"])
    m1 = {"product": p, "group": "1", "addr": cluster.master1.addr}
    r1 = {"product": p, "group": "1", "addr": cluster.replica1.addr}
    assert value(s, "redis_memory_max_bytes", **m1) == 104857600
    assert value(s, "redis_db_keys", db="db0", **m1) == KEYS_DB0
    assert value(s, "redis_db_keys", db="db3", **m1) == KEYS_DB3
    assert value(s, "redis_master_link_up", master_host="127.0.0.1",
                 master_port=str(cluster.master1.port), **r1) == 1
    assert value(s, "topom_replication_lag_bytes", **r1) >= 0
    # The master's view of its replica, labelled as redis_exporter does.
    off = value(s, "redis_connected_slave_offset_bytes", slave_ip="127.0.0.1",
                slave_port=str(cluster.replica1.port), slave_state="online", **m1)
    # The replica acks once a second, so right after its sync this may still be 0.
    assert 0 <= off <= int(after[cluster.master1.addr]["master_repl_offset"])
    assert value(s, "redis_master_repl_offset", **m1) >= off
    assert value(s, "topom_server_index", **r1) == 1
    # topom-level series.
    assert value(s, "topom_group_slots", product=p, group="1") == 1024
    assert value(s, "topom_proxies", product=p, lease_state="live") == 0
    assert value(s, "topom_exporter_stream_up", product=p) == 1
    assert value(s, "topom_stats_round_duration_seconds", product=p) >= 0
    assert 0 <= value(s, "topom_stats_round_age_seconds", product=p) < DEADLINE
    assert value(s, "topom_slot_table_revision", product=p) >= 1


def test_a_server_going_down_turns_redis_up_to_zero(
    cluster: Cluster, exporter: Exporter, tmp_path: Path
) -> None:
    extra = Redis(tmp_path / "redis")
    try:
        with TopomClient(cluster.topom.addr) as c:
            c.create_group(3)
            c.add_server(3, extra.addr)
        lb = {"product": cluster.product, "group": "3", "addr": extra.addr}
        s = scrape_after(exporter, current_round(cluster) + 1)
        assert value(s, "redis_up", **lb) == 1
        extra.stop()
        n = current_round(cluster)
        # Round n + 2 started after the kill (n + 1 may have started before it).
        s = scrape_after(exporter, n + 1)
        assert value(s, "redis_up", **lb) == 0
        assert f'redis_memory_used_bytes{{addr="{extra.addr}"' not in exporter.scrape()
    finally:
        extra.stop()
        with TopomClient(cluster.topom.addr) as c:
            c.delete_server(3, extra.addr)
            c.remove_group(3)


def test_json_mode_prints_one_line_per_round(cluster: Cluster, tmp_path: Path) -> None:
    e = Exporter(tmp_path, "--topom", cluster.topom.addr, "--json")
    try:
        a, b = json.loads(e.line()), json.loads(e.line())
    finally:
        assert e.stop() == 0, e.log_tail()
    assert b["round"] > a["round"] and b["skipped"] == b["round"] - a["round"] - 1
    addrs = {s["addr"] for s in b["servers"]}
    assert {r.addr for r in cluster.servers} <= addrs
    m1 = next(s for s in b["servers"] if s["addr"] == cluster.master1.addr)
    assert m1["keys_per_db"] == {"0": KEYS_DB0, "3": KEYS_DB3} and m1["up"] is True
    assert isinstance(m1["used_memory"], int) and isinstance(b["started_at"], str)


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    e = Exporter(tmp_path, "--topom", "nonsense", "--listen", "127.0.0.1:0")
    rc = e.proc.wait(timeout=30)
    assert rc == 2 and "bad topom endpoint 'nonsense'" in e.log_path.read_text()


def test_sentinel_reported_masters(cluster: Cluster, exporter: Exporter, tmp_path: Path) -> None:
    sentinel = Sentinel(tmp_path)
    try:
        with TopomClient(cluster.topom.addr, timeout=30) as c:
            c.add_sentinel(sentinel.addr)
            c.resync_sentinels()
        n = current_round(cluster)
        s = scrape_after(exporter, n + 1, cond="topom_sentinel_master_info")
        p = cluster.product
        assert value(s, "topom_sentinel_up", product=p, sentinel=sentinel.addr) == 1
        for gid, master in (("1", cluster.master1), ("2", cluster.master2)):
            assert value(s, "topom_sentinel_master_info", product=p, group=gid,
                         addr=master.addr, sentinel=sentinel.addr) == 1
    finally:
        with TopomClient(cluster.topom.addr, timeout=30) as c:
            c.remove_sentinel(sentinel.addr, force=True)
        sentinel.stop()
