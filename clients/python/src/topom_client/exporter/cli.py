"""Command line of ``topom-stats-exporter``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from types import FrameType

from topom_client import TopomClient, TopomError
from topom_client.exporter.follower import Follower
from topom_client.exporter.http import MetricsPage, serve

log = logging.getLogger("topom_client.exporter")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="topom-stats-exporter",
        description="Serve Prometheus metrics (redis_exporter names) from topom's WatchStats stream.",
    )
    p.add_argument("--topom", metavar="ADDR[,ADDR...]",
                   help="topom gRPC endpoint(s), every instance; the leader is followed "
                        "(default: env TOPOM_ADDR)")
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:9121",
                   help="where to serve /metrics (default %(default)s)")
    p.add_argument("--token", default=None,
                   help="topom admin token (needed when topom has auth_reads); env TOPOM_TOKEN")
    p.add_argument("--tls", action="store_true", help="connect to topom with TLS (system roots)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON line per round on stdout instead of serving")
    p.add_argument("--topology-period", type=float, default=1.0, metavar="SECONDS",
                   help="poll slots, proxies and migrations at most this often (default %(default)s)")
    p.add_argument("--log-level", default="INFO", help="logging level (default %(default)s)")
    return p.parse_args(argv)


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad --listen {listen!r}: want HOST:PORT (port 0 picks a free one)")
    return host.strip("[]") or "0.0.0.0", int(port)


def _json_default(v: object) -> object:
    if isinstance(v, datetime):
        return v.isoformat()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_json(client: TopomClient) -> int:
    """One JSON object per round on stdout, until interrupted."""
    for r in client.watch_stats(retries=None):
        sys.stdout.write(json.dumps(r, default=_json_default, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    return 0


def run_server(client: TopomClient, listen: str, topology_period: float) -> int:
    host, port = split_listen(listen)
    # The follower thread holds the GIL for tens of ms per round (decoding and
    # rendering hundreds of servers); a short switch interval lets a scrape in
    # between instead of waiting out 5 ms slices.
    sys.setswitchinterval(0.0005)
    page: MetricsPage | None = None
    follower = Follower(client, topology_period=topology_period,
                        on_snapshot=lambda snap: page.update(snap) if page else None)
    page = MetricsPage(follower.snapshot)
    server, thread = serve(page, host, port)
    # Tests and scripts read this line to learn the port (with --listen ...:0).
    print(f"LISTENING {host}:{server.server_port}", flush=True)
    follower.start()
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not done.wait(1.0):
        if follower.error is not None:
            break
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    follower.stop()
    if follower.error is not None:
        log.error("exiting: %s", follower.error)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = args.token if args.token is not None else os.environ.get("TOPOM_TOKEN") or None
    try:
        client = TopomClient(args.topom, token=token, tls=True if args.tls else None)
        if args.json:
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                return run_json(client)
            except KeyboardInterrupt:
                return 0
            finally:
                client.close()
        return run_server(client, args.listen, args.topology_period)
    except (ValueError, OSError) as e:
        print(f"topom-stats-exporter: {e}", file=sys.stderr)
        return 2
    except TopomError as e:
        print(f"topom-stats-exporter: {e}", file=sys.stderr)
        return 1
