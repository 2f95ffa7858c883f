"""The card-lookup binary as a process, for the Python suites (tests/interop, tests/deploy):
started with the arguments a suite gives, on the addresses it prints, and stopped with SIGTERM
as an orchestrator stops it.

Only the standard library and pytest: each suite imports this from its conftest.

Environment:
  CARD_LOOKUP_BINARY   the server to test (default: target/release/card-lookup)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("CARD_LOOKUP_BINARY", ROOT / "target" / "release" / "card-lookup"))

STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The lines the binary logs once it listens (src/main.rs), in text or JSON log format.
ADDRESS = r"[0-9A-Za-z.:\[\]]+"
SERVING = re.compile(rf"serving gRPC on ({ADDRESS}), metrics on http://({ADDRESS})/metrics")
SERVING_ADMIN = re.compile(rf"serving the admin service on ({ADDRESS})")
SERVING_HEALTH = re.compile(rf"serving gRPC health only, plaintext, on ({ADDRESS})")
# Printed before the gRPC line, so it is read by the time the server counts as serving.
SERVING_HTTP = re.compile(rf"serving HTTP/JSON on ({ADDRESS})")


@dataclass
class Server:
    """A card-lookup process and what it printed (stdout and stderr, in order)."""

    process: subprocess.Popen
    expect_admin: bool = False
    address: str = ""
    metrics_address: str = ""
    admin_address: str = ""
    health_address: str = ""  # with --health-listen
    http_address: str = ""  # with --http-listen
    lines: list[str] = field(default_factory=list)
    _serving: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}/metrics"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = ANSI.sub("", raw.rstrip("\n"))
            self.lines.append(line)
            if match := SERVING.search(line):
                if not self.address:
                    self.address, self.metrics_address = match.groups()
            elif match := SERVING_ADMIN.search(line):
                if not self.admin_address:
                    self.admin_address = match[1]
            elif match := SERVING_HEALTH.search(line):
                if not self.health_address:
                    self.health_address = match[1]
            elif match := SERVING_HTTP.search(line):
                if not self.http_address:
                    self.http_address = match[1]
            if self.address and (self.admin_address or not self.expect_admin):
                self._serving.set()

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> int:
        """SIGTERM, as an orchestrator sends it; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"card-lookup did not exit within {timeout}s of SIGTERM")
        self._drain()
        return status

    def _drain(self) -> None:
        """Once the process has exited: waits for the last lines it printed."""
        if self._reader is not None:
            self._reader.join(timeout=5)


def start_server(
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    binary: Path | None = None,
) -> Server:
    """Starts the binary and waits until it logs the addresses it serves on (and, with
    --admin-listen, the admin service's). The default arguments put gRPC and metrics on
    ephemeral loopback ports. The server's environment is the caller's without any
    CARD_LOOKUP_* setting, plus `env`."""
    binary = binary or BINARY
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: cargo build --release --locked")
    if args is None:
        args = ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("CARD_LOOKUP_")}
    server_env.update(env or {})
    process = subprocess.Popen(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=server_env,
    )
    expect_admin = any(a == "--admin-listen" or a.startswith("--admin-listen=") for a in args)
    server = Server(process, expect_admin=expect_admin)
    server._reader = threading.Thread(target=server._read, daemon=True)
    server._reader.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server._serving.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            server._drain()
            pytest.fail(f"card-lookup did not start serving; it printed:\n{server.output}")
    return server
