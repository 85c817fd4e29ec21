"""Real processes for the tests: topom and redis-server, on loopback ports in
temp dirs, stopped by pid. No fakes."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
LISTENING = re.compile(r"^LISTENING (\S+)$")


def topom_bin() -> Path:
    env = os.environ.get("TOPOM_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "topom"


def wait_for(what: str, cond: Callable[[], object], timeout: float, step: float = 0.02) -> object:
    """Polls ``cond`` until it returns something truthy; fails the test at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = cond()
        except Exception as e:  # noqa: BLE001 - reported on time-out
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(step)


class Topom:
    """One topom process. ``listen`` defaults to an ephemeral port; pass the
    address of a stopped instance (and its ``data_dir``) to restart it."""

    def __init__(
        self,
        workdir: Path,
        *,
        config: str = "",
        listen: str = "127.0.0.1:0",
        data_dir: Path | None = None,
        extra: list[str] | None = None,
    ) -> None:
        binary = topom_bin()
        if not binary.is_file():
            pytest.fail(
                f"topom binary {binary} not found "
                "(build it with `cargo build --bin topom`, or set TOPOM_BIN)"
            )
        workdir.mkdir(parents=True, exist_ok=True)
        if data_dir is None:
            data_dir = workdir / "data"
            data_dir.mkdir(exist_ok=True)
        self.workdir = workdir
        self.data_dir = data_dir
        args = [str(binary), "--listen", listen, "--data-dir", str(data_dir)]
        if config:
            cfg = workdir / "topom.toml"
            cfg.write_text(config)
            args += ["-c", str(cfg)]
        args += extra or []
        n = len(list(workdir.glob("topom*.stderr.log")))
        self.log_path = workdir / f"topom{n}.stderr.log"
        self._other_stdout: list[str] = []
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True
            )
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """One redis-server on a free loopback port, no persistence."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found on PATH (apt-get install -y redis-server)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        # A port picked free can be taken before redis binds it: try a few.
        for _ in range(5):
            self.port = free_port()
            self.addr = f"127.0.0.1:{self.port}"
            self.log_path = workdir / f"redis-{self.port}.log"
            # A config file, so that CONFIG REWRITE (sync actions) works.
            conf = workdir / f"redis-{self.port}.conf"
            conf.write_text("")
            self.proc = subprocess.Popen(
                [binary, str(conf), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(workdir), "--logfile", str(self.log_path),
                 "--daemonize", "no", "--repl-diskless-sync-delay", "0"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.command("PING") == "PONG":
                        return
                except OSError:
                    time.sleep(0.02)
            self.stop()
        pytest.fail(f"redis-server did not start on a free port; log:\n{self._log()}")

    def _log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError as e:
            return f"(no log: {e})"

    def command(self, *args: str) -> object:
        """Sends one command, answers the decoded reply (errors as exceptions)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            parts = [f"*{len(args)}\r\n".encode()]
            for a in args:
                b = a.encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
            s.sendall(b"".join(parts))
            return _read_reply(s.makefile("rb"))  # type: ignore[arg-type]

    def info(self) -> dict[str, str]:
        text = self.command("INFO", "everything")
        assert isinstance(text, str)
        out: dict[str, str] = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and ":" in line:
                k, _, v = line.partition(":")
                out[k] = v
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _read_reply(f: BinaryIO) -> object:
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode()
    if kind == b"*":
        return [_read_reply(f) for _ in range(int(rest))]
    raise OSError(f"bad reply {line!r}")


SRC_DIR = Path(__file__).resolve().parents[1] / "src"


class Exporter:
    """``topom-stats-exporter`` as a process (``python -m``, from the source tree)."""

    def __init__(self, workdir: Path, *args: str) -> None:
        import sys

        workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(SRC_DIR) + os.pathsep + env.get("PYTHONPATH", "")
        self.log_path = workdir / "exporter.stderr.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "topom_client.exporter", *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.addr = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout: float = START_TIMEOUT) -> str:
        try:
            got = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line from the exporter within {timeout}s\n{self.log_tail()}")
        if got is None:
            pytest.fail(f"the exporter closed stdout (exit {self.proc.poll()})\n{self.log_tail()}")
        return got

    def wait_listening(self) -> str:
        line = self.line()
        m = LISTENING.match(line)
        if not m:
            pytest.fail(f"want a LISTENING line, got {line!r}\n{self.log_tail()}")
        self.addr = m.group(1)
        return self.addr

    def scrape(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://{self.addr}/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the exporter did not exit within {STOP_TIMEOUT}s of SIGTERM")

    def log_tail(self, limit: int = 8192) -> str:
        try:
            return "exporter stderr (tail):\n" + self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        except OSError as e:
            return f"(no exporter log: {e})"


class Sentinel(Redis):
    """One redis-sentinel (redis-server --sentinel) on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found on PATH (apt-get install -y redis-server)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        for _ in range(5):
            self.port = free_port()
            self.addr = f"127.0.0.1:{self.port}"
            self.log_path = workdir / f"sentinel-{self.port}.log"
            # Sentinel rewrites its config file: it must exist and be writable.
            conf = workdir / f"sentinel-{self.port}.conf"
            conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\n")
            self.proc = subprocess.Popen(
                [binary, str(conf), "--sentinel", "--logfile", str(self.log_path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.command("PING") == "PONG":
                        return
                except OSError:
                    time.sleep(0.02)
            self.stop()
        pytest.fail(f"redis-sentinel did not start on a free port; log:\n{self._log()}")
