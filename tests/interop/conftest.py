"""Fixtures of the interop suite: one card-lookup server for the whole run, a channel and a stub.

The client code is generated from proto/ when `contract` is imported (see contract.py).
"""

import pytest

from contract import connect, pb_grpc, start_server


@pytest.fixture(scope="session")
def server():
    """One server for the suite. Stopping it with SIGTERM must end in exit status 0."""
    server = start_server()
    yield server
    status = server.stop()
    assert status == 0, f"card-lookup exited {status} on SIGTERM; it printed:\n{server.output}"


@pytest.fixture(scope="session")
def channel(server):
    channel = connect(server)
    yield channel
    channel.close()


@pytest.fixture(scope="session")
def stub(channel):
    return pb_grpc.CardLookupServiceStub(channel)
