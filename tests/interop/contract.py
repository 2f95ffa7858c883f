"""What the interop tests share: a Python client generated from proto/ with grpcio-tools, and
the release binary of card-lookup started on ephemeral ports (tests/support/card_lookup_process.py,
shared with tests/deploy).

Nothing generated is kept: the client code goes to a temporary directory for this run only, so
the tests always use the proto in the work tree, as a client team would after a release.

Environment:
  CARD_LOOKUP_BINARY   the server to test (default: target/release/card-lookup)
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

import grpc
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
# The process helper both Python suites share (tests/deploy starts the same binary).
sys.path.insert(0, str(ROOT / "tests" / "support"))
import card_lookup_process  # noqa: E402
from card_lookup_process import BINARY, Server  # noqa: E402, F401

PROTO_ROOT = ROOT / "proto"
CONTRACT = "cardlookup/v1/card_lookup.proto"

# Every RPC gets a deadline, so a hung server fails the test instead of the CI run.
TIMEOUT = 10.0


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


def start_server() -> Server:
    """Starts the release binary on ephemeral ports (gRPC, metrics, HTTP/JSON) and waits for its
    `serving gRPC on` line.

    Per-call log lines are on (RUST_LOG=card_lookup=debug), so the tests can check that no
    card number reaches the logs."""
    return card_lookup_process.start_server(
        args=[
            "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0",
        ],
        env={"RUST_LOG": "card_lookup=debug,info", "NO_COLOR": "1"},
    )


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
