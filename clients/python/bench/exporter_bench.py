"""Benchmark: one topom-stats-exporter following N real redis-servers.

Starts N redis-servers (no persistence) on loopback, a topom (stats every
second) with them in groups of two (master + replica), and the exporter.
Then measures the exporter's CPU (from /proc/<pid>/stat) and RSS while it
follows the stream, and the latency of GET /metrics over many scrapes.
Prints the figures; asserts nothing. Everything it starts is stopped by pid.

    TOPOM_BIN=/abs/topom python bench/exporter_bench.py [--servers 256] [--seconds 30] [--scrapes 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests")]

from procs import Exporter, Redis, Topom  # noqa: E402
from topom_client import TopomClient  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exporter-bench-"))
    redis: list[Redis] = []
    topom: Topom | None = None
    exporter: Exporter | None = None
    try:
        t = time.monotonic()
        for i in range(args.servers):
            redis.append(Redis(work / f"redis{i}"))
        print(f"started {len(redis)} redis-servers in {time.monotonic() - t:.1f} s", flush=True)
        topom = Topom(work / "topom", config='stats_refresh_period = "1s"\n')
        with TopomClient(topom.addr, timeout=60) as c:
            pairs = [redis[i:i + 2] for i in range(0, len(redis), 2)]
            for gid, pair in enumerate(pairs, start=1):
                c.create_group(gid)
                for r in pair:
                    c.add_server(gid, r.addr)
            # Each second server is a replica and follows its master by itself.
            c.assign_slots({s: 1 + s % len(pairs) for s in range(1024)})
        deadline = time.monotonic() + 120
        replicas = [r for p in pairs for r in p[1:]]
        while time.monotonic() < deadline:
            linked = sum(r.info().get("master_link_status") == "up" for r in replicas)
            if linked == len(replicas):
                break
            time.sleep(1)
        print(f"{linked}/{len(replicas)} replicas linked; {len(pairs)} groups", flush=True)

        exporter = Exporter(work / "exporter", "--topom", topom.addr, "--listen", "127.0.0.1:0")
        exporter.wait_listening()
        url = f"http://{exporter.addr}/metrics"
        t = time.monotonic()
        while True:
            body = urllib.request.urlopen(url, timeout=10).read().decode()
            if body.count("\nredis_up{") >= args.servers:
                break
            if time.monotonic() - t > 60:
                raise SystemExit("the exporter never showed every server")
            time.sleep(0.2)
        samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        print(f"/metrics: {len(body) / 1024:.0f} KiB, {samples} samples", flush=True)

        pid = exporter.proc.pid
        # 1. Following the stream, no scrapes.
        c0, w0 = cpu_seconds(pid), time.monotonic()
        tc0 = cpu_seconds(topom.proc.pid)
        rss_peak = 0.0
        while time.monotonic() - w0 < args.seconds:
            time.sleep(1)
            rss_peak = max(rss_peak, rss_mib(pid))
        follow_cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - w0) * 100
        topom_cpu = (cpu_seconds(topom.proc.pid) - tc0) / (time.monotonic() - w0) * 100
        # 2. Scrapes, one every 100 ms (much more often than Prometheus would).
        lat: list[float] = []
        c1, w1 = cpu_seconds(pid), time.monotonic()
        for _ in range(args.scrapes):
            s = time.perf_counter()
            urllib.request.urlopen(url, timeout=10).read()
            lat.append((time.perf_counter() - s) * 1000)
            time.sleep(0.1)
        scrape_cpu = (cpu_seconds(pid) - c1) / (time.monotonic() - w1) * 100
        rss_peak = max(rss_peak, rss_mib(pid))
        print(f"servers: {args.servers}, stats period 1 s")
        print(f"exporter CPU following the stream ({args.seconds:.0f} s, no scrapes): "
              f"{follow_cpu:.1f} % of a core")
        print(f"exporter CPU with a scrape every 100 ms ({len(lat)} scrapes): {scrape_cpu:.1f} % of a core")
        print(f"exporter RSS: {rss_mib(pid):.1f} MiB (peak seen {rss_peak:.1f} MiB)")
        print(f"scrape latency ms: p50 {statistics.median(lat):.1f}, p90 {pct(lat, 90):.1f}, "
              f"p99 {pct(lat, 99):.1f}, max {max(lat):.1f}")
        print(f"(topom CPU meanwhile: {topom_cpu:.1f} % of a core; load average "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    finally:
        if exporter is not None:
            exporter.stop()
        if topom is not None:
            topom.stop()
        for r in redis:
            r.stop()


if __name__ == "__main__":
    main()
