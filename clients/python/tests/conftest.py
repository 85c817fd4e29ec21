"""Fixtures: a real topom with real redis-servers in groups.

``cluster`` (one per module): topom refreshing stats every 200 ms; group 1 =
a master and a replica following it, group 2 = one master; all 1024 slots
on group 1; known keys in db0 and db3 of group 1's master.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from procs import Redis, Topom, wait_for
from topom_client import TopomClient

#: Short enough that waiting for a round is cheap, long enough for a loaded machine.
STATS_CONFIG = 'stats_refresh_period = "200ms"\n'
KEYS_DB0 = 5
KEYS_DB3 = 2


@dataclass
class Cluster:
    topom: Topom
    master1: Redis
    replica1: Redis
    master2: Redis
    product: str

    @property
    def servers(self) -> list[Redis]:
        return [self.master1, self.replica1, self.master2]

    def by_addr(self, addr: str) -> Redis:
        return next(r for r in self.servers if r.addr == addr)


def start_cluster(workdir: Path, config: str = STATS_CONFIG) -> Cluster:
    topom = Topom(workdir / "topom", config=config)
    rs = [Redis(workdir / f"redis{i}") for i in range(3)]
    m1, r1, m2 = rs
    with TopomClient(topom.addr) as c:
        c.create_group(1)
        c.add_server(1, m1.addr)
        c.add_server(1, r1.addr)
        c.create_group(2)
        c.add_server(2, m2.addr)
        # The replica follows its master by itself (its sync action is queued
        # when it is added).
        c.assign_slots({s: 1 for s in range(1024)})
        product = c.overview()["product"]
    wait_for("the replica's link to its master", lambda: r1.info().get("master_link_status") == "up", 30)
    for i in range(KEYS_DB0):
        m1.command("SET", f"k{i}", "v")
    for i in range(KEYS_DB3):
        # Each command has its own connection, so SELECT would not carry over:
        # write in db0 and MOVE the key to db3.
        m1.command("SET", f"d3-{i}", "v")
        m1.command("MOVE", f"d3-{i}", "3")
    m1.command("CONFIG", "SET", "maxmemory", "104857600")
    # A master streams to a new replica only after its first ACK (up to 1 s
    # after the link is up): wait until the replica has what the master has.
    wait_for(
        "the replica to catch up with its master",
        lambda: r1.info().get("slave_repl_offset") == m1.info().get("master_repl_offset"),
        30,
    )
    return Cluster(topom, m1, r1, m2, product)


def stop_cluster(c: Cluster) -> None:
    try:
        c.topom.stop()
    finally:
        for r in c.servers:
            r.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c
    finally:
        stop_cluster(c)


@pytest.fixture
def client(cluster: Cluster) -> Iterator[TopomClient]:
    with TopomClient(cluster.topom.addr, timeout=30) as c:
        yield c
