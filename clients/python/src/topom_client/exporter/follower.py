"""The background thread that keeps the snapshot current."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from topom_client import TopomClient, TopomError, records
from topom_client.exporter import fields as info_fields
from topom_client.exporter.snapshot import Counters, SlotActions, Snapshot, Topology

log = logging.getLogger("topom_client.exporter")


class Follower:
    """Follows ``WatchStats`` (re-opening it forever) and, after each round at
    most every ``topology_period`` seconds, polls the topom-level facts.

    ``snapshot`` is always a complete :class:`Snapshot`; readers take it
    without a lock (it is replaced, never changed).
    """

    def __init__(
        self,
        client: TopomClient,
        *,
        topology_period: float = 1.0,
        on_snapshot: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.client = client
        self.topology_period = topology_period
        self._on_snapshot = on_snapshot
        self.snapshot = Snapshot(product="", round=None, topology=None, counters=Counters(),
                                 stream_up=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="topom-follower", daemon=True)
        self._next_poll = 0.0
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.client.close()  # ends the stream
        self._thread.join(timeout=10)

    def _publish(self, snap: Snapshot) -> None:
        self.snapshot = snap
        if self._on_snapshot is not None:
            self._on_snapshot(snap)

    def _on_retry(self, err: TopomError, pause: float) -> None:
        s = self.snapshot
        self._publish(dataclasses.replace(
            s, stream_up=False,
            counters=dataclasses.replace(s.counters, reconnects=s.counters.reconnects + 1)))

    def _run(self) -> None:
        try:
            stream = self.client.watch_stats(
                fields=info_fields.KEPT, retries=None, backoff_max=5.0, on_retry=self._on_retry
            )
            for r in stream:
                if self._stop.is_set():
                    return
                self._publish(self._next(r))
        except BaseException as e:  # noqa: BLE001 - kept for the main thread
            if not self._stop.is_set():
                log.error("the stats follower stopped: %s", e)
                self.error = e

    def _next(self, r: records.StatsRound) -> Snapshot:
        """The snapshot after round ``r``: one publication per round, with the
        topology polled first when due."""
        s = self.snapshot
        c = dataclasses.replace(s.counters, rounds=s.counters.rounds + 1,
                                skipped=s.counters.skipped + r["skipped"])
        topo, product = s.topology, s.product
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self.topology_period
            try:
                topo = poll_topology(self.client)
                product = topo.product
            except TopomError as e:
                log.warning("topology poll failed: %s", e)
                c = dataclasses.replace(c, topology_errors=c.topology_errors + 1)
        return Snapshot(product=product, round=r, topology=topo, counters=c, stream_up=True)


def poll_topology(client: TopomClient) -> Topology:
    """The topom-level facts: three small reads, plus GetStats while slots migrate."""
    ov = client.overview()
    table = client.slots()
    proxies = client.proxies()
    by_target: dict[int, int] = {}
    by_state: dict[str, int] = {}
    for s in table["slots"]:
        if s["action"] is not None and s["target_group"] is not None:
            by_target[s["target_group"]] = by_target.get(s["target_group"], 0) + 1
            by_state[s["action"]] = by_state.get(s["action"], 0) + 1
    progress: list[records.SlotProgress] = []
    if by_state:
        # GetStats carries every server's INFO: only worth it while migrating.
        progress = client.stats()["slot_action"]["progress"]
    return Topology(
        product=ov["product"],
        revision=table["revision"],
        slots_per_group=ov["slots_per_group"],
        actions=SlotActions(by_target=by_target, by_state=by_state),
        progress=progress,
        proxies=proxies,
        polled_at=time.time(),
    )
