"""The clients over several endpoints: following the leader a standby names,
skipping dead endpoints, never re-sending a mutation whose outcome is
unknown. Against fake instances (``fake_topom``) and, last, a real topom.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from fake_topom import Fakes
from procs import Topom, free_port
from topom_client import TopomClient, TopomError
from topom_client.aio import AsyncTopomClient


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    f = Fakes()
    try:
        yield f
    finally:
        f.close()


def dead() -> str:
    """A loopback endpoint nobody listens on."""
    return f"127.0.0.1:{free_port()}"


def test_a_mutation_follows_the_leader_a_standby_names(fakes: Fakes) -> None:
    leader = fakes.start("leader")
    standby = fakes.start("standby", leader=leader.addr)
    # The leader is not in the list: it is learned from the trailer.
    with TopomClient(standby.addr, timeout=10) as c:
        c.create_group(1)
        assert c.endpoints == [standby.addr, leader.addr]
        c.overview()  # the next call starts at the leader
    assert standby.calls == ["CreateGroup"]
    assert leader.calls == ["CreateGroup", "GetOverview"]


def test_asyncio_follows_the_leader_too(fakes: Fakes) -> None:
    leader = fakes.start("leader")
    standby = fakes.start("standby", leader=leader.addr)

    async def main() -> None:
        async with AsyncTopomClient(f"{dead()},{standby.addr}", timeout=10) as c:
            await c.create_group(1)

    asyncio.run(main())
    assert standby.calls == ["CreateGroup"]
    assert leader.calls == ["CreateGroup"]


def test_a_standby_naming_nobody_passes_a_mutation_on(fakes: Fakes) -> None:
    electing = fakes.start("electing")
    leader = fakes.start("leader")
    with TopomClient([electing.addr, leader.addr], timeout=10) as c:
        c.create_group(1)
    assert electing.calls == ["CreateGroup"]
    assert leader.calls == ["CreateGroup"]


def test_a_dead_endpoint_is_skipped_even_for_a_mutation(fakes: Fakes) -> None:
    leader = fakes.start("leader")
    with TopomClient([dead(), leader.addr], timeout=10) as c:
        c.create_group(1)
    assert leader.calls == ["CreateGroup"]


def test_topom_addr_is_read_when_no_endpoint_is_given(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = fakes.start("leader")
    monkeypatch.setenv("TOPOM_ADDR", f"{dead()},{leader.addr}")
    with TopomClient(timeout=10) as c:
        c.overview()
    assert leader.calls == ["GetOverview"]
    monkeypatch.setenv("TOPOM_ADDR", " ")
    with pytest.raises(ValueError, match="TOPOM_ADDR"):
        TopomClient()


def test_when_all_fail_the_error_names_every_endpoint(fakes: Fakes) -> None:
    d1, d2, d3 = dead(), dead(), dead()
    # The standby names a leader that is down too: four endpoints in all.
    standby = fakes.start("standby", leader=d3)
    with TopomClient([d1, standby.addr, d2], timeout=10) as c:
        with pytest.raises(TopomError) as info:
            c.slots()
    err = info.value
    assert err.code == grpc.StatusCode.UNAVAILABLE
    assert err.message.startswith("no topom endpoint could serve ListSlots; tried "), err.message
    for a in (d1, standby.addr, d2, d3):
        assert f"{a} (UNAVAILABLE" in err.message, (a, err.message)
    # One pass: the standby was asked once.
    assert standby.calls == ["ListSlots"]


def test_a_mutation_without_an_answer_is_not_resent(fakes: Fakes) -> None:
    hang = fakes.start("hang")
    leader = fakes.start("leader")
    with TopomClient([hang.addr, leader.addr], timeout=1) as c:
        with pytest.raises(TopomError) as info:
            c.create_group(1)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "not retried" in info.value.message and hang.addr in info.value.message
    assert hang.calls == ["CreateGroup"]
    assert leader.calls == [], "re-sent"


def test_a_mutation_cut_mid_call_is_not_resent_but_a_read_is(fakes: Fakes) -> None:
    cut = fakes.start("cut")
    leader = fakes.start("leader")
    with TopomClient([cut.addr, leader.addr], timeout=10) as c:
        with pytest.raises(TopomError) as info:
            c.create_group(1)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert "not retried" in info.value.message, info.value.message
        assert leader.calls == [], "re-sent"
    # A read changes nothing: it goes on to the next endpoint. (A new client,
    # so that the read is cut mid-call too, not refused by a channel still
    # reconnecting.)
    with TopomClient([cut.addr, leader.addr], timeout=10) as c:
        c.overview()
    assert cut.calls == ["CreateGroup", "GetOverview"]
    assert leader.calls == ["GetOverview"]


@pytest.mark.parametrize("flavour", ["sync", "asyncio"])
def test_a_stats_stream_opens_on_the_leader_at_once(fakes: Fakes, flavour: str) -> None:
    leader = fakes.start("leader")
    standby = fakes.start("standby", leader=leader.addr)
    pauses: list[float] = []

    def on_retry(err: TopomError, pause: float) -> None:
        pauses.append(pause)

    if flavour == "sync":
        with TopomClient(standby.addr) as c:
            gen = c.watch_stats(on_retry=on_retry)
            r = next(gen)
            gen.close()
    else:
        async def main() -> object:
            async with AsyncTopomClient(standby.addr) as c:
                agen = c.watch_stats(on_retry=on_retry)
                first = await agen.__anext__()
                await agen.aclose()
                return first

        r = asyncio.run(main())  # type: ignore[assignment]
    assert r["endpoint"] == leader.addr and r["round"] == 1
    # The redirect is followed without a backoff pause.
    assert pauses == [0.0]
    assert standby.calls == ["WatchStats"] and leader.calls == ["WatchStats"]


def test_a_dead_first_endpoint_then_a_real_topom(tmp_path: Path) -> None:
    srv = Topom(tmp_path)
    try:
        # A mutation first (a read would settle the client on the live one).
        with TopomClient(f"{dead()},{srv.addr}", timeout=30) as c:
            c.create_group(5)
        with TopomClient(f"{dead()},{srv.addr}", timeout=30) as c:
            assert len(c.slots()["slots"]) == 1024
            assert [g["id"] for g in c.groups()] == [5]
    finally:
        srv.stop()


def test_overview_names_the_role_leader_and_instances() -> None:
    from topom_client import convert
    from topom_client.topom.v1 import topom_pb2

    r = topom_pb2.GetOverviewResponse(
        role=topom_pb2.INSTANCE_ROLE_STANDBY, leader_addr="10.0.0.1:18080",
        instances=[
            topom_pb2.TopomInstance(addr="10.0.0.1:18080", role=topom_pb2.INSTANCE_ROLE_LEADER, pid=41),
            topom_pb2.TopomInstance(addr="10.0.0.2:18080", role=topom_pb2.INSTANCE_ROLE_STANDBY, pid=42),
        ],
    )
    r.instances[0].leader_since.FromSeconds(2_000)
    ov = convert.overview(r)
    assert ov["role"] == "standby" and ov["leader"] == "10.0.0.1:18080"
    assert [(i["addr"], i["role"], i["pid"]) for i in ov["instances"]] == [
        ("10.0.0.1:18080", "leader", 41), ("10.0.0.2:18080", "standby", 42),
    ]
    assert ov["instances"][0]["leader_since"] is not None
    assert ov["instances"][1]["leader_since"] is None and ov["instances"][1]["started"] is None
