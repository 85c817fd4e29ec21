"""What a scrape reads: an immutable snapshot, replaced whole by the follower.

The per-server part comes from the ``WatchStats`` stream; the topom-level
part (slots, proxies, migrations) from polls made by the follower thread at
the round cadence. A scrape only reads the latest snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from topom_client import records


@dataclass(frozen=True)
class SlotActions:
    #: target group id -> slots with an action moving there.
    by_target: dict[int, int] = field(default_factory=dict)
    #: action state (``"pending"``, ``"migrating"``, ...) -> slots.
    by_state: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    """The topom-level facts, from GetOverview, ListSlots, ListProxies and,
    while slots migrate, GetStats."""

    product: str
    revision: int
    #: group id -> slots owned (0 = offline).
    slots_per_group: dict[int, int]
    actions: SlotActions
    #: Progress of each migrating slot (GetStats; empty when none migrate).
    progress: list[records.SlotProgress]
    proxies: list[records.ProxyInfo]
    #: When the poll finished (time.time()).
    polled_at: float


@dataclass(frozen=True)
class Counters:
    """Counts over the exporter's life."""

    rounds: int = 0
    skipped: int = 0
    reconnects: int = 0
    topology_errors: int = 0


@dataclass(frozen=True)
class Snapshot:
    product: str
    #: The latest round; None before the first one.
    round: records.StatsRound | None
    #: None before the first successful poll.
    topology: Topology | None
    counters: Counters
    #: True while the stats stream delivers rounds.
    stream_up: bool
