"""What the interop tests share: a Python client generated from proto/ with grpcio-tools, and
the release binary of card-lookup started on ephemeral ports.

Nothing generated is kept: the client code goes to a temporary directory for this run only, so
the tests always use the proto in the work tree, as a client team would after a release.

Environment:
  CARD_LOOKUP_BINARY   the server to test (default: target/release/card-lookup)
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import grpc
import pytest
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
CONTRACT = "cardlookup/v1/card_lookup.proto"
BINARY = Path(os.environ.get("CARD_LOOKUP_BINARY", ROOT / "target" / "release" / "card-lookup"))

# Every RPC gets a deadline, so a hung server fails the test instead of the CI run.
TIMEOUT = 10.0
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0


def _generate_client() -> Path:
    """Runs grpcio-tools' protoc on the contract, as a client team would."""
    out = Path(tempfile.mkdtemp(prefix="card-lookup-interop-"))
    atexit.register(shutil.rmtree, out, True)
    well_known = resources.files("grpc_tools") / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            CONTRACT,
        ]
    )
    if status != 0:
        raise RuntimeError(f"grpc_tools.protoc failed on proto/{CONTRACT} (exit {status})")
    return out


GENERATED = _generate_client()
sys.path.insert(0, str(GENERATED))

# The generated modules, importable from here on: `from cardlookup.v1 import card_lookup_pb2`.
from cardlookup.v1 import card_lookup_pb2 as pb  # noqa: E402
from cardlookup.v1 import card_lookup_pb2_grpc as pb_grpc  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SERVING = re.compile(r"serving gRPC on (\S+), metrics on http://(\S+)/metrics")


@dataclass
class Server:
    """A card-lookup process and what it printed."""

    process: subprocess.Popen
    address: str = ""
    metrics_address: str = ""
    lines: list[str] = field(default_factory=list)
    _serving: threading.Event = field(default_factory=threading.Event)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = ANSI.sub("", raw.rstrip("\n"))
            self.lines.append(line)
            match = SERVING.search(line)
            if match and not self._serving.is_set():
                self.address, self.metrics_address = match.groups()
                self._serving.set()

    def stop(self) -> int:
        """SIGTERM, as an orchestrator sends it; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"card-lookup did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM")


def start_server() -> Server:
    """Starts the release binary on ephemeral ports and waits for its `serving gRPC on` line."""
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} is missing: run scripts/check-interop.sh (it builds it)")
    # A clean environment for the server: no CARD_LOOKUP_* settings of the caller's shell, and
    # per-call log lines on, so the tests can check that no card number reaches the logs.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARD_LOOKUP_")}
    env.update(RUST_LOG="card_lookup=debug,info", NO_COLOR="1")
    process = subprocess.Popen(
        [str(BINARY), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    server = Server(process)
    threading.Thread(target=server._read, daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server._serving.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"card-lookup did not start serving; it printed:\n{server.output}")
    return server


def connect(server: Server) -> grpc.Channel:
    channel = grpc.insecure_channel(server.address)
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    return channel


def metadata_of(call) -> dict[str, str]:
    """Response metadata of a finished call or an RpcError: headers and trailers together (an
    error answered at once comes back as trailers only)."""
    merged: dict[str, str] = {}
    for part in (call.initial_metadata(), call.trailing_metadata()):
        for key, value in part or ():
            merged[key] = value
    return merged
