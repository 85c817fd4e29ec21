"""TopomClient.watch_stats (and its asyncio twin) against real topom and redis-server."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from conftest import KEYS_DB0, KEYS_DB3, STATS_CONFIG, Cluster
from procs import Redis, Topom, free_port, wait_for
from topom_client import StatsRound, TopomClient, TopomError
from topom_client.aio import AsyncTopomClient
from topom_client.topom.v1 import topom_pb2
from topom_client.watch import Rounds

ROUND_DEADLINE = 30.0


def round_after(rounds: Iterator[StatsRound], t0: float, want: int | None = None) -> StatsRound:
    """The first round that started after wall time ``t0`` (and, with ``want``,
    that lists that many servers), within the deadline."""
    deadline = time.monotonic() + ROUND_DEADLINE
    for r in rounds:
        assert r["started_at"] is not None
        if r["started_at"].timestamp() > t0 and (want is None or len(r["servers"]) == want):
            return r
        if time.monotonic() > deadline:
            break
    pytest.fail(f"no stats round started after {t0} within {ROUND_DEADLINE}s")


def test_rounds_carry_numbers_matching_info(cluster: Cluster, client: TopomClient) -> None:
    rounds = client.watch_stats()
    try:
        before = {r.addr: r.info() for r in cluster.servers}
        t0 = time.time()
        r = round_after(rounds, t0, want=3)
        after = {x.addr: x.info() for x in cluster.servers}
    finally:
        rounds.close()
    assert r["round"] > 0 and r["skipped"] >= 0 and r["endpoint"] == cluster.topom.addr
    assert r["finished_at"] is not None and r["started_at"] is not None
    assert r["finished_at"] >= r["started_at"]
    by_addr = {s["addr"]: s for s in r["servers"]}
    assert set(by_addr) == {x.addr for x in cluster.servers}
    for addr, s in by_addr.items():
        b, a = before[addr], after[addr]
        assert s["up"] and s["error"] == "" and not s["timeout"], s
        assert s["role"] == a["role"] and s["redis_version"] == a["redis_version"]
        for name in ("used_memory", "connected_clients", "repl_offset", "lag_bytes", "maxmemory"):
            assert type(s[name]) is int, (name, s[name])  # type: ignore[literal-required]
        # The derived numbers are INFO's own, as numbers.
        assert s["used_memory"] == int(s["fields"]["used_memory"])
        assert s["connected_clients"] == int(s["fields"]["connected_clients"])
        # A counter read by topom between our two INFO calls lies between them.
        n = int(s["fields"]["total_commands_processed"])
        assert int(b["total_commands_processed"]) <= n <= int(a["total_commands_processed"])
        assert s["fields"]["run_id"] == a["run_id"]
    m1, r1 = by_addr[cluster.master1.addr], by_addr[cluster.replica1.addr]
    assert m1["group"] == 1 and m1["index"] == 0 and m1["role"] == "master"
    assert m1["keys_per_db"] == {0: KEYS_DB0, 3: KEYS_DB3}
    assert m1["maxmemory"] == 104857600
    assert r1["index"] == 1 and r1["role"] == "slave"
    assert r1["master_addr"] == cluster.master1.addr and r1["master_link_status"] == "up"
    assert r1["lag_bytes"] >= 0 and r1["repl_offset"] > 0
    assert by_addr[cluster.master2.addr]["group"] == 2


def test_filters_narrow_the_rounds(cluster: Cluster, client: TopomClient) -> None:
    t0 = time.time()
    rounds = client.watch_stats(groups=[1], fields=["used_memory", "role"])
    try:
        r = round_after(rounds, t0)
    finally:
        rounds.close()
    assert {s["addr"] for s in r["servers"]} == {cluster.master1.addr, cluster.replica1.addr}
    assert r["sentinels"] == []
    for s in r["servers"]:
        assert set(s["fields"]) == {"used_memory", "role"}
        assert s["used_memory"] == int(s["fields"]["used_memory"])

    rounds = client.watch_stats(addrs=[cluster.master2.addr])
    try:
        r = round_after(rounds, t0)
    finally:
        rounds.close()
    assert [s["addr"] for s in r["servers"]] == [cluster.master2.addr]

    with pytest.raises(TopomError) as e:
        next(client.watch_stats(groups=[77]))
    assert e.value.code == grpc.StatusCode.NOT_FOUND, e.value


def test_reads_and_errors_are_plain_values(cluster: Cluster, client: TopomClient) -> None:
    ov = client.overview()
    assert ov["product"] == cluster.product and ov["group_count"] == 2
    assert ov["slots_per_group"].get(1) == 1024
    table = client.slots()
    assert len(table["slots"]) == 1024 and table["revision"] == ov["revision"]
    assert all(s["group"] == 1 and s["action"] is None for s in table["slots"])
    groups = client.groups()
    assert [g["id"] for g in groups] == [1, 2]
    assert [s["addr"] for s in groups[0]["servers"]] == [cluster.master1.addr, cluster.replica1.addr]
    assert groups[0]["servers"][1]["action"] == "synced", groups[0]["servers"][1]["action_error"]
    assert client.proxies() == [] and isinstance(client.events(), list)
    st = client.stats()
    assert set(st["groups"]) == {1, 2} and st["slot_action"]["progress"] == []
    with pytest.raises(TopomError) as e:
        client.create_group(1)
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS and "1" in e.value.message
    assert e.value.method == "CreateGroup" and e.value.endpoint == cluster.topom.addr


def dead_endpoint() -> str:
    """A loopback address nobody listens on (its listener is closed again)."""
    return f"127.0.0.1:{free_port()}"


def test_the_endpoint_that_answers_is_followed(cluster: Cluster) -> None:
    with TopomClient([dead_endpoint(), cluster.topom.addr], timeout=30) as c:
        assert c.overview()["product"] == cluster.product
        rounds = c.watch_stats(backoff_initial=0.05, backoff_max=0.2)
        try:
            r = next(rounds)
        finally:
            rounds.close()
    assert r["endpoint"] == cluster.topom.addr


def test_down_at_start_gives_up_after_bounded_retries() -> None:
    addr = dead_endpoint()
    retries: list[float] = []
    with TopomClient(addr) as c:
        with pytest.raises(TopomError) as e:
            next(c.watch_stats(retries=3, backoff_initial=0.05, backoff_max=0.1,
                               on_retry=lambda err, pause: retries.append(pause)))
    assert e.value.code == grpc.StatusCode.UNAVAILABLE, e.value
    assert "after 4 attempts" in e.value.message and addr in e.value.message
    assert len(retries) == 3 and all(0.025 <= p <= 0.1 for p in retries), retries


def test_wrong_token_is_unauthenticated(tmp_path: Path) -> None:
    topom = Topom(tmp_path, config=STATS_CONFIG + 'admin_token = "s3cret"\nauth_reads = true\n')
    try:
        with TopomClient(topom.addr, token="wrong") as c:
            retried: list[TopomError] = []
            with pytest.raises(TopomError) as e:
                next(c.watch_stats(backoff_initial=0.05, on_retry=lambda err, _: retried.append(err)))
            assert e.value.code == grpc.StatusCode.UNAUTHENTICATED, e.value
            assert retried == [], "a refused token is not retried"
            with pytest.raises(TopomError) as e2:
                c.overview()
            assert e2.value.code == grpc.StatusCode.UNAUTHENTICATED
        with TopomClient(topom.addr, token="s3cret") as c:
            assert c.create_group(5)["id"] == 5
            rounds = c.watch_stats()
            try:
                assert next(rounds)["round"] > 0
            finally:
                rounds.close()
    finally:
        topom.stop()


def test_restarted_topom_is_resumed(tmp_path: Path) -> None:
    redis = Redis(tmp_path / "redis")
    topom = Topom(tmp_path / "a", config=STATS_CONFIG)
    try:
        with TopomClient(topom.addr) as c:
            c.create_group(1)
            c.add_server(1, redis.addr)
            retries: list[TopomError] = []
            rounds = c.watch_stats(retries=200, backoff_initial=0.05, backoff_max=0.3,
                                   on_retry=lambda err, _: retries.append(err))
            first = round_after(rounds, time.time(), want=1)
            got: queue.Queue[StatsRound | BaseException] = queue.Queue()

            def consume() -> None:
                try:
                    for r in rounds:
                        if r["servers"]:
                            got.put(r)
                            return
                except BaseException as e:  # noqa: BLE001 - handed to the test
                    got.put(e)

            # The generator keeps running while topom is down.
            reader = threading.Thread(target=consume, daemon=True)
            reader.start()
            assert topom.stop() == 0
            wait_for("a failed re-open while topom is down", lambda: len(retries) >= 2, 30)
            # Same address and store: the same topom, restarted.
            topom = Topom(tmp_path / "b", config=STATS_CONFIG, listen=topom.addr,
                          data_dir=topom.data_dir)
            r = got.get(timeout=30)
            reader.join(timeout=30)
            rounds.close()
        assert not isinstance(r, BaseException), r
        assert any(e.code == grpc.StatusCode.UNAVAILABLE for e in retries), retries
        assert r["resumed"] is True and first["resumed"] is False
        assert r["endpoint"] == topom.addr
        assert [s["addr"] for s in r["servers"]] == [redis.addr] and r["servers"][0]["up"]
    finally:
        topom.stop()
        redis.stop()


def test_skipped_and_repeated_rounds() -> None:
    # topom keeps only the latest round for a slow reader; gRPC's flow-control
    # window hides that for small rounds, so the bookkeeping is tested on messages.
    def msg(n: int, started: int) -> topom_pb2.WatchStatsResponse:
        m = topom_pb2.WatchStatsResponse(round=n)
        m.started_at.seconds = started
        return m

    rounds = Rounds()
    rounds.reopened()
    seen = [rounds.accept(msg(n, t), "e") for n, t in ((0, 0), (5, 5), (6, 6), (9, 9))]
    assert seen[0] is None  # no round finished yet
    assert [(r["round"], r["skipped"], r["resumed"]) for r in seen[1:] if r] == [
        (5, 0, False), (6, 0, False), (9, 2, False)]
    rounds.reopened()
    assert rounds.accept(msg(9, 9), "e") is None  # a re-opened stream repeats round 9
    r = rounds.accept(msg(12, 12), "e")
    assert r is not None and (r["skipped"], r["resumed"]) == (2, True)
    rounds.reopened()
    r = rounds.accept(msg(1, 20), "e")  # a restarted topom counts from 1 again
    assert r is not None and (r["round"], r["skipped"], r["resumed"]) == (1, 0, True)


def test_asyncio_client(cluster: Cluster) -> None:
    async def main() -> tuple[str, list[StatsRound]]:
        async with AsyncTopomClient(cluster.topom.addr, timeout=30) as c:
            ov = await c.overview()
            got: list[StatsRound] = []
            async for r in c.watch_stats(groups=[2], fields=["used_memory"]):
                got.append(r)
                if len(got) == 2:
                    break
            with pytest.raises(TopomError) as e:
                await c.create_group(2)
            assert e.value.code == grpc.StatusCode.ALREADY_EXISTS
            return ov["product"], got

    product, got = asyncio.run(main())
    assert product == cluster.product
    assert [len(r["servers"]) for r in got] == [1, 1]
    assert got[1]["round"] > got[0]["round"]
    assert got[1]["servers"][0]["addr"] == cluster.master2.addr
    assert set(got[1]["servers"][0]["fields"]) == {"used_memory"}


def test_asyncio_down_at_start_gives_up_after_bounded_retries() -> None:
    addr = dead_endpoint()
    retries: list[float] = []

    async def main() -> TopomError:
        async with AsyncTopomClient(addr) as c:
            with pytest.raises(TopomError) as e:
                async for _ in c.watch_stats(retries=2, backoff_initial=0.05, backoff_max=0.1,
                                             on_retry=lambda err, pause: retries.append(pause)):
                    pass
            return e.value

    err = asyncio.run(main())
    assert err.code == grpc.StatusCode.UNAVAILABLE and "after 3 attempts" in err.message, err
    assert len(retries) == 2
