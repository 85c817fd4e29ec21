"""Smoke tests of the Python client against a real topom server binary.

The binary comes from $TOPOM_BIN, else <repo>/target/debug/topom (build it with
``cargo build --bin topom``); see ``procs.Topom`` for how it is started.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from procs import Topom as Server
from topom_client import Client, topom_pb2

SLOT_COUNT = 1024
CALL_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("topom"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Client]:
    with Client(server.addr) as c:
        grpc.channel_ready_future(c.channel).result(timeout=CALL_TIMEOUT)
        yield c


def test_list_slots(client: Client) -> None:
    resp = client.topom.ListSlots(topom_pb2.ListSlotsRequest(), timeout=CALL_TIMEOUT)
    assert len(resp.mappings) == SLOT_COUNT
    assert len(resp.slots) == SLOT_COUNT
    assert resp.revision >= 1
    assert resp.epoch != ""
    # Both lists are in slot order.
    assert [m.id for m in resp.mappings] == list(range(SLOT_COUNT))
    assert [s.id for s in resp.slots] == list(range(SLOT_COUNT))


def test_list_groups(client: Client) -> None:
    resp = client.topom.ListGroups(topom_pb2.ListGroupsRequest(), timeout=CALL_TIMEOUT)
    ids = [g.id for g in resp.groups]
    assert ids == sorted(ids), "groups are listed in id order"


def test_health_serving(client: Client) -> None:
    stub = health_pb2_grpc.HealthStub(client.channel)
    resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(client: Client) -> None:
    db = ProtoReflectionDescriptorDatabase(client.channel)
    services = set(db.get_services())
    for name in ("topom.v1.Topom", "topom.v1.ProxyControl", "grpc.health.v1.Health"):
        assert name in services, f"{name} not listed by reflection: {sorted(services)}"
    # The served descriptors are complete: methods resolve, with their imports.
    pool = descriptor_pool.DescriptorPool(db)
    method = pool.FindServiceByName("topom.v1.Topom").FindMethodByName("ListSlots")
    assert method.output_type.full_name == "topom.v1.ListSlotsResponse"
    watch = pool.FindServiceByName("topom.v1.ProxyControl").FindMethodByName("WatchSlots")
    assert watch.client_streaming and watch.server_streaming


def test_sigterm_exits_zero(tmp_path: Path) -> None:
    srv = Server(tmp_path)
    try:
        with Client(srv.addr) as c:
            c.topom.ListSlots(topom_pb2.ListSlotsRequest(), timeout=CALL_TIMEOUT)
    finally:
        rc = srv.stop()
    assert rc == 0, f"exit code {rc} after SIGTERM, want 0\n{srv.log_tail()}"
