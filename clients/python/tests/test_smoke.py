"""Smoke tests of the Python client against a real topom server binary.

The binary comes from $TOPOM_BIN, else <repo>/target/debug/topom (build it with
``cargo build --bin topom``). It is started as
``topom --listen 127.0.0.1:0 --data-dir <tmp>`` and must print
``LISTENING 127.0.0.1:<port>`` on stdout once it serves, and exit 0 on SIGTERM.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from topom_client import Client, topom_pb2

REPO_ROOT = Path(__file__).resolve().parents[3]
SLOT_COUNT = 1024
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0
LISTENING = re.compile(r"^LISTENING (\S+)$")


def topom_bin() -> Path:
    env = os.environ.get("TOPOM_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "topom"


class Server:
    """One topom process on an ephemeral loopback port."""

    def __init__(self, workdir: Path) -> None:
        binary = topom_bin()
        if not binary.is_file():
            pytest.fail(
                f"topom binary {binary} not found "
                "(build it with `cargo build --bin topom`, or set TOPOM_BIN)"
            )
        data_dir = workdir / "data"
        data_dir.mkdir()
        self.log_path = workdir / "topom.stderr.log"
        self._other_stdout: list[str] = []
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(binary), "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        # Read stdout to EOF in a thread (so the server never blocks on a full
        # pipe); the first LISTENING address goes to the queue, None on EOF.
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, args=(lines,), daemon=True).start()
        try:
            addr = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.kill()
            pytest.fail(f"no LISTENING line on stdout within {START_TIMEOUT}s\n{self.log_tail()}")
        if addr is None:
            try:
                rc: int | str = self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                rc = "none: still running, killed"
            pytest.fail(
                f"topom closed stdout without a LISTENING line (exit code {rc}); "
                f"other stdout lines: {self._other_stdout!r}\n{self.log_tail()}"
            )
        host, _, port = addr.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit() or port == "0":
            self.kill()
            pytest.fail(f"LISTENING line has a bad address {addr!r} (want 127.0.0.1:<port>)")
        self.addr = addr

    def _read_stdout(self, out: queue.Queue[str | None]) -> None:
        assert self.proc.stdout is not None
        sent = False
        for line in self.proc.stdout:
            m = LISTENING.match(line.rstrip("\r\n"))
            if m and not sent:
                out.put(m.group(1))
                sent = True
            elif len(self._other_stdout) < 20:
                self._other_stdout.append(line.rstrip("\r\n"))
        if not sent:
            out.put(None)

    def stop(self) -> int:
        """SIGTERM, then the exit code (the process is killed on a time-out)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"topom did not exit within {STOP_TIMEOUT}s of SIGTERM\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def log_tail(self, limit: int = 8192) -> str:
        try:
            data = self.log_path.read_bytes()[-limit:]
        except OSError as e:
            return f"(no server log: {e})"
        return "topom stderr (tail):\n" + data.decode("utf-8", "replace")


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
